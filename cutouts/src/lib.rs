//! The cutout stage of lenspipe: a bands x size x size image for every
//! target of the sample, from the Legacy Surveys viewer's `fits-cutout` API
//! or cut from DR10 coadd bricks.
//!
//! The stage is a plan: the targets, with a shard column, under
//! [`ShardExec`] doing [`CutoutWork`], which makes each shard's cutouts and
//! writes the shard where it runs. Scanning a [`ShardTable`] runs it,
//! embedded or on a Ballista cluster (with [`CUTOUTS_NODES`] in the plan
//! codec); the caller receives one summary row per shard and never the
//! pixels. The operator and the table take any [`ShardWork`]: the
//! validation's checks run on them too, from lenspipe-validate.

// `!(a > b)` is used on purpose where NaN must take the "not greater" branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bricks;
pub mod codec;
pub mod exec;
pub mod schema;
pub mod source;
pub mod spec;
pub mod table;
pub mod viewer;

pub use codec::{ShardNodes, CUTOUTS_NODES};
pub use exec::{CutoutWork, ShardExec, ShardWork};
pub use lenspipe_viewer::CutoutStatus;
pub use source::{Cutout, PixelSource, Target};
pub use spec::{CutoutSpec, Plane, Resampling, SourceSpec, ViewerSpec};
pub use table::{ShardInput, ShardTable, TargetFile};
