-- Positives: match every known lens to its nearest sweep source.
--
-- Lenses are bucketed by every nested HEALPix cell their match cone touches
-- (so no match across a cell edge is missed), the small lens side is
-- broadcast, and each candidate pair is measured by exact angular
-- separation. Every lens leaves with one status, the first that holds:
--   $status_outside_footprint        the lens is outside dec_min < dec < dec_max
--   $status_no_source_within_radius  no sweep source within match_radius_arcsec
--   $status_fails_selection          matched, but the source fails the cuts
--                                    negatives must pass (only when
--                                    apply_selection is true)
--   $status_matched
-- Their strings are bound from PositiveStatus (plans/src/stages/positives.rs).
-- The lens side, `match_cells`, is made from the lens catalogue by
-- match_cells.sql.
WITH candidates AS (
    SELECT c.lens_id,
           angular_sep_arcsec(c.lens_ra, c.lens_dec, s.ra, s.dec) AS match_sep_arcsec,
           s.*
    FROM match_cells c
    JOIN sweeps s ON c.cell = healpix_nested(s.ra, s.dec, $join_nside)
    WHERE angular_sep_arcsec(c.lens_ra, c.lens_dec, s.ra, s.dec) <= $match_radius_arcsec
),
nearest AS (
    SELECT *
    FROM (
        SELECT *,
               row_number() OVER (PARTITION BY lens_id
                                  ORDER BY match_sep_arcsec, sweep_file, row_index) AS candidate_rank
        FROM candidates
    )
    WHERE candidate_rank = 1
),
matched AS (
    SELECT l.lens_id,
           l.lens_name,
           l.ra AS lens_ra,
           l.dec AS lens_dec,
           l.grade,
           l.zlens,
           l.lens_type,
           l.reference,
           n.* EXCLUDE (lens_id, candidate_rank),
           paper_iv_reject_reason(
               n.ra, n.dec, n.type, n.maskbits, n.nobs_g, n.nobs_r, n.nobs_z, n.flux_z,
               $dec_min, $dec_max, $valid_types, $exclude_mask,
               $min_nobs_g, $min_nobs_r, $min_nobs_z, $z_mag_max) AS source_reject_reason,
           nmgy_to_mag(n.flux_g) AS mag_g,
           nmgy_to_mag(n.flux_r) AS mag_r,
           nmgy_to_mag(n.flux_z) AS mag_z,
           nmgy_to_mag(n.flux_w1) AS mag_w1
    FROM lenses l
    LEFT JOIN nearest n ON l.lens_id = n.lens_id
)
SELECT
    lens_id,
    lens_name,
    lens_ra,
    lens_dec,
    grade,
    zlens,
    lens_type,
    reference,
    CASE
        WHEN NOT (lens_dec > $dec_min AND lens_dec < $dec_max) THEN $status_outside_footprint
        WHEN match_sep_arcsec IS NULL THEN $status_no_source_within_radius
        WHEN $apply_selection AND source_reject_reason IS NOT NULL THEN $status_fails_selection
        ELSE $status_matched
    END AS status,
    match_sep_arcsec,
    source_reject_reason,
    -- the matched source in the negatives' columns (plans/src/columns.rs)
    @output_columns
FROM matched
