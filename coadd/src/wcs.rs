//! The gnomonic (TAN) world coordinate system of coadd bricks and cutouts.
//!
//! Pixel coordinates here are 0-based (FITS pixel minus 1); angles in degrees.
//! Only linear CD (or PC × CDELT) plus TAN: no SIP or other distortions,
//! which the coadds do not have.

use lenspipe_fits::Header;

use crate::error::{CoaddError, Result};

/// A TAN projection: reference point, reference pixel and CD matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tan {
    /// CRVAL1, CRVAL2 (degrees).
    pub crval: [f64; 2],
    /// CRPIX1, CRPIX2 (1-based, as in the header).
    pub crpix: [f64; 2],
    /// CD matrix (degrees per pixel), row-major: [[CD1_1, CD1_2], [CD2_1, CD2_2]].
    pub cd: [[f64; 2]; 2],
}

impl Tan {
    /// A TAN grid centred on (ra, dec) the way the Legacy Surveys viewer's
    /// cutouts are: CRPIX = (size + 1) / 2, north up, east left.
    pub fn centred(ra: f64, dec: f64, size: usize, pixscale_arcsec: f64) -> Tan {
        let c = (size as f64 + 1.0) / 2.0;
        let s = pixscale_arcsec / 3600.0;
        Tan {
            crval: [ra, dec],
            crpix: [c, c],
            cd: [[-s, 0.0], [0.0, s]],
        }
    }

    /// Reads CTYPEi (must be RA---TAN / DEC--TAN), CRVALi, CRPIXi and either
    /// CDi_j or PCi_j × CDELTi.
    pub fn from_header(h: &Header<'_>) -> Result<Tan> {
        let bad = |m: String| CoaddError::Wcs(m);
        for (key, want) in [("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN")] {
            let v = h.string(key)?.unwrap_or_default();
            if v.trim() != want {
                return Err(bad(format!("{key} = '{v}', expected '{want}'")));
            }
        }
        let req = |key: &str| -> Result<f64> {
            h.float(key)?
                .ok_or_else(|| CoaddError::Wcs(format!("missing {key}")))
        };
        let crval = [req("CRVAL1")?, req("CRVAL2")?];
        let crpix = [req("CRPIX1")?, req("CRPIX2")?];
        let has_cd = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"]
            .iter()
            .map(|k| h.float(k))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let cd = if has_cd.iter().any(Option::is_some) {
            let v = |i: usize| has_cd[i].unwrap_or(0.0);
            [[v(0), v(1)], [v(2), v(3)]]
        } else {
            let cdelt = [req("CDELT1")?, req("CDELT2")?];
            let pc = |i: usize, j: usize| -> Result<f64> {
                let diag = if i == j { 1.0 } else { 0.0 };
                Ok(h.float(&format!("PC{i}_{j}"))?.unwrap_or(diag))
            };
            [
                [cdelt[0] * pc(1, 1)?, cdelt[0] * pc(1, 2)?],
                [cdelt[1] * pc(2, 1)?, cdelt[1] * pc(2, 2)?],
            ]
        };
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        if !det.is_finite() || det == 0.0 {
            return Err(bad(format!("CD matrix {cd:?} is singular")));
        }
        Ok(Tan { crval, crpix, cd })
    }

    /// World (degrees) to 0-based pixel; `None` on the far hemisphere.
    pub fn world_to_pixel(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (ra0, dec0) = (self.crval[0].to_radians(), self.crval[1].to_radians());
        let (ra, dec) = (ra.to_radians(), dec.to_radians());
        let dra = ra - ra0;
        let cos_c = dec0.sin() * dec.sin() + dec0.cos() * dec.cos() * dra.cos();
        if cos_c <= 0.0 {
            return None;
        }
        let xi = (dec.cos() * dra.sin() / cos_c).to_degrees();
        let eta =
            ((dec0.cos() * dec.sin() - dec0.sin() * dec.cos() * dra.cos()) / cos_c).to_degrees();
        let [[a, b], [c, d]] = self.cd;
        let det = a * d - b * c;
        let dx = (d * xi - b * eta) / det;
        let dy = (-c * xi + a * eta) / det;
        Some((self.crpix[0] - 1.0 + dx, self.crpix[1] - 1.0 + dy))
    }

    /// 0-based pixel to world (degrees), RA in [0, 360).
    pub fn pixel_to_world(&self, x: f64, y: f64) -> (f64, f64) {
        let dx = x + 1.0 - self.crpix[0];
        let dy = y + 1.0 - self.crpix[1];
        let xi = (self.cd[0][0] * dx + self.cd[0][1] * dy).to_radians();
        let eta = (self.cd[1][0] * dx + self.cd[1][1] * dy).to_radians();
        let (ra0, dec0) = (self.crval[0].to_radians(), self.crval[1].to_radians());
        let den = dec0.cos() - eta * dec0.sin();
        let ra = ra0 + xi.atan2(den);
        let dec = (eta * dec0.cos() + dec0.sin()).atan2(xi.hypot(den));
        (ra.to_degrees().rem_euclid(360.0), dec.to_degrees())
    }
}
