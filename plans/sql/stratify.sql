-- Stratified sampling: draw negatives to match the positives' strata,
-- and split everything by sky area.
--
-- Draw: within each (stratum, pool) the negatives are ordered by a hash of
-- their galaxy_id and the seed, and the first `quota` are taken. With
-- sampling.match_on the nearest to one of the cell's positives
-- (match_distance) come first; without it match_distance is 0 throughout.
-- The order depends on nothing but the rows and the seed, so the sample is
-- the same whatever the partitioning or the number of executors. Each drawn negative
-- carries its quota's draw_weight: 1.0, or target/quota where a cell of
-- sampling.match_on falls short.
--
-- Split: a hash of the nested HEALPix pixel at split.nside (128 by default) and the split seed,
-- cut at the configured fractions, so every object of a pixel (lens or not)
-- lands in the same split.
WITH drawn AS (
    -- The small quota table first: it is the broadcast build side.
    SELECT n.*, q.draw_weight
    FROM quotas q
    JOIN (
        SELECT *,
               row_number() OVER (PARTITION BY stratum, pool
                                  ORDER BY match_distance, stable_hash_unit(galaxy_id, $sampling_seed), galaxy_id) AS draw_rank
        FROM negatives_ranked
    ) n ON q.stratum = n.stratum AND q.pool = n.pool
    WHERE n.draw_rank <= q.quota
),
labelled AS (
    SELECT 1 AS label, 'positive' AS pool, CAST(NULL AS VARCHAR) AS confuser_category,
           p.stratum, coalesce(w.weight, 1.0) AS weight,
           p.galaxy_id, p.lens_name, p.grade, p.ra, p.dec, p.type, p.nobs_z, p.nobs_z_bin, p.type_bin,
           p.mag_g, p.mag_r, p.mag_z, p.psfsize_z, p.healpix_64, p.healpix_128, p.sweep_file, p.row_index
    FROM positives_strata p
    LEFT JOIN grade_weights w ON p.grade = w.grade
    UNION ALL
    SELECT 0 AS label, pool, confuser_category, stratum, draw_weight AS weight,
           galaxy_id, CAST(NULL AS VARCHAR) AS lens_name, CAST(NULL AS VARCHAR) AS grade,
           ra, dec, type, nobs_z, nobs_z_bin, type_bin,
           mag_g, mag_r, mag_z, psfsize_z, healpix_64, healpix_128, sweep_file, row_index
    FROM drawn
)
SELECT *,
       CASE
           WHEN stable_hash_unit(split_pixel, $split_seed) < $train_fraction THEN 'train'
           WHEN stable_hash_unit(split_pixel, $split_seed) < $train_fraction + $val_fraction THEN 'val'
           ELSE 'test'
       END AS split
FROM (SELECT *, healpix_nested(ra, dec, $split_nside) AS split_pixel FROM labelled)
