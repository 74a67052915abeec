//! The pipeline stages. Each plans its SQL, runs it on the engine, writes
//! Parquet under the output URL and records its counts in `run.json`.
//!
//! [`Stage`] is the one list of them: the command line's choices, the order
//! `run all` follows, the output folders, the sections of `run.json` and
//! the lines printed after each stage all come from it.

pub mod cutouts;
pub mod matching;
pub mod negatives;
pub mod positives;
pub mod stratify;
pub mod validate;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Negatives,
    Positives,
    Stratify,
    Cutouts,
    Validate,
}

impl Stage {
    /// Every stage, in the order `run all` runs them: each reads only what
    /// stages before it wrote.
    pub const ALL: [Stage; 5] = [
        Stage::Negatives,
        Stage::Positives,
        Stage::Stratify,
        Stage::Cutouts,
        Stage::Validate,
    ];

    /// The catalogue half: the stages that need no images.
    pub const CATALOG: [Stage; 3] = [Stage::Negatives, Stage::Positives, Stage::Stratify];

    /// The stage's name on the command line, in logs and in `run.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Negatives => "negatives",
            Stage::Positives => "positives",
            Stage::Stratify => "stratify",
            Stage::Cutouts => "cutouts",
            Stage::Validate => "validate",
        }
    }

    /// The stage named `name`, if any.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The folder under the output URL the stage writes.
    pub const fn folder(self) -> &'static str {
        match self {
            Stage::Negatives => "negatives",
            Stage::Positives => "positives",
            Stage::Stratify => "sample",
            Stage::Cutouts => "cutouts",
            Stage::Validate => "validation",
        }
    }

    /// The stages whose outputs this one reads (besides the configured
    /// inputs: sweeps, the lens catalogue, coadds or the viewer).
    pub const fn reads(self) -> &'static [Stage] {
        match self {
            Stage::Negatives | Stage::Positives => &[],
            Stage::Stratify => &[Stage::Positives, Stage::Negatives],
            Stage::Cutouts => &[Stage::Stratify],
            Stage::Validate => &[Stage::Stratify, Stage::Cutouts],
        }
    }

    /// Runs the stage and records its section in `run.json`.
    pub async fn run(self, engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
        match self {
            Stage::Negatives => negatives::run(engine, config, run_id).await,
            Stage::Positives => positives::run(engine, config, run_id).await,
            Stage::Stratify => stratify::run(engine, config, run_id).await,
            Stage::Cutouts => cutouts::run(engine, config, run_id).await,
            Stage::Validate => validate::run(engine, config, run_id).await,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lenses::{parse_catalog, LensCatalog};
use crate::manifest::Section;
use crate::sink::Location;

/// A numeric column of a plan batch as f64, NULL as NaN.
pub(crate) fn column_f64(batch: &RecordBatch, name: &str) -> Result<Vec<f64>> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Other(format!("plan output lacks column '{name}'")))?;
    let array = cast(array, &DataType::Float64)?;
    let values = array.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_valid(i) {
                values.value(i)
            } else {
                f64::NAN
            }
        })
        .collect())
}

/// A column of a plan batch as strings, whatever its type.
pub(crate) fn column_strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Other(format!("plan output lacks column '{name}'")))?;
    let array = cast(array, &DataType::Utf8)?;
    let values = array.as_string::<i32>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i).to_string()))
        .collect())
}

/// An integer column of a plan batch as i64.
pub(crate) fn column_i64(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Other(format!("plan output lacks column '{name}'")))?;
    let array = cast(array, &DataType::Int64)?;
    let values = array.as_primitive::<Int64Type>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i)))
        .collect())
}

/// Loads the lens catalog named by `inputs.positives` (a path or URL).
pub(crate) async fn load_lenses(engine: &Engine, config: &Config) -> Result<Option<LensCatalog>> {
    let Some(source) = &config.inputs.positives else {
        return Ok(None);
    };
    let location = Location::resolve(&engine.runtime(), source)?;
    let bytes = location
        .get_bytes()
        .await?
        .ok_or_else(|| Error::Input(format!("lens catalog '{source}' does not exist")))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|e| Error::Input(format!("lens catalog '{source}' is not UTF-8: {e}")))?;
    Ok(Some(parse_catalog(
        &text,
        source,
        &config.positives.columns,
    )?))
}

