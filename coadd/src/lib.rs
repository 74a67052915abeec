//! Cutouts from Legacy Surveys DR10 coadd bricks.
//!
//! The caller reads files (local or object storage) and hands over their
//! bytes; [`files`] maps local files so only the pages a cutout needs are read. [`bricks`] names the files and finds the brick
//! of a position, [`wcs`] projects between sky and pixels, [`cutout`] makes
//! `native` or `lanczos3` cutouts from a brick's tile-compressed images.

pub mod bricks;
pub mod cutout;
pub mod error;
pub mod files;
mod resample;
pub mod wcs;

pub use bricks::{brick_file, brick_path, Brick, BrickIndex, CoaddKind, SURVEY_BRICKS};
pub use cutout::{BrickImages, Cutout, CutoutSpec, Resampling};
pub use error::{CoaddError, Result};
pub use wcs::Tan;
