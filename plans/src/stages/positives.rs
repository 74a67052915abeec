//! Positives: crossmatch the known-lens catalog to sweep sources.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use serde_json::Value;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, PositivesSection, Section, SharedSource, StatusCounts, Timings, GIT_COMMIT,
    PIPELINE_VERSION,
};
use crate::plan::{Params, POSITIVES};
use crate::sink::{write_partitions, Location, ParquetDir};
use crate::stages::{count_strings, register_lenses};

/// What became of a lens in the crossmatch. The plan gives each lens the
/// first that holds, in the order of the variants; the strings are bound
/// into the plan as `$status_<variant>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PositiveStatus {
    /// The lens is outside `dec_min < dec < dec_max`.
    OutsideFootprint,
    /// No sweep source within `positives.match_radius_arcsec`.
    NoSourceWithinRadius,
    /// Matched, but the source fails the cuts negatives must pass (only
    /// with `positives.apply_selection`).
    FailsSelection,
    /// Matched to its nearest source: a positive.
    Matched,
}

impl PositiveStatus {
    pub const ALL: [PositiveStatus; 4] = [
        Self::OutsideFootprint,
        Self::NoSourceWithinRadius,
        Self::FailsSelection,
        Self::Matched,
    ];

    /// The one spelling of each status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OutsideFootprint => "outside_footprint",
            Self::NoSourceWithinRadius => "no_source_within_radius",
            Self::FailsSelection => "fails_selection",
            Self::Matched => "matched",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for PositiveStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one partition of the crossmatch saw.
#[derive(Default)]
struct Claims {
    statuses: BTreeMap<Option<String>, u64>,
    /// (sweep_file, row_index, lens_id) of every matched source.
    claims: Vec<(String, i64, i64)>,
}

fn count_statuses(batch: &RecordBatch, part: &mut Claims) -> Result<RecordBatch> {
    count_strings(batch, "status", &mut part.statuses)?;
    let ids = batch
        .column_by_name("lens_id")
        .and_then(|a| a.as_primitive_opt::<Int64Type>());
    let files = batch
        .column_by_name("sweep_file")
        .and_then(|a| a.as_string_opt::<i32>());
    let rows = batch
        .column_by_name("row_index")
        .and_then(|a| a.as_primitive_opt::<Int64Type>());
    if let (Some(ids), Some(files), Some(rows)) = (ids, files, rows) {
        for i in 0..batch.num_rows() {
            if files.is_valid(i) && rows.is_valid(i) {
                part.claims
                    .push((files.value(i).to_string(), rows.value(i), ids.value(i)));
            }
        }
    }
    Ok(batch.clone())
}

/// Every value the positives plan binds.
pub fn params(config: &Config) -> Params {
    Params::new()
        .selection(config)
        .f64(
            "match_radius_arcsec",
            config.positives.match_radius_arcsec.value,
        )
        .bool("apply_selection", config.positives.apply_selection.value)
        .statuses()
        .str("pipeline_version", PIPELINE_VERSION)
        .str("git_commit", GIT_COMMIT)
        .str("extraction_timestamp", chrono::Utc::now().to_rfc3339())
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    engine.register_sweeps(config).await?;
    let catalog = register_lenses(engine, config, &output)
        .await?
        .ok_or_else(|| {
            Error::Config("the positives stage needs inputs.positives (a lens catalog CSV)".into())
        })?;
    let df = POSITIVES.dataframe(&engine.ctx, params(config)).await?;
    let streams = df.execute_stream_partitioned().await?;
    let dir = ParquetDir::create(output.child("positives"), run_id).await?;
    let (parts, dir) = write_partitions(dir, streams, count_statuses).await?;
    let mut statuses: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut sources: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    for part in parts {
        for (k, v) in part.statuses {
            *statuses.entry(k).or_default() += v;
        }
        for (file, row, lens) in part.claims {
            sources.entry((file, row)).or_default().push(lens);
        }
    }
    let mut status_counts = BTreeMap::new();
    for (status, n) in statuses {
        let parsed = status.as_deref().and_then(PositiveStatus::parse);
        let status = parsed.ok_or_else(|| {
            Error::Conservation(format!("{n} lenses with unknown status {status:?}"))
        })?;
        status_counts.insert(status, n);
    }
    let counted: u64 = status_counts.values().sum();
    if counted != catalog.batch.num_rows() as u64 {
        return Err(Error::Conservation(format!(
            "{} lenses went in but {counted} came out of the crossmatch",
            catalog.batch.num_rows()
        )));
    }
    let files = dir.commit().await?;

    let mut shared: Vec<SharedSource> = sources
        .into_iter()
        .filter(|(_, lenses)| lenses.len() > 1)
        .map(|((sweep_file, row_index), mut lens_ids)| {
            lens_ids.sort();
            SharedSource {
                lens_ids,
                row_index,
                sweep_file,
            }
        })
        .collect();
    shared.sort_by_key(|s| serde_json::to_string(s).unwrap_or_default());
    let section = Section::Positives(PositivesSection {
        catalog: config.inputs.positives.clone(),
        catalog_lines: catalog.data_lines,
        catalog_rejected_lines: catalog.rejected.iter().map(Into::into).collect(),
        lenses: catalog.batch.num_rows(),
        status: StatusCounts(status_counts),
        sources_claimed_by_several_lenses: shared,
        match_radius_arcsec: config.positives.match_radius_arcsec.value,
        output: output.child("positives").url,
        output_files: files,
        timings_s: Timings {
            total: started.elapsed().as_secs_f64(),
            ..Timings::default()
        },
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    section.to_json()
}
