//! What a cutout run is asked to do, as the plan carries it to executors.

use serde::{Deserialize, Serialize};

pub use lenspipe_coadd::Resampling;

/// Where pixels come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSpec {
    /// The Legacy Surveys viewer's `fits-cutout` HTTP API (or a server that
    /// answers it, such as `lenspipe serve-cutouts`).
    Viewer(ViewerSpec),
    /// DR10 coadd bricks under a root (`file://` or `s3://`).
    Bricks {
        coadds_url: String,
        resampling: Resampling,
    },
}

/// The viewer client's settings. Limits are per process: a cluster of N
/// executors keeps up to N x `concurrency` requests in flight and makes up
/// to N x `rate_per_s` requests a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerSpec {
    pub url: String,
    pub layer: String,
    pub concurrency: usize,
    pub rate_per_s: f64,
    pub timeout_s: f64,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

/// What a cutout holds besides its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plane {
    /// The coadded pixels (always made).
    Image,
    /// Per-band inverse variance on the same grid.
    Invvar,
    /// The maskbits bitmask on the same grid.
    Maskbits,
}

impl Plane {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Invvar => "invvar",
            Self::Maskbits => "maskbits",
        }
    }
}

/// One cutout run: the pixel source, the grid, and where shards go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoutSpec {
    /// The version folder the shards are written to,
    /// `<output>/cutouts/v-<run id>`.
    pub output_url: String,
    /// Folders of earlier versions, newest first: a shard of the same name
    /// there lends its `ok` rows made the same way, so only the rest is
    /// made again.
    #[serde(default)]
    pub resume_from: Vec<String>,
    pub source: SourceSpec,
    pub size: usize,
    pub pixscale: f64,
    pub bands: String,
    /// `[image]`, optionally with `invvar` and `maskbits`.
    pub planes: Vec<Plane>,
}

impl CutoutSpec {
    /// The `cutout_source` column: where the pixels came from.
    pub fn source_label(&self) -> String {
        match &self.source {
            SourceSpec::Viewer(v) => format!("viewer:{}?layer={}", v.url, v.layer),
            SourceSpec::Bricks { coadds_url, .. } => format!("bricks:{coadds_url}"),
        }
    }

    /// The `cutout_resampling` column. The viewer resamples with Lanczos-3.
    pub fn resampling(&self) -> Resampling {
        match &self.source {
            SourceSpec::Viewer(_) => Resampling::Lanczos3,
            SourceSpec::Bricks { resampling, .. } => *resampling,
        }
    }

    /// Whether the inverse variance is made beside the image.
    pub fn wants_invvar(&self) -> bool {
        self.planes.contains(&Plane::Invvar)
    }

    /// Whether the maskbits plane is made beside the image.
    pub fn wants_maskbits(&self) -> bool {
        self.planes.contains(&Plane::Maskbits)
    }

    /// Values per maskbits plane: size x size.
    pub fn maskbits_len(&self) -> usize {
        self.size * self.size
    }

    /// Values per image: bands x size x size.
    pub fn image_len(&self) -> usize {
        self.bands.len() * self.size * self.size
    }

    /// Checks what would otherwise fail target by target.
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 || self.size > 512 {
            return Err(format!(
                "cutouts.size: {} is not in 1..=512 pixels",
                self.size
            ));
        }
        if !(self.pixscale > 0.0 && self.pixscale <= 10.0) {
            return Err(format!(
                "cutouts.pixscale: {} is not in (0, 10] arcsec/pixel",
                self.pixscale
            ));
        }
        lenspipe_viewer::bands::validate_bands(&self.bands)
            .map_err(|e| format!("cutouts.bands: '{}': {e}", self.bands))?;
        self.validate_planes()?;
        if let SourceSpec::Viewer(v) = &self.source {
            if v.concurrency == 0 {
                return Err("cutouts.concurrency must be at least 1".into());
            }
            if !(v.rate_per_s > 0.0) {
                return Err("cutouts.rate_per_s must be positive".into());
            }
            if !(v.timeout_s > 0.0) {
                return Err("cutouts.timeout_s must be positive".into());
            }
            if v.layer.is_empty()
                || !v
                    .layer
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("cutouts.layer: '{}' is not a layer name", v.layer));
            }
        }
        Ok(())
    }

    fn validate_planes(&self) -> Result<(), String> {
        if self.planes.first() != Some(&Plane::Image) {
            return Err("cutouts.planes must start with image, e.g. [image, invvar]".into());
        }
        for (i, plane) in self.planes.iter().enumerate() {
            if self.planes[..i].contains(plane) {
                return Err(format!(
                    "cutouts.planes: {} is listed twice",
                    plane.as_str()
                ));
            }
        }
        Ok(())
    }
}
