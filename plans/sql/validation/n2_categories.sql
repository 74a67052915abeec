-- The N2 confuser categories among the negatives, one gallery group each.
SELECT DISTINCT confuser_category AS c
FROM checks
WHERE label = 0 AND pool = 'N2' AND confuser_category IS NOT NULL
ORDER BY c
