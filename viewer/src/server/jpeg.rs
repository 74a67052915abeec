//! The JPEG cutout: the viewer's colour mapping of the bands asked, north up.

use jpeg_encoder::{ColorType, Encoder};

use crate::rgb::viewer_rgb;

/// JPEG quality of the answers (the viewer does not document its own).
const QUALITY: u8 = 90;

/// Why a JPEG could not be made.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("bands {0:?} have no colour in the viewer's mapping")]
    Bands(String),
    #[error("image of {got} values does not match {size}x{size}x{planes}")]
    WrongLength {
        got: usize,
        size: usize,
        planes: usize,
    },
    #[error("cutout of {0} pixels is too large for a JPEG")]
    TooLarge(usize),
    #[error("encoding JPEG: {0}")]
    Encode(String),
}

/// Encodes a CHW cutout (rows along Dec, south first, as in the FITS
/// answer) as an RGB JPEG of `size` x `size` with north up and east left,
/// as the viewer shows the sky.
pub fn encode(image: &[f32], size: usize, bands: &str) -> Result<Vec<u8>, JpegError> {
    let planes = bands.chars().count();
    if image.len() != size * size * planes {
        return Err(JpegError::WrongLength {
            got: image.len(),
            size,
            planes,
        });
    }
    let side = u16::try_from(size).map_err(|_| JpegError::TooLarge(size))?;
    let rgb = viewer_rgb(image, bands, size, size).ok_or_else(|| JpegError::Bands(bands.into()))?;
    // FITS row 0 is the southern edge; a JPEG's first row is its top.
    let mut flipped = Vec::with_capacity(rgb.len());
    for row in rgb.chunks_exact(3 * size).rev() {
        flipped.extend_from_slice(row);
    }
    let mut out = Vec::new();
    Encoder::new(&mut out, QUALITY)
        .encode(&flipped, side, side, ColorType::Rgb)
        .map_err(|e| JpegError::Encode(e.to_string()))?;
    Ok(out)
}
