-- The known lenses bucketed for the positives' crossmatch: one row per lens
-- and nested HEALPix cell at $join_nside that its match cone touches.
--
-- Made where the lens catalogue is loaded (it is small and does not grow
-- with the survey) and shared as a table of known size, so a cluster
-- broadcasts it to every sweep scan instead of shuffling the sweeps (see
-- lens_cells.sql).
SELECT lens_id,
       ra AS lens_ra,
       dec AS lens_dec,
       unnest(healpix_cone_cells(ra, dec, $join_nside, $match_radius_arcsec)) AS cell
FROM lenses
