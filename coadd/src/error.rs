//! Errors, with the kinds the pipeline maps to cutout statuses.

use lenspipe_fits::FitsError;

/// Why a cutout could not be made.
#[derive(Debug)]
pub enum CoaddError {
    /// No image file for any requested band of the brick (`missing_brick`).
    MissingBrick {
        /// The brick name.
        brick: String,
    },
    /// The position is in no brick of the survey (`off_footprint`).
    OffFootprint {
        /// Right ascension, degrees.
        ra: f64,
        /// Declination, degrees.
        dec: f64,
    },
    /// A file could not be decoded.
    Fits(FitsError),
    /// A header's WCS is missing or unsupported.
    Wcs(String),
    /// A request or table that makes no sense (e.g. an empty band list).
    Invalid(String),
}

impl CoaddError {
    /// The status the pipeline records for this error.
    pub fn status(&self) -> &'static str {
        match self {
            CoaddError::MissingBrick { .. } => "missing_brick",
            CoaddError::OffFootprint { .. } => "off_footprint",
            _ => "error",
        }
    }
}

impl std::fmt::Display for CoaddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoaddError::MissingBrick { brick } => {
                write!(f, "brick {brick}: no image file for any requested band")
            }
            CoaddError::OffFootprint { ra, dec } => {
                write!(f, "position ({ra}, {dec}) is in no survey brick")
            }
            CoaddError::Fits(e) => write!(f, "{e}"),
            CoaddError::Wcs(m) => write!(f, "WCS: {m}"),
            CoaddError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CoaddError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CoaddError::Fits(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FitsError> for CoaddError {
    fn from(e: FitsError) -> Self {
        CoaddError::Fits(e)
    }
}

/// `Result` with [`CoaddError`].
pub type Result<T> = std::result::Result<T, CoaddError>;
