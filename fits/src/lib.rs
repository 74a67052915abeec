//! FITS binary tables (BINTABLE) to Apache Arrow.
//!
//! Format logic is kept apart from I/O (as in `arrow-csv`): [`scan_headers`] and
//! [`RowDecoder`] work on byte slices, so the same code serves a local file
//! ([`ReaderBuilder`]) and byte-range reads from object storage.
//!
//! The table read is the first extension (HDU 1), which must be a binary
//! table; [`column`](mod@column) documents how FITS column types and conventions
//! (TZERO offsets, TSCAL, TNULL, arrays, strings) map to Arrow. Every
//! [`FitsError`] names the source, the HDU, the byte offset and the problem.
//!
//! [`TiledImage`] reads tile-compressed images (RICE_1 floats, HCOMPRESS_1
//! integers) tile by tile.

pub mod column;
pub mod decode;
mod dither;
pub mod error;
pub mod hcompress;
pub mod header;
pub mod reader;
mod rice;
pub mod sphere;
pub mod tiled;
pub mod writer;

pub use column::{ColumnDesc, TForm};
pub use decode::RowDecoder;
pub use error::{ErrorKind, FitsError, Result};
pub use header::{scan_headers, scan_headers_sized, BinTableLayout, Header, HeaderScan};
pub use reader::{read_layout, HeaderProbe, Reader, ReaderBuilder};
pub use tiled::TiledImage;
pub use writer::{BinTableWriter, ColumnSpec};
