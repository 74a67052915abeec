-- Bricks with rows in more than one split (possible only where a brick
-- straddles a split pixel's edge).
SELECT brickname AS b
FROM checks
GROUP BY brickname
HAVING count(DISTINCT split) > 1
ORDER BY b
LIMIT 100
