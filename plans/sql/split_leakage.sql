-- Leakage checks on the written sample.
-- pixels_in_several_splits: must be 0 by construction.
-- close_pairs_across_splits: pairs of objects closer than the exclusion
-- radius that sit in different splits (possible only across pixel edges).
WITH s AS (
    SELECT galaxy_id, ra, dec, split, split_pixel FROM sample
),
cells AS (
    SELECT galaxy_id, ra, dec, split,
           unnest(healpix_cone_cells(ra, dec, $join_nside, $radius_arcsec)) AS cell
    FROM s
),
close_pairs AS (
    SELECT count(*) AS n
    FROM cells a
    JOIN s b ON healpix_nested(b.ra, b.dec, $join_nside) = a.cell
    WHERE a.galaxy_id < b.galaxy_id
      AND a.split <> b.split
      AND angular_sep_arcsec(a.ra, a.dec, b.ra, b.dec) <= $radius_arcsec
),
mixed_pixels AS (
    SELECT count(*) AS n
    FROM (SELECT split_pixel FROM s GROUP BY split_pixel HAVING count(DISTINCT split) > 1)
)
SELECT (SELECT n FROM mixed_pixels) AS pixels_in_several_splits,
       (SELECT n FROM close_pairs) AS close_pairs_across_splits
