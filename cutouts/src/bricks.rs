//! Pixels cut from DR10 coadd bricks under a root (`file://` or `s3://`):
//! `<root>/coadd/<AAA>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz`
//! and `<root>/survey-bricks.fits.gz`.
//!
//! [`BrickReader`] is shared by the cutout stage ([`BrickSource`]) and by
//! `lenspipe serve-cutouts` ([`BrickProvider`]): it finds a target's brick,
//! reads the brick's band files whole and keeps a few bricks open, so that
//! targets grouped by brick decode each tile once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use lenspipe_coadd::{brick_path, BrickImages, BrickIndex, CoaddError, SURVEY_BRICKS};
use lenspipe_sweeps::Location;
use lenspipe_viewer::server::{CutoutProvider, ProviderError};
use tokio::sync::{OnceCell, Semaphore};

use crate::source::{Cutout, PixelSource, Target};
use crate::spec::{CutoutSpec, Resampling};
use crate::CutoutStatus;

/// Bricks kept open at once per reader.
const OPEN_BRICKS: usize = 4;

/// Reads bricks under one coadd root.
pub struct BrickReader {
    root: Location,
    index: OnceCell<Option<Arc<BrickIndex>>>,
    open: Mutex<VecDeque<Arc<Mutex<BrickImages<Bytes>>>>>,
}

impl std::fmt::Debug for BrickReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrickReader")
            .field("root", &self.root.url)
            .finish()
    }
}

impl BrickReader {
    pub fn new(runtime: &RuntimeEnv, root_url: &str) -> Result<Self> {
        let root = Location::resolve(runtime, root_url).map_err(|e| {
            DataFusionError::Configuration(format!("inputs.coadds '{root_url}': {e}"))
        })?;
        Ok(Self {
            root,
            index: OnceCell::new(),
            open: Mutex::new(VecDeque::new()),
        })
    }

    async fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        self.root.child(relative).get_bytes().await
    }

    /// The survey-bricks table, if the root has one.
    async fn index(&self) -> Result<Option<Arc<BrickIndex>>> {
        self.index
            .get_or_try_init(|| async {
                match self.get(SURVEY_BRICKS).await? {
                    None => Ok(None),
                    Some(bytes) => {
                        let source = format!("{}/{SURVEY_BRICKS}", self.root.url);
                        let index = BrickIndex::from_fits(&bytes, &source)
                            .map_err(|e| DataFusionError::Execution(format!("{source}: {e}")))?;
                        Ok(Some(Arc::new(index)))
                    }
                }
            })
            .await
            .cloned()
    }

    /// The brick of a target: the survey-bricks table decides when the
    /// root has one (it knows every brick's unique area); the target's own
    /// `brickname` otherwise.
    async fn brick_of(&self, target: &Target) -> Result<std::result::Result<String, CutoutStatus>> {
        if !(target.ra.is_finite() && target.dec.is_finite() && target.dec.abs() <= 90.0) {
            return Ok(Err(CutoutStatus::OffFootprint));
        }
        match self.index().await? {
            Some(index) => Ok(index
                .find(target.ra, target.dec)
                .map(|b| b.name.clone())
                .map_err(|_| CutoutStatus::OffFootprint)),
            None => Ok(target.brickname.clone().ok_or(CutoutStatus::OffFootprint)),
        }
    }

    /// The open brick `name`, reading its band files if it is not open.
    async fn brick(
        &self,
        name: &str,
        bands: &str,
    ) -> Result<std::result::Result<Arc<Mutex<BrickImages<Bytes>>>, CutoutStatus>> {
        {
            let open = self.open.lock().map_err(|_| poisoned())?;
            if let Some(found) = open
                .iter()
                .find(|b| b.lock().map(|b| b.brick() == name).unwrap_or(false))
            {
                return Ok(Ok(Arc::clone(found)));
            }
        }
        let mut files = Vec::new();
        for band in bands.chars() {
            files.push((band, self.get(&brick_path(name, band)).await?));
        }
        let images = match BrickImages::new(name, files) {
            Ok(images) => images,
            Err(CoaddError::MissingBrick { .. }) => return Ok(Err(CutoutStatus::MissingBrick)),
            Err(e) => {
                return Err(DataFusionError::Execution(format!(
                    "{}/coadd brick {name}: {e}",
                    self.root.url
                )))
            }
        };
        let images = Arc::new(Mutex::new(images));
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        open.push_front(Arc::clone(&images));
        open.truncate(OPEN_BRICKS);
        Ok(Ok(images))
    }

    /// One cutout, CPU work on a blocking thread.
    pub async fn cutout(
        &self,
        target: &Target,
        grid: &lenspipe_coadd::CutoutSpec,
    ) -> Result<Cutout> {
        let brick = match self.brick_of(target).await? {
            Ok(brick) => brick,
            Err(status) => return Ok(Cutout::failed(status, 1)),
        };
        let images = match self.brick(&brick, &grid.bands).await? {
            Ok(images) => images,
            Err(status) => return Ok(Cutout::failed(status, 1)),
        };
        let bands = grid.bands.len();
        let (target, grid) = (target.clone(), grid.clone());
        let made = tokio::task::spawn_blocking(move || {
            let mut images = images.lock().map_err(|_| poisoned())?;
            Ok::<_, DataFusionError>(images.cutout(target.ra, target.dec, &grid))
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("cutout task: {e}")))??;
        match made {
            Ok(cutout) => Ok(Cutout::from_pixels(cutout.pixels, bands, 1)),
            Err(CoaddError::OffFootprint { .. }) => {
                Ok(Cutout::failed(CutoutStatus::OffFootprint, 1))
            }
            Err(CoaddError::MissingBrick { .. }) => {
                Ok(Cutout::failed(CutoutStatus::MissingBrick, 1))
            }
            Err(e) => Err(DataFusionError::Execution(format!(
                "{}/coadd brick {brick}: {e}",
                self.root.url
            ))),
        }
    }
}