/// The folder under the output URL of the small tables the stages share
/// with a cluster (lenses, lens cells, quotas): inputs, not a stage's output.
pub(crate) const CATALOG_TABLES: &str = "catalog";

/// Registers table `name` for a stage's join with the lenses, made here
/// from the lens catalogue by `plan` (lens_cells.sql for the negatives'
/// exclusion, match_cells.sql for the positives' crossmatch) on an
/// in-process engine: the catalogue is small and does not grow with the
/// survey. Shared like `lenses`, so that a cluster knows its size and
/// broadcasts it instead of shuffling the sweeps.
pub(crate) async fn register_lens_table(
    engine: &Engine,
    name: &str,
    (plan, params): (crate::plan::SqlPlan, crate::plan::Params),
    lenses: Option<&LensCatalog>,
    output: &Location,
) -> Result<()> {
    let batch = match lenses {
        Some(c) => c.batch.clone(),
        None => RecordBatch::new_empty(crate::lenses::lens_schema()),
    };
    let table = from_lenses(plan, params, batch).await?;
    engine
        .register_shared_batch(name, table, &output.child(CATALOG_TABLES))
        .await
}

/// The negatives' lens cells: `lens_cells.sql` and its parameters.
pub(crate) fn lens_cells(config: &Config) -> (crate::plan::SqlPlan, crate::plan::Params) {
    let params = crate::plan::Params::new()
        .i64("join_nside", crate::plan::JOIN_NSIDE)
        .f64(
            "exclusion_radius_arcsec",
            config.exclusion.radius_arcsec.value,
        );
    (crate::plan::LENS_CELLS, params)
}

/// The positives' match cells: `match_cells.sql` and its parameters.
pub(crate) fn match_cells(config: &Config) -> (crate::plan::SqlPlan, crate::plan::Params) {
    let params = crate::plan::Params::new()
        .i64("join_nside", crate::plan::JOIN_NSIDE)
        .f64(
            "match_radius_arcsec",
            config.positives.match_radius_arcsec.value,
        );
    (crate::plan::MATCH_CELLS, params)
}

/// Runs `plan` over `lenses` in this process.
pub(crate) async fn from_lenses(
    plan: crate::plan::SqlPlan,
    params: crate::plan::Params,
    lenses: RecordBatch,
) -> Result<RecordBatch> {
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    let ctx = SessionContext::new_with_state(lenspipe_extensions::session_state(
        lenspipe_extensions::tune(SessionConfig::new()),
    )?);
    let table = MemTable::try_new(lenses.schema(), vec![vec![lenses]])?;
    ctx.register_table("lenses", std::sync::Arc::new(table))?;
    collect_batch(plan.dataframe(&ctx, params).await?).await
}

/// All of a (small) result as one batch.
pub(crate) async fn collect_batch(df: datafusion::dataframe::DataFrame) -> Result<RecordBatch> {
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// Registers table `lenses` (possibly empty) for the plans that join with it.
pub(crate) async fn register_lenses(
    engine: &Engine,
    config: &Config,
    output: &Location,
) -> Result<Option<LensCatalog>> {
    let catalog = load_lenses(engine, config).await?;
    let batch = match &catalog {
        Some(c) => c.batch.clone(),
        None => RecordBatch::new_empty(crate::lenses::lens_schema()),
    };
    engine
        .register_shared_batch("lenses", batch, &output.child(CATALOG_TABLES))
        .await?;
    Ok(catalog)
}

#[cfg(test)]
mod stage_tests {
    use super::Stage;

    #[test]
    fn every_stage_reads_only_what_stages_before_it_wrote() {
        for (i, stage) in Stage::ALL.iter().enumerate() {
            for input in stage.reads() {
                assert!(
                    Stage::ALL[..i].contains(input),
                    "{stage} reads {input}, which runs after it"
                );
            }
        }
        for (i, stage) in Stage::CATALOG.iter().enumerate() {
            for input in stage.reads() {
                assert!(Stage::CATALOG[..i].contains(input), "{stage} reads {input}");
            }
        }
    }

    #[test]
    fn names_and_folders_are_distinct_and_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
            let same_folder = Stage::ALL.iter().filter(|s| s.folder() == stage.folder());
            assert_eq!(same_folder.count(), 1, "{stage}");
        }
        assert_eq!(Stage::from_name("sample"), None);
    }
}
