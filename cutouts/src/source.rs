//! Pixel sources: what turns a target into a cutout.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;

use crate::spec::{CutoutSpec, SourceSpec};
use lenspipe_viewer::CutoutStatus;

/// One target: where to centre the cutout, and its brick when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub ra: f64,
    pub dec: f64,
    pub brickname: Option<String>,
}

/// One target's outcome. `image` is bands x size x size values (CHW) when
/// pixels came, whatever the status; `invvar` the same for the inverse
/// variance and `maskbits` size x size bitmasks, when asked for and the
/// source has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Cutout {
    pub status: CutoutStatus,
    pub image: Option<Vec<f32>>,
    pub invvar: Option<Vec<f32>>,
    pub maskbits: Option<Vec<i32>>,
    pub attempts: u32,
}

impl Cutout {
    /// A cutout with pixels: `ok`, or `no_coverage` when a band is all zeros.
    pub fn from_pixels(image: Vec<f32>, bands: usize, attempts: u32) -> Self {
        let plane = image.len() / bands.max(1);
        let empty_band = plane > 0
            && image
                .chunks(plane)
                .any(|band| band.iter().all(|v| *v == 0.0));
        let status = if empty_band {
            CutoutStatus::NoCoverage
        } else {
            CutoutStatus::Ok
        };
        Self {
            status,
            image: Some(image),
            invvar: None,
            maskbits: None,
            attempts,
        }
    }

    /// The same cutout with its inverse variance.
    pub fn with_invvar(mut self, invvar: Option<Vec<f32>>) -> Self {
        self.invvar = invvar;
        self
    }

    /// The same cutout with its maskbits.
    pub fn with_maskbits(mut self, maskbits: Option<Vec<i32>>) -> Self {
        self.maskbits = maskbits;
        self
    }

    pub fn failed(status: CutoutStatus, attempts: u32) -> Self {
        Self {
            status,
            image: None,
            invvar: None,
            maskbits: None,
            attempts,
        }
    }
}

/// Makes cutouts for a batch of targets, in the order given. A target that
/// cannot be made is a status, not an error; an error fails the shard (for
/// example the coadd store cannot be read at all).
#[async_trait]
pub trait PixelSource: Send + Sync + Debug {
    async fn cutouts(&self, targets: &[Target]) -> Result<Vec<Cutout>>;
}

/// The source a spec asks for. Viewer clients are shared per process, so
/// `cutouts.concurrency` and `cutouts.rate_per_s` hold for the whole process
/// however many partitions it runs at once.
pub fn source_for(spec: &CutoutSpec, runtime: &RuntimeEnv) -> Result<Arc<dyn PixelSource>> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<dyn PixelSource>>>> = OnceLock::new();
    match &spec.source {
        SourceSpec::Viewer(viewer) => {
            let key = serde_json::to_string(spec)
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            // Looked up and made under one lock: shards starting together share one client.
            let mut shared = SHARED
                .get_or_init(Default::default)
                .lock()
                .map_err(|_| poisoned())?;
            if let Some(source) = shared.get(&key) {
                return Ok(Arc::clone(source));
            }
            let source: Arc<dyn PixelSource> =
                Arc::new(crate::viewer::ViewerSource::new(viewer, spec)?);
            shared.insert(key, Arc::clone(&source));
            Ok(source)
        }
        SourceSpec::Bricks {
            coadds_url,
            resampling,
        } => Ok(Arc::new(crate::bricks::BrickSource::new(
            runtime,
            coadds_url,
            *resampling,
            spec,
        )?)),
    }
}

fn poisoned() -> DataFusionError {
    DataFusionError::Internal("cutout source registry poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_zero_band_is_no_coverage_and_keeps_its_pixels() {
        let mut image = vec![1.0f32; 3 * 4];
        assert_eq!(
            Cutout::from_pixels(image.clone(), 3, 1).status,
            CutoutStatus::Ok
        );
        image[4..8].fill(0.0);
        let c = Cutout::from_pixels(image.clone(), 3, 2);
        assert_eq!(c.status, CutoutStatus::NoCoverage);
        assert_eq!(c.image, Some(image));
    }
}
