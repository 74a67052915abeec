//! Seeded synthetic g,r,z cutouts for tests and benchmarks: Gaussian sky
//! noise plus a galaxy-like blob, with knobs to plant defects and shortcuts.

use crate::rng::SplitMix64;

/// Description of one synthetic 3 x size x size cutout.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthCutout {
    pub size: usize,
    /// Sky noise sigma per band (nanomaggies).
    pub noise: [f32; 3],
    /// Multiplies `noise` (plants a noise shortcut when != 1).
    pub noise_scale: f32,
    /// Peak of the central blob in r; g and z follow galaxy-like colours.
    pub amplitude: f32,
    /// Blob position (y, x) in pixels.
    pub position: (f32, f32),
    /// Blob Gaussian sigma (px).
    pub sigma_px: f32,
}

impl Default for SynthCutout {
    fn default() -> Self {
        Self {
            size: 101,
            noise: [0.004, 0.006, 0.012],
            noise_scale: 1.0,
            amplitude: 0.3,
            position: (50.0, 50.0),
            sigma_px: 2.5,
        }
    }
}

impl SynthCutout {
    /// CHW pixels; the amplitude varies by a random factor in [0.5, 2).
    pub fn generate(&self, rng: &mut SplitMix64) -> Vec<f32> {
        let n = self.size * self.size;
        let mut img = vec![0f32; 3 * n];
        let colour = [0.45f32, 1.0, 1.6];
        let amp = self.amplitude * (0.5 + 1.5 * rng.next_f64() as f32);
        let r = (4.0 * self.sigma_px).ceil() as isize;
        let (py, px) = self.position;
        for b in 0..3 {
            let s = self.noise[b] * self.noise_scale;
            let band = &mut img[b * n..(b + 1) * n];
            for v in band.iter_mut() {
                *v = s * rng.normal() as f32;
            }
            let (cy, cx) = (py.round() as isize, px.round() as isize);
            for y in (cy - r).max(0)..(cy + r + 1).min(self.size as isize) {
                for x in (cx - r).max(0)..(cx + r + 1).min(self.size as isize) {
                    let d2 = (y as f32 - py).powi(2) + (x as f32 - px).powi(2);
                    let g = (-0.5 * d2 / (self.sigma_px * self.sigma_px)).exp();
                    band[y as usize * self.size + x as usize] += amp * colour[b] * g;
                }
            }
        }
        img
    }
}
