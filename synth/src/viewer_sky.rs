//! A synthetic sky for `lenspipe serve-cutouts --synthetic-sky`: the
//! viewer's API answered without coadds, so the whole pipeline runs on a
//! machine with no survey data (the demo, tests). Every answer is a
//! deterministic function of the position and the seed: Gaussian sky noise
//! per band (the invvar plane is its 1/sigma²) and one elliptical galaxy at
//! the centre. It is not DR10 data
//! and claims nothing about DR10's noise or galaxies.

use lenspipe_viewer::fits_image::Planes;
use lenspipe_viewer::server::{CutoutProvider, CutoutRequest, ProviderError};

use crate::rng::Rng;

/// Layers the synthetic sky answers (the viewer answers `no such layer` otherwise).
pub const LAYERS: [&str; 2] = ["ls-dr10", "ls-dr10-south"];
/// `ls-dr10-south` is DECam only: nothing north of this declination.
pub const SOUTH_DEC_MAX: f64 = 34.0;

#[derive(Debug, Clone, Copy)]
pub struct SyntheticSky {
    pub seed: u64,
}

/// Noise sigma per band in nanomaggies per pixel (a choice for the demo).
fn noise(band: char) -> f64 {
    match band {
        'g' => 0.004,
        'r' => 0.006,
        'i' => 0.008,
        _ => 0.012,
    }
}

impl SyntheticSky {
    /// The image: noise and the galaxy, as a function of the position.
    fn image(&self, r: &CutoutRequest) -> Vec<f32> {
        let (ra, dec, size) = (r.ra, r.dec, r.size);
        let key = ((ra * 1e6).round() as i64 as u64)
            ^ ((dec * 1e6).round() as i64 as u64).rotate_left(32);
        let mut rng = Rng::new(key ^ self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let sigma_px = (0.6 + 1.8 * rng.f64()) / r.pixscale.max(1e-6);
        let q = 0.4 + 0.6 * rng.f64();
        let angle = std::f64::consts::PI * rng.f64();
        let flux_r = 3.0 + 30.0 * rng.f64();
        let colour = [
            ("g", 0.45 + 0.3 * rng.f64()),
            ("r", 1.0),
            ("i", 1.2),
            ("z", 1.3 + 0.4 * rng.f64()),
        ];
        let centre = (size as f64 - 1.0) / 2.0;
        let (cos, sin) = (angle.cos(), angle.sin());
        let norm = 1.0 / (std::f64::consts::TAU * sigma_px * sigma_px * q);
        let mut out = Vec::with_capacity(r.bands.len() * size * size);
        for band in r.bands.chars() {
            let flux = flux_r
                * colour
                    .iter()
                    .find(|(b, _)| b.starts_with(band))
                    .map_or(1.0, |(_, c)| *c);
            let sky = noise(band);
            for y in 0..size {
                for x in 0..size {
                    let (dx, dy) = (x as f64 - centre, y as f64 - centre);
                    let (u, v) = (dx * cos + dy * sin, (-dx * sin + dy * cos) / q);
                    let r2 = (u * u + v * v) / (sigma_px * sigma_px);
                    let value = flux * norm * (-0.5 * r2).exp() + sky * rng.normal();
                    out.push(value as f32);
                }
            }
        }
        out
    }
}

impl CutoutProvider for SyntheticSky {
    /// The invvar of the synthetic sky is its noise: 1/sigma² per band,
    /// the same over the whole cutout. It has no mask bits: no maskbits HDU,
    /// as the viewer answers for a layer without maskbits files.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // a NaN declination is off the footprint
    fn cutout(&self, r: &CutoutRequest) -> Result<Planes, ProviderError> {
        if !LAYERS.contains(&r.layer.as_str()) {
            return Err(ProviderError::UnknownLayer);
        }
        if !(r.dec.abs() <= 90.0) || (r.layer == "ls-dr10-south" && r.dec > SOUTH_DEC_MAX) {
            return Err(ProviderError::OffFootprint);
        }
        let invvar = r.extra.invvar.then(|| {
            r.bands
                .chars()
                .flat_map(|b| {
                    std::iter::repeat_n((1.0 / (noise(b) * noise(b))) as f32, r.size * r.size)
                })
                .collect()
        });
        Ok(Planes {
            image: self.image(r),
            invvar,
            maskbits: None,
        })
    }

    fn default_bands(&self, _layer: &str) -> String {
        "griz".to_string()
    }
}
