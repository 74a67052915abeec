//! Positives: crossmatch the known-lens catalog to sweep sources.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, PositivesSection, Section, SharedSource, StatusCounts, Timings, GIT_COMMIT,
    PIPELINE_VERSION,
};
use crate::plan::{Params, POSITIVES};
use crate::sink::{column_names, register_committed, write, CounterRows, Location};
use crate::stages::{
    column_i64, column_strings, match_cells, register_lens_table, register_lenses, Stage,
};
use lenspipe_sinks::WriteSpec;

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

/// The writer's counter of lenses by status.
const COUNT_STATUS: &str = "status";

/// Sweep sources that more than one lens matched, from the committed output.
const SHARED_SOURCES: &str =
    "SELECT sweep_file, row_index, array_agg(lens_id ORDER BY lens_id) AS lens_ids \
     FROM committed_positives \
     WHERE sweep_file IS NOT NULL AND row_index IS NOT NULL \
     GROUP BY sweep_file, row_index HAVING count(*) > 1 \
     ORDER BY sweep_file, row_index";

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

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    engine.register_sweeps(config).await?;
    let catalog = register_lenses(engine, config, &output)
        .await?
        .ok_or_else(|| {
            Error::Config("the positives stage needs inputs.positives (a lens catalog CSV)".into())
        })?;
    register_lens_table(
        engine,
        "match_cells",
        match_cells(config),
        Some(&catalog),
        &output,
    )
    .await?;
    let df = POSITIVES.dataframe(&engine.ctx, params(config)).await?;
    let columns = column_names(&df);
    let dir = output.child(Stage::Positives.folder());
    let written = write(engine, df, dir.clone(), run_id, |folder| {
        WriteSpec::new(folder, &columns).count(COUNT_STATUS, &["status"], CounterRows::All)
    })
    .await?;
    let mut status_counts = BTreeMap::new();
    for (status, n) in written.summaries.counts.by_value(COUNT_STATUS) {
        let parsed = status.as_deref().and_then(PositiveStatus::parse);
        let status = parsed.ok_or_else(|| {
            Error::Conservation(format!("{n} lenses with unknown status {status:?}"))
        })?;
        status_counts.insert(status, n);
    }
    let lenses = catalog.batch.num_rows() as u64;
    let files = written
        .commit_if(|s| {
            let counted: u64 = status_counts.values().sum();
            if counted != lenses || s.rows_written != lenses {
                return Err(Error::Conservation(format!(
                    "{lenses} lenses went in but {counted} came out of the crossmatch ({} written)",
                    s.rows_written
                )));
            }
            Ok(())
        })
        .await?;
    let shared = shared_sources(engine, &dir).await?;

    let section = Section::Positives(PositivesSection {
        catalog: config.inputs.positives.clone(),
        catalog_lines: catalog.data_lines,
        catalog_rejected_lines: catalog.rejected.iter().map(Into::into).collect(),
        lenses: catalog.batch.num_rows(),
        status: StatusCounts(status_counts),
        sources_claimed_by_several_lenses: shared,
        match_radius_arcsec: config.positives.match_radius_arcsec.value,
        output: output.child(Stage::Positives.folder()).url,
        output_files: files,
        timings_s: Timings {
            total: started.elapsed().as_secs_f64(),
            ..Timings::default()
        },
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
}

/// Sources that several lenses matched, read back from the committed output.
async fn shared_sources(engine: &Engine, dir: &Location) -> Result<Vec<SharedSource>> {
    register_committed(&engine.ctx, "committed_positives", dir).await?;
    let batches = engine.ctx.sql(SHARED_SOURCES).await?.collect().await?;
    engine.ctx.deregister_table("committed_positives")?;
    let mut shared = Vec::new();
    for batch in &batches {
        let files = column_strings(batch, "sweep_file")?;
        let rows = column_i64(batch, "row_index")?;
        let ids = batch
            .column_by_name("lens_ids")
            .ok_or_else(|| Error::Other("shared sources lack lens_ids".into()))?
            .as_list::<i32>();
        for i in 0..batch.num_rows() {
            let lens_ids = ids.value(i);
            let lens_ids = lens_ids
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| Error::Other("lens_id is not Int64".into()))?;
            shared.push(SharedSource {
                lens_ids: lens_ids.iter().flatten().collect(),
                row_index: rows[i].unwrap_or_default(),
                sweep_file: files[i].clone().unwrap_or_default(),
            });
        }
    }
    Ok(shared)
}
