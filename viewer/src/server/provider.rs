//! Where the local server's pixels come from.

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

/// Makes cutouts for the local server, e.g. from coadd bricks on disk.
///
/// `cutout` is CPU (and disk) work: the server calls it on tokio's blocking
/// pool. It returns `size * size * bands.len()` float32 values in CHW order
/// (rows along Dec, as FITS axis 2), a plane of exact zeros where a band has
/// no data.
pub trait CutoutProvider: Send + Sync + 'static {
    fn cutout(
        &self,
        ra: f64,
        dec: f64,
        size: usize,
        pixscale: f64,
        bands: &str,
        layer: &str,
    ) -> Result<Vec<f32>, ProviderError>;

    /// The cutout and, as `extra` asks, its inverse variance and maskbits
    /// on the same grid (`None` for a layer without them, as the viewer
    /// answers then). The default has neither.
    #[allow(clippy::too_many_arguments)]
    fn cutout_planes(
        &self,
        ra: f64,
        dec: f64,
        size: usize,
        pixscale: f64,
        bands: &str,
        layer: &str,
        extra: ExtraPlanes,
    ) -> Result<crate::fits_image::Planes, ProviderError> {
        let _ = extra;
        Ok(crate::fits_image::Planes::image(
            self.cutout(ra, dec, size, pixscale, bands, layer)?,
        ))
    }

    /// Bands served for `layer`, used when a request has no `bands` or an
    /// invalid one (the viewer silently falls back to these).
    fn default_bands(&self, _layer: &str) -> String {
        "griz".to_string()
    }
}
