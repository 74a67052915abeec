//! Pixels cut from DR10 coadd bricks under a root (`file://` or `s3://`):
//! `<root>/coadd/<AAA>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz`
//! (with `-invvar-<band>.fits.fz` and `-maskbits.fits.fz` when those planes
//! are asked for) and `<root>/survey-bricks.fits.gz`.
//!
//! [`BrickReader`] is shared by the cutout stage ([`BrickSource`]) and by
//! `lenspipe serve-cutouts` ([`BrickProvider`]): it finds a target's brick,
//! maps a local brick's band files (only the pages a cutout touches are
//! read) or fetches a remote one whole after checking its size against its
//! header, and keeps a few bricks open, so that targets grouped by brick
//! decode each tile once. A brick that cannot be read or decoded is the
//! target's `bad_brick` status, not a failed shard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use lenspipe_coadd::files::{map_file, Mmap};
use lenspipe_coadd::{brick_file, BrickImages, BrickIndex, CoaddError, CoaddKind, SURVEY_BRICKS};
use lenspipe_sweeps::Location;
use lenspipe_viewer::fits_image::Planes;
use lenspipe_viewer::server::{CutoutProvider, CutoutRequest, ProviderError};
use object_store::ObjectStoreExt;
use tokio::sync::{OnceCell, Semaphore};

use crate::source::{Cutout, PixelSource, Target};
use crate::spec::{CutoutSpec, Plane, Resampling};
use crate::CutoutStatus;

/// Bricks kept open at once per reader.
const OPEN_BRICKS: usize = 4;

/// The band letter the single maskbits file is opened under.
const MASKBITS_BAND: char = 'm';

/// Bytes of a remote file read first to find where its image ends.
const HEADER_PREFIX: u64 = 1 << 20;

/// How much longer than its headers say a remote brick file may be (room
/// for a trailing extension) before it is refused rather than fetched.
const EXTRA_BYTES: u64 = 1 << 20;

/// A band file's bytes: mapped when local, fetched when remote.
pub enum BrickBytes {
    Mapped(Mmap),
    Fetched(Bytes),
}

impl AsRef<[u8]> for BrickBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            BrickBytes::Mapped(m) => m,
            BrickBytes::Fetched(b) => b,
        }
    }
}

/// An open brick, or why its targets get no pixels.
type Opened = std::result::Result<Arc<Mutex<BrickImages<BrickBytes>>>, CutoutStatus>;

