//! Client configuration.

use serde::Deserialize;

use crate::bands::{validate_bands, BandsError};

/// The public Legacy Surveys viewer endpoint.
pub const PUBLIC_VIEWER_URL: &str = "https://www.legacysurvey.org/viewer/fits-cutout";

/// The viewer clamps larger sizes to this.
pub const MAX_SIZE: usize = 3000;

/// How to reach the viewer and how politely.
///
/// The limits are per [`crate::ViewerClient`]. On a cluster every executor
/// process builds its own client, so the load on the viewer adds up:
/// at most `executors x concurrency` requests in flight and
/// `executors x rate_per_s` requests per second (retries included). Divide
/// the budget you want to spend on the public service by the number of
/// executors when setting these.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewerConfig {
    /// Full URL of the fits-cutout endpoint.
    pub url: String,
    /// Viewer layer, e.g. `ls-dr10`.
    pub layer: String,
    /// Cutout side in pixels (1..=3000).
    pub size: usize,
    /// Arcsec per pixel; 0.262 is the native DECam scale.
    pub pixscale: f64,
    /// Bands in plane order, distinct letters from `griz`.
    pub bands: String,
    /// Requests in flight at once (per client).
    pub concurrency: usize,
    /// Average requests per second (per client, retries included);
    /// `f64::INFINITY` for no limit.
    pub rate_per_s: f64,
    /// Timeout for one request, body included.
    pub timeout_s: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff ceiling; doubles with every retry (full jitter).
    pub backoff_base_ms: u64,
    /// Largest wait between attempts, also the cap on `Retry-After`.
    pub backoff_max_ms: u64,
    /// Also ask for the inverse variance (`&invvar`): the viewer then adds
    /// an INVVAR cube on the same grid, for layers that have invvar files.
    pub invvar: bool,
    /// Also ask for the maskbits (`&maskbits`): one int32 MASKBITS plane
    /// on the same grid, for layers that have maskbits files.
    pub maskbits: bool,
}

impl Default for ViewerConfig {
    /// Conservative defaults for the public service.
    fn default() -> Self {
        Self {
            url: PUBLIC_VIEWER_URL.to_string(),
            layer: "ls-dr10".to_string(),
            size: 101,
            pixscale: 0.262,
            bands: "grz".to_string(),
            concurrency: 4,
            rate_per_s: 4.0,
            timeout_s: 60.0,
            max_retries: 4,
            backoff_base_ms: 1000,
            backoff_max_ms: 60_000,
            invvar: false,
            maskbits: false,
        }
    }
}

/// A configuration the client refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("bad bands: {0}")]
    Bands(#[from] BandsError),
    #[error("size must be 1..={MAX_SIZE}, got {0}")]
    Size(usize),
    #[error("pixscale must be finite and > 0, got {0}")]
    Pixscale(f64),
    #[error("concurrency must be >= 1")]
    Concurrency,
    #[error("rate_per_s must be > 0, got {0}")]
    Rate(f64),
    #[error("timeout_s must be finite and > 0, got {0}")]
    Timeout(f64),
    #[error("url must start with http:// or https://, got {0:?}")]
    Url(String),
    #[error("layer must be non-empty")]
    Layer,
    #[error("http client: {0}")]
    Http(String),
}

impl ViewerConfig {
    /// Checks every field; the client calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_bands(&self.bands)?;
        if self.size == 0 || self.size > MAX_SIZE {
            return Err(ConfigError::Size(self.size));
        }
        if !(self.pixscale.is_finite() && self.pixscale > 0.0) {
            return Err(ConfigError::Pixscale(self.pixscale));
        }
        if self.concurrency == 0 {
            return Err(ConfigError::Concurrency);
        }
        if self.rate_per_s.is_nan() || self.rate_per_s <= 0.0 {
            return Err(ConfigError::Rate(self.rate_per_s));
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(ConfigError::Timeout(self.timeout_s));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::Url(self.url.clone()));
        }
        if self.layer.is_empty() {
            return Err(ConfigError::Layer);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ViewerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_fields() {
        let bad = |f: fn(&mut ViewerConfig)| {
            let mut c = ViewerConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(bad(|c| c.bands = "g,r".into()));
        assert!(bad(|c| c.size = 0));
        assert!(bad(|c| c.size = 3001));
        assert!(bad(|c| c.pixscale = f64::NAN));
        assert!(bad(|c| c.concurrency = 0));
        assert!(bad(|c| c.rate_per_s = 0.0));
        assert!(bad(|c| c.timeout_s = 0.0));
        assert!(bad(|c| c.url = "ftp://x".into()));
    }

    #[test]
    fn deserializes_partial_json() {
        let c: ViewerConfig =
            serde_json::from_str(r#"{"concurrency": 16, "bands": "griz"}"#).unwrap();
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.bands, "griz");
        assert_eq!(c.size, 101);
    }
}
