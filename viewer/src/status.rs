//! Final outcome of one cutout request.

use std::fmt;

/// What became of a target after all attempts.
///
/// `as_str()` values are stable: they are written to result tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutoutStatus {
    /// A valid image with data in every band.
    Ok,
    /// A valid image in which at least one band plane is entirely 0.0 (the
    /// viewer's way of saying "no data in this band"). The image is kept.
    NoCoverage,
    /// A final HTTP status other than 200 and 500 (e.g. 404, or 429/503
    /// after all retries).
    Http(u16),
    /// Every attempt timed out.
    Timeout,
    /// The last answer was not a valid cutout: HTML or text instead of FITS,
    /// `no such layer`, an empty or truncated body, the wrong shape or BANDS,
    /// or a transport error (connection refused or reset).
    BadResponse,
    /// A final HTTP 500. The viewer answers 500 when the cutout does not
    /// overlap the survey footprint; it cannot be told apart from a real
    /// server error, so 500 is retried like any 5xx and only a 500 on the
    /// last attempt is reported as off the footprint.
    OffFootprint,
    /// Cut from coadd bricks: the brick that holds the target has no image
    /// file under the coadd root.
    MissingBrick,
    /// Cut from coadd bricks: the brick's image file could not be read or
    /// decoded (truncated, corrupt, unsupported, or larger than its header).
    BadBrick,
}

impl CutoutStatus {
    /// Stable lower-case name: `ok`, `no_coverage`, `http_<code>`, `timeout`,
    /// `bad_response`, `off_footprint`.
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        match self {
            CutoutStatus::Ok => "ok".into(),
            CutoutStatus::NoCoverage => "no_coverage".into(),
            CutoutStatus::Http(code) => format!("http_{code}").into(),
            CutoutStatus::Timeout => "timeout".into(),
            CutoutStatus::BadResponse => "bad_response".into(),
            CutoutStatus::OffFootprint => "off_footprint".into(),
            CutoutStatus::MissingBrick => "missing_brick".into(),
            CutoutStatus::BadBrick => "bad_brick".into(),
        }
    }

    /// True when an image came back (`ok` or `no_coverage`).
    pub fn has_image(&self) -> bool {
        matches!(self, CutoutStatus::Ok | CutoutStatus::NoCoverage)
    }
}

impl std::str::FromStr for CutoutStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ok" => Self::Ok,
            "no_coverage" => Self::NoCoverage,
            "timeout" => Self::Timeout,
            "bad_response" => Self::BadResponse,
            "off_footprint" => Self::OffFootprint,
            "missing_brick" => Self::MissingBrick,
            "bad_brick" => Self::BadBrick,
            other => match other.strip_prefix("http_").and_then(|c| c.parse().ok()) {
                Some(code) => Self::Http(code),
                None => return Err(format!("'{s}' is not a cutout status")),
            },
        })
    }
}

impl fmt::Display for CutoutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "ok",
            "no_coverage",
            "timeout",
            "bad_response",
            "off_footprint",
            "missing_brick",
            "bad_brick",
            "http_429",
        ] {
            let status: CutoutStatus = name.parse().unwrap();
            assert_eq!(status.as_str(), name);
        }
        assert!("http_x".parse::<CutoutStatus>().is_err());
        assert!("OK".parse::<CutoutStatus>().is_err());
    }

    #[test]
    fn names() {
        assert_eq!(CutoutStatus::Ok.as_str(), "ok");
        assert_eq!(CutoutStatus::NoCoverage.as_str(), "no_coverage");
        assert_eq!(CutoutStatus::Http(404).as_str(), "http_404");
        assert_eq!(CutoutStatus::Timeout.to_string(), "timeout");
        assert_eq!(CutoutStatus::BadResponse.as_str(), "bad_response");
        assert_eq!(CutoutStatus::OffFootprint.as_str(), "off_footprint");
    }
}
