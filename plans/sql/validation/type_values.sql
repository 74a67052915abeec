-- The Tractor morphological types among the checked rows, each tested as an
-- indicator feature ("is REX") between positives and negatives.
SELECT DISTINCT trim("type") AS t
FROM checks
WHERE "type" IS NOT NULL
ORDER BY t