fn poisoned() -> DataFusionError {
    DataFusionError::Internal("brick cache poisoned".into())
}

fn grid(spec: &CutoutSpec, resampling: Resampling) -> lenspipe_coadd::CutoutSpec {
    lenspipe_coadd::CutoutSpec {
        size: spec.size,
        pixscale: spec.pixscale,
        bands: spec.bands.clone(),
        resampling,
    }
}

/// The cutout stage's source for `cutouts.source: bricks`. Shards run at
/// most one per core at a time in a process: bricks are large.
#[derive(Debug)]
pub struct BrickSource {
    reader: Arc<BrickReader>,
    grid: lenspipe_coadd::CutoutSpec,
    shards: Arc<Semaphore>,
}

impl BrickSource {
    pub fn new(
        runtime: &RuntimeEnv,
        coadds_url: &str,
        resampling: Resampling,
        spec: &CutoutSpec,
    ) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            reader: Arc::new(BrickReader::new(runtime, coadds_url)?),
            grid: grid(spec, resampling),
            shards: shared_semaphore(cores),
        })
    }
}

/// One limit per process on shards cut from bricks at once.
fn shared_semaphore(permits: usize) -> Arc<Semaphore> {
    static SHARED: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
    Arc::clone(SHARED.get_or_init(|| Arc::new(Semaphore::new(permits))))
}

#[async_trait]
impl PixelSource for BrickSource {
    async fn cutouts(&self, targets: &[Target]) -> Result<Vec<Cutout>> {
        let _permit = self
            .shards
            .acquire()
            .await
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            out.push(self.reader.cutout(target, &self.grid).await?);
        }
        Ok(out)
    }
}

/// `lenspipe serve-cutouts`: answers the viewer's API from bricks, with
/// Lanczos-3 like the viewer. Layers: any name (one coadd root is one layer).
pub struct BrickProvider {
    reader: Arc<BrickReader>,
    runtime: tokio::runtime::Handle,
}

impl BrickProvider {
    pub fn new(
        runtime: &RuntimeEnv,
        coadds_url: &str,
        handle: tokio::runtime::Handle,
    ) -> Result<Self> {
        Ok(Self {
            reader: Arc::new(BrickReader::new(runtime, coadds_url)?),
            runtime: handle,
        })
    }
}

impl CutoutProvider for BrickProvider {
    fn cutout(
        &self,
        ra: f64,
        dec: f64,
        size: usize,
        pixscale: f64,
        bands: &str,
        _layer: &str,
    ) -> std::result::Result<Vec<f32>, ProviderError> {
        let grid = lenspipe_coadd::CutoutSpec {
            size,
            pixscale,
            bands: bands.to_string(),
            resampling: Resampling::Lanczos3,
        };
        let target = Target {
            ra,
            dec,
            brickname: None,
        };
        let made = self
            .runtime
            .block_on(self.reader.cutout(&target, &grid))
            .map_err(|e| ProviderError::Other(e.to_string()))?;
        match (made.status, made.image) {
            (_, Some(image)) => Ok(image),
            // The viewer answers 500 where it has no pixels to give.
            (CutoutStatus::OffFootprint | CutoutStatus::MissingBrick, None) => {
                Err(ProviderError::OffFootprint)
            }
            (status, None) => Err(ProviderError::Other(format!("no pixels: {status}"))),
        }
    }

    fn default_bands(&self, _layer: &str) -> String {
        "grz".to_string()
    }
}
