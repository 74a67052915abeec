-- The known lenses bucketed for the negatives' exclusion join: every nested
-- HEALPix cell at $join_nside that a lens's exclusion cone touches, with the
-- positions of the lenses listed there.
--
-- Made where the lens catalogue is loaded (it is small and does not grow
-- with the survey) and shared as a table. Its size is then known exactly,
-- so a cluster broadcasts it to every sweep scan; as a subquery of the
-- negatives plan its size was unknown, and Ballista shuffled the sweeps to
-- both sides of a partitioned join instead.
SELECT cell, array_agg(make_array(lens_ra, lens_dec)) AS lens_positions
FROM (
    SELECT unnest(healpix_cone_cells(ra, dec, $join_nside, $exclusion_radius_arcsec)) AS cell,
           ra AS lens_ra,
           dec AS lens_dec
    FROM lenses
)
GROUP BY cell
