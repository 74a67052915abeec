//! FITS binary tables (BINTABLE) to Apache Arrow.
//!
//! Format logic is kept apart from I/O (as in `arrow-csv`): [`scan_headers`] and
//! [`RowDecoder`] work on byte slices, so the same code serves a local file
//! ([`ReaderBuilder`]) and byte-range reads from object storage.

pub mod column;
pub mod decode;
pub mod error;
pub mod header;
pub mod reader;
pub mod writer;

pub use column::{ColumnDesc, TForm};
pub use decode::RowDecoder;
pub use error::{ErrorKind, FitsError, Result};
pub use header::{scan_headers, scan_headers_sized, BinTableLayout, HeaderScan};
pub use reader::{read_layout, Reader, ReaderBuilder};
pub use writer::{BinTableWriter, ColumnSpec};
