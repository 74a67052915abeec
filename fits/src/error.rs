//! The crate's error type: every error says where in which file it happened.

use std::fmt;

use arrow::error::ArrowError;

/// What kind of problem a [`FitsError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The underlying reader failed.
    Io,
    /// The file ends before the header or the data it describes.
    Truncated,
    /// A header is malformed, inconsistent or not a FITS header at all.
    Header,
    /// A valid FITS feature this crate does not read (e.g. variable-length arrays).
    Unsupported,
    /// The table data (or a caller's request against it) is invalid.
    Data,
}

/// An error reading a FITS binary table.
///
/// Its message always names the source (file name or URL), the HDU number
/// (0 = primary), the byte offset in the file and what is wrong, e.g.
/// `sweep-000m005-005p000.fits: HDU 1, byte 8640: NAXIS1 = 380 but the TFORMs add up to 383 bytes`.
#[derive(Debug)]
pub struct FitsError {
    /// What kind of problem this is.
    pub kind: ErrorKind,
    /// The file name or URL the bytes came from.
    pub source: String,
    /// The HDU the problem is in (0 = primary HDU, 1 = first extension).
    pub hdu: usize,
    /// The byte offset in the file where the problem is.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl FitsError {
    /// A new error of `kind` at `offset` of HDU `hdu` in `source`.
    pub fn new(
        kind: ErrorKind,
        source: &str,
        hdu: usize,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            source: source.to_owned(),
            hdu,
            offset,
            message: message.into(),
            cause: None,
        }
    }

    /// An I/O error from the underlying reader while reading at `offset`.
    pub fn io(source: &str, hdu: usize, offset: u64, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::UnexpectedEof {
            ErrorKind::Truncated
        } else {
            ErrorKind::Io
        };
        let mut e = Self::new(kind, source, hdu, offset, format!("read failed: {err}"));
        e.cause = Some(Box::new(err));
        e
    }

    /// Attaches the lower-level error that caused this one (see [`std::error::Error::source`]).
    pub(crate) fn with_cause(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }
}

impl fmt::Display for FitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: HDU {}, byte {}: {}",
            self.source, self.hdu, self.offset, self.message
        )
    }
}

impl std::error::Error for FitsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<FitsError> for ArrowError {
    /// Wraps the error as [`ArrowError::ExternalError`], keeping it downcastable.
    fn from(e: FitsError) -> Self {
        ArrowError::ExternalError(Box::new(e))
    }
}

/// `Result` with [`FitsError`].
pub type Result<T> = std::result::Result<T, FitsError>;

/// Where errors are being reported: one HDU of one source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Location<'a> {
    pub source: &'a str,
    pub hdu: usize,
}

impl Location<'_> {
    pub fn err(&self, kind: ErrorKind, offset: u64, message: impl Into<String>) -> FitsError {
        FitsError::new(kind, self.source, self.hdu, offset, message)
    }

    pub fn header(&self, offset: u64, message: impl Into<String>) -> FitsError {
        self.err(ErrorKind::Header, offset, message)
    }

    pub fn truncated(&self, offset: u64, message: impl Into<String>) -> FitsError {
        self.err(ErrorKind::Truncated, offset, message)
    }

    pub fn unsupported(&self, offset: u64, message: impl Into<String>) -> FitsError {
        self.err(ErrorKind::Unsupported, offset, message)
    }

    pub fn data(&self, offset: u64, message: impl Into<String>) -> FitsError {
        self.err(ErrorKind::Data, offset, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_source_hdu_offset_and_problem() {
        let e = FitsError::new(
            ErrorKind::Header,
            "sweep-000m005-005p000.fits",
            1,
            8640,
            "NAXIS1 = 380 but the TFORMs add up to 383 bytes",
        );
        assert_eq!(
            e.to_string(),
            "sweep-000m005-005p000.fits: HDU 1, byte 8640: NAXIS1 = 380 but the TFORMs add up to 383 bytes"
        );
    }

    #[test]
    fn io_eof_is_truncation_and_keeps_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        let e = FitsError::io("f.fits", 1, 42, io);
        assert_eq!(e.kind, ErrorKind::Truncated);
        assert!(std::error::Error::source(&e).is_some());
        let arrow: ArrowError = e.into();
        assert!(arrow.to_string().contains("f.fits: HDU 1, byte 42"));
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<FitsError>();
    }
}
