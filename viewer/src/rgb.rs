//! The Legacy Surveys viewer's colour mapping: the local server's JPEG
//! cutouts and the validation report's gallery tiles both use it, so they
//! look like what people see at legacysurvey.org/viewer.
//!
//! Provenance: `sdss_rgb` in `map/views.py` of the legacysurvey/imagine
//! repository (the viewer's code, by Dustin Lang). Its defaults, used here:
//! per-band (RGB plane, scale) g -> (blue, 2.5), r -> (green, 1.5),
//! z -> (red, 0.4); offset m = 0.02; asinh softening Q = 20. The mapping:
//! v_b = x_b * scale_b + m; I = mean over bands of max(0, v_b);
//! f(I) = asinh(Q I) / sqrt(Q); channel_b = v_b * f(I) / I (I = 0 taken as
//! 1e-6), clipped to [0, 1]. This is an independent implementation of that
//! published formula.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RgbParams {
    /// Multipliers of the g, r, z bands.
    pub scales: [f32; 3],
    /// Output plane (0 = red, 1 = green, 2 = blue) of the g, r, z bands.
    pub planes: [usize; 3],
    /// Offset added before the stretch, so empty sky maps to dark grey.
    pub m: f32,
    /// asinh softening.
    pub q: f32,
}

impl Default for RgbParams {
    fn default() -> Self {
        Self {
            scales: [2.5, 1.5, 0.4],
            planes: [2, 1, 0],
            m: 0.02,
            q: 20.0,
        }
    }
}

/// RGB u8 pixels (row-major, 3 bytes per pixel) of a CHW g,r,z image of
/// height x width. None if the slice length is not 3 * height * width.
/// Non-finite pixels count as 0.
pub fn sdss_rgb(image: &[f32], height: usize, width: usize, p: &RgbParams) -> Option<Vec<u8>> {
    let table: Vec<(usize, f32)> = p.planes.iter().copied().zip(p.scales).collect();
    mapped(image, &table, p.m, p.q, height * width)
}

/// The viewer's (RGB plane, scale) for a band, from the same `sdss_rgb`
/// table: u and g go to blue, r to green, i and z to red.
pub fn band_plane_scale(band: char) -> Option<(usize, f32)> {
    match band {
        'u' => Some((2, 1.5)),
        'g' => Some((2, 2.5)),
        'r' => Some((1, 1.5)),
        'i' => Some((0, 1.0)),
        'z' => Some((0, 0.4)),
        _ => None,
    }
}

/// `sdss_rgb` over any bands of the viewer's table, as the viewer's JPEG
/// cutouts do for the bands asked: `image` is CHW in `bands` order. The
/// intensity is the mean over the bands given; a plane no band maps to stays
/// black. None for an unknown band or a slice of the wrong length.
pub fn viewer_rgb(image: &[f32], bands: &str, height: usize, width: usize) -> Option<Vec<u8>> {
    let table: Vec<(usize, f32)> = bands.chars().map(band_plane_scale).collect::<Option<_>>()?;
    let defaults = RgbParams::default();
    mapped(image, &table, defaults.m, defaults.q, height * width)
}

/// The mapping itself: band `b` of the CHW `image` (planes of `n` pixels)
/// goes to RGB plane `table[b].0` scaled by `table[b].1`.
fn mapped(image: &[f32], table: &[(usize, f32)], m: f32, q: f32, n: usize) -> Option<Vec<u8>> {
    if table.is_empty() || image.len() != table.len() * n || table.iter().any(|(pl, _)| *pl > 2) {
        return None;
    }
    let sq = q.sqrt();
    let bands = table.len() as f32;
    let mut out = vec![0u8; 3 * n];
    let mut v = vec![0f32; table.len()];
    for i in 0..n {
        let mut sum = 0f32;
        for (b, &(_, scale)) in table.iter().enumerate() {
            let x = image[b * n + i];
            v[b] = (if x.is_finite() { x } else { 0.0 }) * scale + m;
            sum += v[b].max(0.0);
        }
        let mut intensity = sum / bands;
        let f = (q * intensity).asinh() / sq;
        if intensity == 0.0 {
            intensity = 1e-6;
        }
        for (b, &(plane, _)) in table.iter().enumerate() {
            let c = (v[b] * f / intensity).clamp(0.0, 1.0);
            out[3 * i + plane] = (c * 255.0).round() as u8;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // One pixel, g=0.1, r=0.2, z=0.3 nanomaggies, worked by hand:
        // v = (0.27, 0.32, 0.14), I = 0.24333, f = asinh(4.8667)/sqrt(20).
        let img = [0.1f32, 0.2, 0.3];
        let rgb = sdss_rgb(&img, 1, 1, &RgbParams::default()).unwrap();
        let i = (0.27f64 + 0.32 + 0.14) / 3.0;
        let f = (20.0 * i).asinh() / 20f64.sqrt();
        let want = |v: f64| ((v * f / i).clamp(0.0, 1.0) * 255.0).round() as u8;
        assert_eq!(rgb, vec![want(0.14), want(0.32), want(0.27)]);
        // Empty sky is a dark grey, NaN counts as zero.
        let sky = sdss_rgb(&[f32::NAN, 0.0, 0.0], 1, 1, &RgbParams::default()).unwrap();
        assert!(sky.iter().all(|c| *c == sky[0]) && sky[0] > 0 && sky[0] < 80);
        assert!(sdss_rgb(&img, 2, 1, &RgbParams::default()).is_none());
    }

    #[test]
    fn viewer_rgb_agrees_with_the_grz_mapping() {
        let img: Vec<f32> = (0..3 * 6).map(|i| (i as f32 - 4.0) * 0.07).collect();
        assert_eq!(
            viewer_rgb(&img, "grz", 2, 3),
            sdss_rgb(&img, 2, 3, &RgbParams::default())
        );
        // Two bands: the intensity averages over two, the red plane stays black.
        let two = viewer_rgb(&img[..12], "gr", 2, 3).unwrap();
        assert!(two.chunks(3).all(|px| px[0] == 0));
        assert!(viewer_rgb(&img, "gxz", 2, 3).is_none());
        assert!(viewer_rgb(&img, "grz", 3, 3).is_none());
    }
}
