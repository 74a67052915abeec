//! Negative sampling: the Paper IV selection (pool N1) and N2 confusers.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch, is_null};
use arrow::datatypes::DataType;
use lenspipe_udfs::reasons::RejectReason;
use serde_json::Value;

use crate::columns::OUTPUT_COLUMN_NAMES;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, LensCatalogCounts, NegativesSection, Reason, ReasonCounts, Section, Timings,
    GIT_COMMIT, PIPELINE_VERSION,
};
use crate::plan::{Params, NEGATIVES};
use crate::sink::{write_partitions, Location, ParquetDir};
use crate::stages::{count_strings, register_lenses};

/// The plan column holding each row's reject reason (NULL = kept).
pub const REASON_COLUMN: &str = "reject_reason";
/// The plan columns flagging, per band g, r, z, an exposure count below its minimum.
pub const NOBS_LOW_COLUMNS: [&str; 3] = ["nobs_g_low", "nobs_r_low", "nobs_z_low"];

/// What one pass over the sweeps counted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Funnel {
    /// Kept rows under `None`.
    pub reasons: BTreeMap<Option<RejectReason>, u64>,
    pub nobs_low: [u64; 3],
    pub pools: BTreeMap<Option<String>, u64>,
    pub categories: BTreeMap<Option<String>, u64>,
}

impl Funnel {
    fn merge(&mut self, other: Funnel) {
        for (k, v) in other.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        for i in 0..3 {
            self.nobs_low[i] += other.nobs_low[i];
        }
        for (k, v) in other.pools {
            *self.pools.entry(k).or_default() += v;
        }
        for (k, v) in other.categories {
            *self.categories.entry(k).or_default() += v;
        }
    }

    pub fn input_rows(&self) -> u64 {
        self.reasons.values().sum()
    }
    pub fn kept(&self) -> u64 {
        self.reasons.get(&None).copied().unwrap_or(0)
    }
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.reasons.get(&Some(reason)).copied().unwrap_or(0)
    }

    /// Checks that every row is counted once.
    pub fn check(&self, expected_rows: u64) -> Result<()> {
        let accounted = self.kept()
            + RejectReason::ALL
                .iter()
                .map(|r| self.rejected(*r))
                .sum::<u64>();
        if self.input_rows() != expected_rows || accounted != expected_rows {
            return Err(Error::Conservation(format!(
                "the sweep headers hold {expected_rows} rows but the plan counted {} ({accounted} accounted for)",
                self.input_rows()
            )));
        }
        let pooled: u64 = self.pools.values().sum();
        if pooled != self.kept() {
            return Err(Error::Conservation(format!(
                "{pooled} rows in pools but {} kept",
                self.kept()
            )));
        }
        Ok(())
    }

    /// The counts part of the stage's run.json section.
    fn section(&self, min_nobs: [i64; 3]) -> NegativesSection {
        let named = |m: &BTreeMap<Option<String>, u64>| -> BTreeMap<String, u64> {
            m.iter()
                .filter_map(|(k, v)| k.clone().map(|k| (k, *v)))
                .collect()
        };
        NegativesSection {
            input_rows: self.input_rows(),
            rejected: ReasonCounts(
                RejectReason::ALL
                    .iter()
                    .map(|r| (*r, self.rejected(*r)))
                    .collect(),
            ),
            funnel_order: RejectReason::ALL.iter().copied().map(Reason).collect(),
            insufficient_exposures_by_band: ["g", "r", "z"]
                .iter()
                .zip(min_nobs)
                .zip(self.nobs_low)
                .map(|((band, min), n)| (format!("nobs_{band}_lt_{min}"), n))
                .collect(),
            kept: self.kept(),
            pools: self
                .pools
                .iter()
                .map(|(k, v)| (k.clone().unwrap_or_else(|| "null".into()), *v))
                .collect(),
            n2_categories: named(&self.categories),
            sweep_files: 0,
            output: String::new(),
            output_files: Vec::new(),
            lens_catalog: None,
            timings_s: Timings::default(),
        }
    }
}

