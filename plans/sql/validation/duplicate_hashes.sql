-- Pixel hashes that more than one checked cutout has: every row with one
-- fails duplicate_image in the second checks pass.
SELECT image_hash AS h
FROM checks
WHERE image_hash IS NOT NULL
GROUP BY image_hash
HAVING count(*) > 1
