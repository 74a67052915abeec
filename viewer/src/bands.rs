//! The `bands` query parameter.
//!
//! The viewer silently replaces a `bands` string with any unknown character by
//! the layer's default bands, so a typo would come back as a valid-looking
//! 4-plane image. The client therefore validates `bands` itself.

/// Bands the client accepts (DR10 has g, r, i, z).
pub const KNOWN_BANDS: &str = "griz";

/// Why a `bands` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BandsError {
    #[error("bands is empty")]
    Empty,
    #[error("unknown band {0:?} (known: {KNOWN_BANDS})")]
    Unknown(char),
    #[error("band {0:?} given twice")]
    Duplicate(char),
}

/// Checks that `bands` is a non-empty string of distinct letters from
/// [`KNOWN_BANDS`].
pub fn validate_bands(bands: &str) -> Result<(), BandsError> {
    if bands.is_empty() {
        return Err(BandsError::Empty);
    }
    for (i, c) in bands.char_indices() {
        if !KNOWN_BANDS.contains(c) {
            return Err(BandsError::Unknown(c));
        }
        if bands[..i].contains(c) {
            return Err(BandsError::Duplicate(c));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_distinct_bands() {
        assert_eq!(validate_bands("grz"), Ok(()));
        assert_eq!(validate_bands("griz"), Ok(()));
        assert_eq!(validate_bands("z"), Ok(()));
    }

    #[test]
    fn refuses_bad_bands() {
        assert_eq!(validate_bands(""), Err(BandsError::Empty));
        assert_eq!(validate_bands("gr,z"), Err(BandsError::Unknown(',')));
        assert_eq!(validate_bands("gRz"), Err(BandsError::Unknown('R')));
        assert_eq!(validate_bands("grg"), Err(BandsError::Duplicate('g')));
        assert_eq!(validate_bands("grü"), Err(BandsError::Unknown('ü')));
    }
}
