//! The cutout stage of lenspipe: a bands x size x size image for every
//! target of the sample, from the Legacy Surveys viewer's `fits-cutout` API
//! or cut from DR10 coadd bricks.
//!
//! The stage is a plan: the targets, with a shard column, under
//! [`ShardExec`], which makes each shard's cutouts and writes the shard
//! where it runs. Scanning [`CutoutsTable`] runs it, embedded or on a
//! Ballista cluster (with [`CutoutsNodes`] in the plan codec); the caller
//! receives one summary row per shard and never the pixels.

// `!(a > b)` is used on purpose where NaN must take the "not greater" branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bricks;
pub mod checks;
pub mod codec;
pub mod exec;
pub mod schema;
pub mod source;
pub mod spec;
pub mod synthetic;
pub mod table;
pub mod viewer;

pub use codec::CutoutsNodes;
pub use exec::{ShardExec, ShardJob};
pub use lenspipe_viewer::CutoutStatus;
pub use source::{Cutout, PixelSource, Target};
pub use spec::{CutoutSpec, Plane, Resampling, SourceSpec, ViewerSpec};
pub use table::{CutoutsTable, ShardInput, TargetFile};
