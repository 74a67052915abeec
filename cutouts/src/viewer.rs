//! Pixels from the Legacy Surveys viewer's `fits-cutout` API (or any
//! server answering it), through the polite client of `lenspipe-viewer`.

use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use lenspipe_viewer::{ViewerClient, ViewerConfig};

use crate::source::{Cutout, PixelSource, Target};
use crate::spec::{CutoutSpec, ViewerSpec};

/// Shards fetched at once per process. One shard alone keeps every request
/// slot busy (its workers outnumber `cutouts.concurrency`); a second one
/// fills the slots while the first finishes its last requests. More would
/// only spread the same request budget over more unfinished shards, and a
/// kill loses the unfinished ones.
const SHARDS_AT_ONCE: usize = 2;

/// One client per process and spec: its limits hold across every shard the
/// process runs at once.
pub struct ViewerSource {
    client: ViewerClient,
    shards: tokio::sync::Semaphore,
}

impl std::fmt::Debug for ViewerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerSource")
            .field("url", &self.client.config().url)
            .finish()
    }
}

impl ViewerSource {
    pub fn new(viewer: &ViewerSpec, spec: &CutoutSpec) -> Result<Self> {
        let config = ViewerConfig {
            url: viewer.url.clone(),
            layer: viewer.layer.clone(),
            size: spec.size,
            pixscale: spec.pixscale,
            bands: spec.bands.clone(),
            concurrency: viewer.concurrency,
            rate_per_s: viewer.rate_per_s,
            timeout_s: viewer.timeout_s,
            max_retries: viewer.max_retries,
            backoff_base_ms: viewer.backoff_base_ms,
            backoff_max_ms: viewer.backoff_max_ms,
            invvar: spec.wants_invvar(),
            maskbits: spec.wants_maskbits(),
        };
        let client = ViewerClient::new(config)
            .map_err(|e| DataFusionError::Configuration(format!("cutouts viewer client: {e}")))?;
        Ok(Self {
            client,
            shards: tokio::sync::Semaphore::new(SHARDS_AT_ONCE),
        })
    }
}

#[async_trait]
impl PixelSource for ViewerSource {
    async fn cutouts(&self, targets: &[Target]) -> Result<Vec<Cutout>> {
        let _turn = self
            .shards
            .acquire()
            .await
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let positions: Vec<(f64, f64)> = targets.iter().map(|t| (t.ra, t.dec)).collect();
        let fetched = self.client.fetch_all(&positions).await;
        Ok(fetched
            .into_iter()
            .map(|f| Cutout {
                status: f.status,
                image: f.image,
                invvar: f.invvar,
                maskbits: f.maskbits,
                attempts: f.attempts,
            })
            .collect())
    }
}