/// Reads bricks under one coadd root.
pub struct BrickReader {
    root: Location,
    index: OnceCell<Option<Arc<BrickIndex>>>,
    open: Mutex<VecDeque<Arc<Mutex<BrickImages<BrickBytes>>>>>,
    /// Bricks found unreadable, so their other targets do not read them again.
    bad: Mutex<Vec<String>>,
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
            bad: Mutex::new(Vec::new()),
        })
    }

    async fn get(&self, relative: &str) -> Result<Option<Bytes>> {
        self.root.child(relative).get_bytes().await
    }

    /// A band file: `Ok(None)` if it does not exist, `Err` with a message
    /// if it cannot be read or is far larger than its headers say.
    async fn band_file(
        &self,
        relative: &str,
    ) -> Result<std::result::Result<Option<BrickBytes>, String>> {
        let at = self.root.child(relative);
        if let Some(path) = at.to_file_path() {
            return Ok(map_file(&path)
                .map(|m| m.map(BrickBytes::Mapped))
                .map_err(|e| format!("{}: {e}", at.url)));
        }
        let size = match at.store.head(&at.path).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(format!("{}: {e}", at.url))),
        };
        let prefix = match at
            .store
            .get_range(&at.path, 0..size.min(HEADER_PREFIX))
            .await
        {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("{}: {e}", at.url))),
        };
        let extent = match lenspipe_fits::tiled::compressed_extent(&prefix, &at.url) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if size > extent.saturating_add(EXTRA_BYTES) {
            return Ok(Err(format!(
                "{}: the file is {size} bytes but its headers describe {extent}; not read",
                at.url
            )));
        }
        match at.get_bytes().await {
            Ok(Some(b)) => Ok(Ok(Some(BrickBytes::Fetched(b)))),
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(format!("{}: {e}", at.url))),
        }
    }

    fn mark_bad(&self, name: &str, why: &str) -> Result<CutoutStatus> {
        tracing::warn!("coadd brick {name} is unreadable, its targets get bad_brick: {why}");
        self.bad
            .lock()
            .map_err(|_| poisoned())?
            .push(name.to_owned());
        Ok(CutoutStatus::BadBrick)
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

    /// The open files of `kind` of brick `name`, reading its band files if
    /// they are not open.
    async fn brick(&self, name: &str, kind: CoaddKind, bands: &str) -> Result<Opened> {
        {
            if self
                .bad
                .lock()
                .map_err(|_| poisoned())?
                .iter()
                .any(|b| b == name)
            {
                return Ok(Err(CutoutStatus::BadBrick));
            }
            let open = self.open.lock().map_err(|_| poisoned())?;
            if let Some(found) = open.iter().find(|b| {
                b.lock()
                    .map(|b| b.brick() == name && b.kind() == kind)
                    .unwrap_or(false)
            }) {
                return Ok(Ok(Arc::clone(found)));
            }
        }
        let mut files = Vec::new();
        for band in bands.chars() {
            match self.band_file(&brick_file(name, kind, band)).await? {
                Ok(file) => files.push((band, file)),
                Err(why) => return Ok(Err(self.mark_bad(name, &why)?)),
            }
        }
        let images = match BrickImages::of_kind(name, kind, files) {
            Ok(images) => images,
            Err(CoaddError::MissingBrick { .. }) => return Ok(Err(CutoutStatus::MissingBrick)),
            Err(e) => {
                let why = format!("{}/coadd brick {name}: {e}", self.root.url);
                return Ok(Err(self.mark_bad(name, &why)?));
            }
        };
        let images = Arc::new(Mutex::new(images));
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        open.push_front(Arc::clone(&images));
        // Image, invvar and maskbits files of the same bricks are open side by side.
        open.truncate(OPEN_BRICKS * 3);
        Ok(Ok(images))
    }

    /// One cutout, with the other `planes` asked for (a plane whose files
    /// the brick lacks is left out); CPU work on a blocking thread.
    pub async fn cutout(
        &self,
        target: &Target,
        grid: &lenspipe_coadd::CutoutSpec,
        planes: &[Plane],
    ) -> Result<Cutout> {
        let brick = match self.brick_of(target).await? {
            Ok(brick) => brick,
            Err(status) => return Ok(Cutout::failed(status, 1)),
        };
        let pixels = match self.cut(&brick, CoaddKind::Image, target, grid).await? {
            Ok(pixels) => pixels,
            Err(status) => return Ok(Cutout::failed(status, 1)),
        };
        let mut cutout = Cutout::from_pixels(pixels, grid.bands.len(), 1);
        if planes.contains(&Plane::Invvar) {
            match self.cut(&brick, CoaddKind::Invvar, target, grid).await? {
                Ok(invvar) => cutout = cutout.with_invvar(Some(invvar)),
                Err(CutoutStatus::MissingBrick) => {}
                Err(status) => return Ok(Cutout::failed(status, 1)),
            }
        }
        if planes.contains(&Plane::Maskbits) {
            // One file for all bands, given as a single band.
            let one = lenspipe_coadd::CutoutSpec {
                bands: MASKBITS_BAND.to_string(),
                ..grid.clone()
            };
            match self.cut(&brick, CoaddKind::Maskbits, target, &one).await? {
                Ok(bits) => {
                    let bits = bits.into_iter().map(|v| v as i32).collect();
                    cutout = cutout.with_maskbits(Some(bits));
                }
                Err(CutoutStatus::MissingBrick) => {}
                Err(status) => return Ok(Cutout::failed(status, 1)),
            }
        }
        Ok(cutout)
    }

    /// The pixels of `target` from the brick's files of `kind`, or the
    /// status that stands for them.
    async fn cut(
        &self,
        brick: &str,
        kind: CoaddKind,
        target: &Target,
        grid: &lenspipe_coadd::CutoutSpec,
    ) -> Result<std::result::Result<Vec<f32>, CutoutStatus>> {
        let images = match self.brick(brick, kind, &grid.bands).await? {
            Ok(images) => images,
            Err(status) => return Ok(Err(status)),
        };
        let (target, grid) = (target.clone(), grid.clone());
        let made = tokio::task::spawn_blocking(move || {
            let mut images = images.lock().map_err(|_| poisoned())?;
            Ok::<_, DataFusionError>(images.cutout(target.ra, target.dec, &grid))
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("cutout task: {e}")))??;
        match made {
            Ok(cutout) => Ok(Ok(cutout.pixels)),
            Err(CoaddError::OffFootprint { .. }) => Ok(Err(CutoutStatus::OffFootprint)),
            Err(CoaddError::MissingBrick { .. }) => Ok(Err(CutoutStatus::MissingBrick)),
            // A tile that does not decode: the brick is corrupt.
            Err(e) => {
                let why = format!("{}/coadd brick {brick}: {e}", self.root.url);
                Ok(Err(self.mark_bad(brick, &why)?))
            }
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
    planes: Vec<Plane>,
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
            planes: spec.planes.clone(),
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
            out.push(self.reader.cutout(target, &self.grid, &self.planes).await?);
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
    /// Lanczos-3 like the viewer; invvar resampled as the image is, and
    /// each maskbits pixel from the nearest brick pixel. Layers: any name
    /// (one coadd root is one layer).
    fn cutout(&self, r: &CutoutRequest) -> std::result::Result<Planes, ProviderError> {
        let grid = lenspipe_coadd::CutoutSpec {
            size: r.size,
            pixscale: r.pixscale,
            bands: r.bands.clone(),
            resampling: Resampling::Lanczos3,
        };
        let target = Target {
            ra: r.ra,
            dec: r.dec,
            brickname: None,
        };
        let mut planes = vec![Plane::Image];
        if r.extra.invvar {
            planes.push(Plane::Invvar);
        }
        if r.extra.maskbits {
            planes.push(Plane::Maskbits);
        }
        let made = self
            .runtime
            .block_on(self.reader.cutout(&target, &grid, &planes))
            .map_err(|e| ProviderError::Other(e.to_string()))?;
        match (made.status, made.image) {
            (_, Some(image)) => Ok(Planes {
                image,
                invvar: made.invvar,
                maskbits: made.maskbits,
            }),
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