/// Counts one plan batch and returns its kept rows in the output columns.
fn count_batch(batch: &RecordBatch, funnel: &mut Funnel) -> Result<RecordBatch> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Other(format!("the negatives plan lacks column '{name}'")))
    };
    let reason = column(REASON_COLUMN)?;
    let reasons = cast(reason, &DataType::Utf8)?;
    let reasons = reasons.as_string::<i32>();
    let mut parsed = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let r = if reasons.is_valid(i) {
            let s = reasons.value(i);
            Some(
                RejectReason::parse(s)
                    .ok_or_else(|| Error::Conservation(format!("unknown reject reason '{s}'")))?,
            )
        } else {
            None
        };
        *funnel.reasons.entry(r).or_default() += 1;
        parsed.push(r);
    }
    for (band, name) in NOBS_LOW_COLUMNS.iter().enumerate() {
        let low = column(name)?.as_boolean();
        for (i, r) in parsed.iter().enumerate() {
            if *r == Some(RejectReason::InsufficientExposures) && low.is_valid(i) && low.value(i) {
                funnel.nobs_low[band] += 1;
            }
        }
    }
    let keep = is_null(reason)?;
    let schema = batch.schema();
    let output = OUTPUT_COLUMN_NAMES
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let kept = filter_record_batch(&batch.project(&output)?, &keep)?;
    count_strings(&kept, "pool", &mut funnel.pools)?;
    count_strings(&kept, "confuser_category", &mut funnel.categories)?;
    Ok(kept)
}

/// Every value the negatives plan binds.
pub fn params(config: &Config) -> Params {
    Params::new()
        .selection(config)
        .n2(config)
        .reasons()
        .f64(
            "exclusion_radius_arcsec",
            config.exclusion.radius_arcsec.value,
        )
        .str("pipeline_version", PIPELINE_VERSION)
        .str("git_commit", GIT_COMMIT)
        .str("extraction_timestamp", chrono::Utc::now().to_rfc3339())
}

/// Counts the plan's batches as the stage does and returns the kept rows.
pub fn count_batches(batches: &[RecordBatch]) -> Result<(Funnel, Vec<RecordBatch>)> {
    let mut funnel = Funnel::default();
    let kept = batches
        .iter()
        .map(|b| count_batch(b, &mut funnel))
        .collect::<Result<_>>()?;
    Ok((funnel, kept))
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let sweeps = engine.register_sweeps(config).await?;
    let lenses = register_lenses(engine, config, &output).await?;
    let df = NEGATIVES.dataframe(&engine.ctx, params(config)).await?;
    let planned = started.elapsed();
    let streams = df.execute_stream_partitioned().await?;
    let dir = ParquetDir::create(output.child("negatives"), run_id).await?;
    let (parts, dir) = write_partitions(dir, streams, count_batch).await?;
    let mut funnel = Funnel::default();
    for part in parts {
        funnel.merge(part);
    }
    // Checked before the output is made visible.
    funnel.check(sweeps.total_rows())?;
    let files = dir.commit().await?;

    let min_nobs = &config.selection.min_nobs.value;
    let section = NegativesSection {
        sweep_files: sweeps.files().len(),
        output: output.child("negatives").url,
        output_files: files,
        lens_catalog: lenses.as_ref().map(|c| LensCatalogCounts {
            rows: c.data_lines,
            used: c.batch.num_rows(),
            rejected_lines: c.rejected.iter().map(Into::into).collect(),
        }),
        timings_s: Timings {
            plan: Some(planned.as_secs_f64()),
            checks: None,
            total: started.elapsed().as_secs_f64(),
        },
        ..funnel.section([min_nobs.g, min_nobs.r, min_nobs.z])
    };
    let section = Section::Negatives(section);
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    section.to_json()
}
