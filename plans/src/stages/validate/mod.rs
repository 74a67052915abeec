//! The validation stage: per-cutout checks, shortcut detection between
//! positives and negatives, and a report to look at.
//!
//! Three passes, one module each:
//! - [`checks`]: the checks job runs where the cutout shards are read
//!   (executors on a cluster) and writes the committed `validation/checks/`;
//! - [`shortcuts`]: statistics over the checks rows (no pixels): AUCs of a
//!   bounded subsample, a cross-validated regression, split leaks; written
//!   as `shortcuts.json`;
//! - [`report`]: `report.html` with its pictures, and a few gallery images.
//!
//! This process reads only counts, the features of the subsample and the
//! gallery's few images.

mod checks;
mod report;
mod shortcuts;
mod sql;

use std::time::Instant;

use arrow::array::RecordBatch;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, Section, Timings, UnmeasuredFeature, ValidateSection};
use crate::plan::{Params, SqlPlan};
use crate::sink::Location;
use crate::stages::{collect_batch, Stage};

/// Columns copied from the cutouts to each checks row, when present.
const IDENTITY: [&str; 11] = [
    "galaxy_id",
    "label",
    "split",
    "cutout_status",
    "pool",
    "confuser_category",
    "lens_name",
    "ra",
    "dec",
    "brickname",
    "type",
];

/// Catalogue columns tested for shortcuts, when present.
const CATALOG_FEATURES: [&str; 20] = [
    "psfsize_g",
    "psfsize_r",
    "psfsize_z",
    "psfdepth_g",
    "psfdepth_r",
    "psfdepth_z",
    "galdepth_g",
    "galdepth_r",
    "galdepth_z",
    "nobs_g",
    "nobs_r",
    "nobs_z",
    "ebv",
    "mag_g",
    "mag_r",
    "mag_z",
    "dec",
    "maskbits",
    "mw_transmission_g",
    "mw_transmission_r",
];

/// A validation query with `params` bound, collected.
async fn query(engine: &Engine, plan: SqlPlan, params: Params) -> Result<RecordBatch> {
    collect_batch(plan.dataframe(&engine.ctx, params).await?).await
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child(Stage::Validate.folder());
    let input = match &config.inputs.validate {
        Some(url) => Location::resolve(&engine.runtime(), url)?,
        None => output.child(Stage::Cutouts.folder()),
    };
    let cutouts = checks::Cutouts::register(engine, &input).await?;
    let checked = checks::run(engine, config, run_id, &cutouts, &folder).await?;
    let checks_done = Instant::now();
    let measured = shortcuts::measure(engine, config, &cutouts.present).await?;
    let flagged: Vec<String> = measured
        .report
        .flagged()
        .into_iter()
        .map(str::to_string)
        .collect();
    let shortcuts_json = measured
        .report
        .to_json_pretty()
        .map_err(|e| Error::Other(e.to_string()))?;
    folder
        .child("shortcuts.json")
        .put_bytes(shortcuts_json.into_bytes())
        .await?;
    report::write(
        engine, config, &output, &folder, &cutouts, &checked, &measured,
    )
    .await?;

    let seconds = started.elapsed().as_secs_f64();
    let checks_seconds = checks_done.duration_since(started).as_secs_f64();
    let section = Section::Validate(ValidateSection {
        input: input.url.clone(),
        cutouts: checked.rows,
        passed: checked.passed,
        failed_checks: checked.failures.clone(),
        duplicate_hashes: checked.duplicate_hashes,
        statistics_rows: measured.labels.len(),
        statistics_fraction: measured.fraction,
        flagged,
        unmeasured_features: measured
            .unmeasured
            .iter()
            .map(|(n, e)| UnmeasuredFeature {
                feature: n.clone(),
                why: e.clone(),
            })
            .collect(),
        multivariate_auc: measured
            .report
            .multivariate
            .as_ref()
            .and_then(|m| m.oof_auc),
        output: folder.url.clone(),
        timings_s: Timings {
            plan: None,
            checks: Some(checks_seconds),
            total: seconds,
        },
        cutouts_per_s: checked.rows as f64 / checks_seconds.max(1e-9),
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
}
