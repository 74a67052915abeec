//! Where the local server's pixels come from.

use crate::fits_image::Planes;

/// Why a provider could not make a cutout.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// No overlap with the data (the viewer answers HTTP 500).
    #[error("no overlap with the footprint")]
    OffFootprint,
    /// The layer is not served (the viewer answers 200 `no such layer`).
    #[error("no such layer")]
    UnknownLayer,
    #[error("{0}")]
    Other(String),
}

/// The planes a request asks for besides the image (`invvar`, `maskbits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtraPlanes {
    pub invvar: bool,
    pub maskbits: bool,
}

/// One validated cutout request: what every provider is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutRequest {
    /// Centre, degrees.
    pub ra: f64,
    pub dec: f64,
    /// Pixels on a side.
    pub size: usize,
    /// Arcsec per pixel.
    pub pixscale: f64,
    /// Band letters in plane order.
    pub bands: String,
    pub layer: String,
    /// Planes besides the image (`invvar`, `maskbits` in the query).
    pub extra: ExtraPlanes,
}

/// Makes cutouts for the local server, e.g. from coadd bricks on disk.
///
/// `cutout` is CPU (and disk) work: the server calls it on tokio's blocking
/// pool. The image is `size * size * bands.len()` float32 values in CHW
/// order (rows along Dec, as FITS axis 2), a plane of exact zeros where a
/// band has no data; the invvar and maskbits planes are there as the
/// request's `extra` asks and the provider has them (`None` otherwise, as
/// the viewer answers for a layer without those files).
pub trait CutoutProvider: Send + Sync + 'static {
    fn cutout(&self, request: &CutoutRequest) -> Result<Planes, ProviderError>;

    /// Bands served for `layer`, used when a request has no `bands` or an
    /// invalid one (the viewer silently falls back to these).
    fn default_bands(&self, _layer: &str) -> String {
        "griz".to_string()
    }
}
