//! A synthetic provider whose pixels encode the target, so tests can check
//! that exactly the served pixels came back.

#![allow(dead_code)]

use std::sync::Arc;

use lenspipe_viewer::fits_image::Planes;
use lenspipe_viewer::server::{
    key_unit, serve, target_key, CutoutProvider, CutoutRequest, Faults, ProviderError, ServerHandle,
};
use lenspipe_viewer::ViewerConfig;

pub const LAYER: &str = "ls-dr10";

pub struct SynthProvider;

/// Targets whose last band has no data (a plane of exact zeros).
pub fn lacks_last_band(ra: f64, dec: f64) -> bool {
    key_unit(&format!("coverage {}", target_key(ra, dec))) < 0.06
}

impl CutoutProvider for SynthProvider {
    fn cutout(&self, r: &CutoutRequest) -> Result<Planes, ProviderError> {
        let (ra, dec, size, bands) = (r.ra, r.dec, r.size, r.bands.as_str());
        if r.layer != LAYER {
            return Err(ProviderError::UnknownLayer);
        }
        if dec > 80.0 {
            return Err(ProviderError::OffFootprint);
        }
        let planes = bands.chars().count();
        let mut out = Vec::with_capacity(size * size * planes);
        for c in 0..planes {
            let empty = c + 1 == planes && lacks_last_band(ra, dec);
            for y in 0..size {
                for x in 0..size {
                    out.push(if empty {
                        0.0
                    } else {
                        (ra * 1000.0 + dec * 10.0) as f32 + (c * 10_000 + y * 100 + x) as f32 * 1e-3
                    });
                }
            }
        }
        Ok(Planes::image_only(out))
    }
}

/// The image `provider` serves for a request without extra planes.
pub fn image_of(
    provider: &dyn CutoutProvider,
    (ra, dec): (f64, f64),
    size: usize,
    pixscale: f64,
    bands: &str,
) -> Vec<f32> {
    let request = CutoutRequest {
        ra,
        dec,
        size,
        pixscale,
        bands: bands.to_string(),
        layer: LAYER.to_string(),
        extra: Default::default(),
    };
    provider.cutout(&request).unwrap().image
}

pub async fn start(faults: Faults) -> ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, Arc::new(SynthProvider), faults)
        .await
        .unwrap()
}

/// Small sizes, short timeouts and backoffs: keeps the suite fast.
pub fn test_config(url: String) -> ViewerConfig {
    ViewerConfig {
        url,
        layer: LAYER.to_string(),
        size: 11,
        pixscale: 0.262,
        bands: "grz".to_string(),
        concurrency: 6,
        rate_per_s: f64::INFINITY,
        timeout_s: 0.25,
        max_retries: 3,
        backoff_base_ms: 10,
        backoff_max_ms: 1500,
        invvar: false,
        maskbits: false,
    }
}

pub fn targets(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| (10.0 + i as f64 * 0.37, -5.0 + i as f64 * 0.05))
        .collect()
}
