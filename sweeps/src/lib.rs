//! The `sweeps` table: many FITS catalog files (Legacy Surveys sweeps or
//! tractor catalogs) as one DataFusion table, read from local disk or object
//! storage with byte-range requests.
//!
//! * [`SweepsTable::open`] lists the files behind a `file://`, `s3://` or plain
//!   path URL (directory, prefix or glob), reads each header once and unifies
//!   the schemas.
//! * [`FitsSource`], a DataFusion `FileSource`, reads every file in byte
//!   ranges of a target size, so that one large file keeps every core busy
//!   and memory stays bounded.
//! * [`SweepsNodes`] lets the table and the scan travel to a Ballista
//!   scheduler and its executors, inside the one [`PlanCodec`] of lenspipe
//!   plans.

mod bad_files;
mod codec;
mod listing;
mod location;
mod object_stores;
mod plan_codec;
mod schema;
mod source;
mod table;

pub use bad_files::{bad_file_error, bad_file_message, find_bad_file, OnBadFile, SkippedFile};
pub use codec::{
    decode_tagged, encode_tagged, schema_from_bytes, schema_to_bytes, tagged, SweepsNodes,
};
pub use listing::{list_fits_files, Listed, SweepFile};
pub use location::{Location, ObjectUrl};
pub use object_stores::EnvObjectStoreRegistry;
pub use plan_codec::{single_input, NodeCodec, PlanCodec};
pub use schema::{scan_schema, unify_schemas, ROW_INDEX_COLUMN, SWEEP_FILE_COLUMN};
pub use source::{FitsSource, ScanChunk};
pub use table::{sweeps_table_schema, SweepsOptions, SweepsTable};
