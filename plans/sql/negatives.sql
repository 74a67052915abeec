-- Negative sampling: pool N1 under the Paper IV cuts, with N2 confuser tags.
--
-- One pass over the sweeps. Every row gets `reject_reason`, the first cut it
-- fails in funnel order (NULL = kept); the partition writer counts every
-- reason where the rows are classified and writes only the kept rows, so
-- rows in = kept + rejected, each with a reason. Parameters ($name) are bound as typed values from the YAML config;
-- reason strings ($reason_*) come from RejectReason (udfs/src/reasons.rs).
--
-- Known-lens exclusion: lenses are bucketed by nested HEALPix cell at
-- $join_nside, every cell their exclusion cone touches (table `lens_cells`,
-- made from the lens catalogue by lens_cells.sql), so a sweep row looks up
-- only its own cell and measures the exact separation to each lens listed
-- there. The small lens side is written first: with join repartitioning off
-- (see the engine) it is the broadcast build side, and the sweeps stream
-- through without a shuffle.
WITH classified AS (
    SELECT s.*,
           paper_iv_reject_reason(
               s.ra, s.dec, s.type, s.maskbits, s.nobs_g, s.nobs_r, s.nobs_z, s.flux_z,
               $dec_min, $dec_max, $valid_types, $exclude_mask,
               $min_nobs_g, $min_nobs_r, $min_nobs_z, $z_mag_max) AS paper_iv_reason,
           min_sep_arcsec(s.ra, s.dec, l.lens_positions) AS nearest_lens_arcsec
    FROM lens_cells l
    RIGHT JOIN sweeps s ON l.cell = healpix_nested(s.ra, s.dec, $join_nside)
),
reasoned AS (
    SELECT *,
           coalesce(paper_iv_reason,
                    CASE WHEN nearest_lens_arcsec <= $exclusion_radius_arcsec
                         THEN $reason_near_known_lens END) AS reject_reason
    FROM classified
),
tagged AS (
    -- Output-only work is done for kept rows alone (CASE evaluates its
    -- branch only where the condition holds).
    SELECT *,
           CASE WHEN reject_reason IS NULL THEN
               n2_category(type, flux_g, flux_r, shape_r,
                           $ring_types, $ring_flux_r_min,
                           $edge_types, $edge_shape_r_min,
                           $blue_g_minus_r_max, $blue_r_mag_max)
           END AS confuser_category,
           CASE WHEN reject_reason IS NULL THEN nmgy_to_mag(flux_g) END AS mag_g,
           CASE WHEN reject_reason IS NULL THEN nmgy_to_mag(flux_r) END AS mag_r,
           CASE WHEN reject_reason IS NULL THEN nmgy_to_mag(flux_z) END AS mag_z,
           CASE WHEN reject_reason IS NULL THEN nmgy_to_mag(flux_w1) END AS mag_w1
    FROM reasoned
)
SELECT
    -- funnel diagnostics, counted by the writer and not written: which
    -- bands fell short, for rows rejected for too few exposures
    reject_reason,
    reject_reason = $reason_insufficient_exposures AND nobs_g < $min_nobs_g AS nobs_g_low,
    reject_reason = $reason_insufficient_exposures AND nobs_r < $min_nobs_r AS nobs_r_low,
    reject_reason = $reason_insufficient_exposures AND nobs_z < $min_nobs_z AS nobs_z_low,
    -- the output columns, defined in plans/src/columns.rs
    @output_columns
FROM tagged
