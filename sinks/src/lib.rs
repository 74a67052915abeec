//! The one writer of lenspipe outputs.
//!
//! A stage's plan ends in [`PartitionWriterExec`]: on whatever process runs a
//! partition (an executor on a cluster), it writes that partition's rows as
//! one Parquet shard into the output's staged version folder and yields a
//! single summary row (rows in, rows written, the shard, and the counters
//! the stage asked for). The client collects only these rows, checks them,
//! and [`commit`]s: the version becomes visible when its `_SUCCESS` manifest
//! is written, in one atomic put.
//!
//! Layout of an output folder (see [`commit`]):
//!
//! ```text
//! <output>/negatives/_SUCCESS                      which version is current, and its files
//! <output>/negatives/v-<run id>/part-….parquet     the shards of one version
//! ```

pub mod codec;
pub mod commit;
pub mod exec;
pub mod spec;
pub mod summary;
pub mod table;

pub use codec::SinksNodes;
pub use commit::{
    committed, register_committed, register_files, Committed, CommittedFile, Staged, SUCCESS,
};
pub use exec::PartitionWriterExec;
pub use spec::{Counter, CounterRows, WriteSpec};
pub use summary::{Counts, ShardSummary, Summaries, SummaryMetrics};
pub use table::WriteTable;
