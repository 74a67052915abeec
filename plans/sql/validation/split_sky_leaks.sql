-- HEALPix pixels (nested, order of the split: $nside) with rows in more
-- than one split: must be none when the split is by sky area.
SELECT p
FROM (SELECT healpix_nested(ra, dec, $nside) AS p, split FROM checks)
GROUP BY p
HAVING count(DISTINCT split) > 1
ORDER BY p
LIMIT 100
