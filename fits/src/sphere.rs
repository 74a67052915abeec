//! Great-circle separation on the sky.
//!
//! It lives here, in the lowest crate both the synthetic sweeps and the
//! DataFusion UDFs depend on, so that planted offsets and SQL separations are
//! one formula and the synthetic data stays free of DataFusion.

/// Great-circle separation in arcseconds between two positions in degrees,
/// with the Vincenty formula (`atan2` of the cross and dot products), which
/// is accurate at all separations: sub-milliarcsecond pairs, 1 arcsec near
/// the poles and antipodes alike.
///
/// `None` for non-finite inputs or `|dec| > 90`.
#[inline]
pub fn angular_sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> Option<f64> {
    if !(ra1.is_finite() && dec1.is_finite() && ra2.is_finite() && dec2.is_finite())
        || dec1.abs() > 90.0
        || dec2.abs() > 90.0
    {
        return None;
    }
    let (sp1, cp1) = dec1.to_radians().sin_cos();
    let (sp2, cp2) = dec2.to_radians().sin_cos();
    let (sdl, cdl) = (ra2 - ra1).to_radians().sin_cos();
    let x = cp2 * sdl;
    let y = cp1 * sp2 - sp1 * cp2 * cdl;
    let num = x.hypot(y);
    let den = sp1 * sp2 + cp1 * cp2 * cdl;
    Some(num.atan2(den).to_degrees() * 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: f64 = 1.0 / 3600.0;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn known_separations() {
        let sep = |a, b, c, d| angular_sep_arcsec(a, b, c, d).unwrap();
        assert!(close(sep(0.0, 0.0, ONE, 0.0), 1.0, 1e-9));
        assert!(close(sep(10.0, 0.0, 10.0, ONE), 1.0, 1e-9));
        // near the pole: 1 arcsec along the meridian, and across the pole
        assert!(close(sep(123.0, 89.99, 123.0, 89.99 + ONE), 1.0, 1e-6));
        assert!(close(sep(0.0, 90.0, 77.0, 90.0 - ONE), 1.0, 1e-6));
        assert!(close(
            sep(0.0, 90.0 - 0.5 * ONE, 180.0, 90.0 - 0.5 * ONE),
            1.0,
            1e-6
        ));
        // at dec 60 one second of RA is cos(60) = 0.5 arcsec (small-angle)
        assert!(close(sep(10.0, 60.0, 10.0 + ONE, 60.0), 0.5, 1e-6));
        // one degree of RA at dec 60 (the haversine value the synthetic sweeps used)
        assert!(close(sep(10.0, 60.0, 12.0, 60.0) / 3600.0, 0.99995, 1e-3));
        // sub-milliarcsecond
        assert!(close(
            sep(200.0, -30.0, 200.0, -30.0 + 1e-4 * ONE),
            1e-4,
            1e-9
        ));
        assert_eq!(sep(33.0, 44.0, 33.0, 44.0), 0.0);
        // antipodes and quarter circles
        assert!(close(sep(0.0, 0.0, 180.0, 0.0), 648000.0, 1e-6));
        assert!(close(sep(0.0, 90.0, 0.0, -90.0), 648000.0, 1e-6));
        assert!(close(sep(10.0, 20.0, 190.0, -20.0), 648000.0, 1e-6));
        assert!(close(sep(0.0, 0.0, 90.0, 0.0), 324000.0, 1e-6));
        // across RA = 0/360
        assert!(close(sep(359.9999, 0.0, 0.0001, 0.0), 0.72, 1e-6));
        assert!(close(sep(-0.0001, 0.0, 360.0001, 0.0), 0.72, 1e-6));
        // symmetric
        assert_eq!(sep(1.0, 2.0, 3.0, 4.0), sep(3.0, 4.0, 1.0, 2.0));
    }

    #[test]
    fn invalid_positions() {
        assert_eq!(angular_sep_arcsec(f64::NAN, 0.0, 0.0, 0.0), None);
        assert_eq!(angular_sep_arcsec(0.0, 91.0, 0.0, 0.0), None);
        assert_eq!(angular_sep_arcsec(0.0, 0.0, f64::INFINITY, 0.0), None);
    }
}
