//! Negative sampling: the Paper IV selection (pool N1) and N2 confusers.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{filter_record_batch, is_null};
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, GIT_COMMIT, PIPELINE_VERSION};
use crate::plan::{Params, NEGATIVES};
use crate::sink::{write_partitions, Location, ParquetDir};
use crate::stages::{count_strings, register_lenses};

/// Reasons in funnel order: the Paper IV cuts, then the known-lens exclusion.
pub const FUNNEL: [&str; 7] = [
    "invalid_coords",
    "outside_decals",
    "not_valid_type",
    "maskbit",
    "insufficient_exposures",
    "mag_z_faint",
    "near_known_lens",
];

/// The leading plan columns that only feed the funnel.
const DIAGNOSTIC_COLUMNS: usize = 4;

/// What one pass over the sweeps counted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Funnel {
    pub reasons: BTreeMap<Option<String>, u64>,
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
    pub fn rejected(&self, reason: &str) -> u64 {
        self.reasons
            .get(&Some(reason.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Checks that every row is counted once, under a known reason.
    pub fn check(&self, expected_rows: u64) -> Result<()> {
        if let Some(unknown) = self
            .reasons
            .keys()
            .flatten()
            .find(|r| !FUNNEL.contains(&r.as_str()))
        {
            return Err(Error::Conservation(format!(
                "unknown reject reason '{unknown}'"
            )));
        }
        let accounted = self.kept() + FUNNEL.iter().map(|r| self.rejected(r)).sum::<u64>();
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

    pub fn to_json(&self, min_nobs: [i64; 3]) -> Value {
        let name = |k: &Option<String>| k.clone().unwrap_or_else(|| "null".into());
        let mut reasons = serde_json::Map::new();
        for r in FUNNEL {
            reasons.insert(r.into(), json!(self.rejected(r)));
        }
        json!({
            "input_rows": self.input_rows(),
            "rejected": reasons,
            "funnel_order": FUNNEL,
            "insufficient_exposures_by_band": {
                format!("nobs_g_lt_{}", min_nobs[0]): self.nobs_low[0],
                format!("nobs_r_lt_{}", min_nobs[1]): self.nobs_low[1],
                format!("nobs_z_lt_{}", min_nobs[2]): self.nobs_low[2],
            },
            "kept": self.kept(),
            "pools": self.pools.iter().map(|(k, v)| (name(k), json!(v))).collect::<serde_json::Map<_, _>>(),
            "n2_categories": self.categories.iter().filter(|(k, _)| k.is_some()).map(|(k, v)| (name(k), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// Counts one plan batch and returns its kept rows in the output schema.
fn count_batch(batch: &RecordBatch, funnel: &mut Funnel) -> Result<RecordBatch> {
    count_strings(batch, "reject_reason", &mut funnel.reasons)?;
    let reason = batch.column(0);
    for band in 0..3 {
        let low = batch.column(1 + band).as_boolean();
        for i in 0..batch.num_rows() {
            let insufficient = reason.is_valid(i)
                && reason
                    .as_string_opt::<i32>()
                    .is_some_and(|s| s.value(i) == "insufficient_exposures");
            if insufficient && low.is_valid(i) && low.value(i) {
                funnel.nobs_low[band] += 1;
            }
        }
    }
    let keep = is_null(reason)?;
    let output = batch.project(&(DIAGNOSTIC_COLUMNS..batch.num_columns()).collect::<Vec<_>>())?;
    let kept = filter_record_batch(&output, &keep)?;
    count_strings(&kept, "pool", &mut funnel.pools)?;
    count_strings(&kept, "confuser_category", &mut funnel.categories)?;
    Ok(kept)
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let sweeps = engine.register_sweeps(config).await?;
    let lenses = register_lenses(engine, config, &output).await?;
    let params = Params::new()
        .selection(config)
        .n2(config)
        .f64(
            "exclusion_radius_arcsec",
            config.exclusion.radius_arcsec.value,
        )
        .str("pipeline_version", PIPELINE_VERSION)
        .str("git_commit", GIT_COMMIT)
        .str("extraction_timestamp", chrono::Utc::now().to_rfc3339());
    let df = NEGATIVES.dataframe(&engine.ctx, params).await?;
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
    let mut section = funnel.to_json([min_nobs.g, min_nobs.r, min_nobs.z]);
    section["sweep_files"] = json!(sweeps.files().len());
    section["output"] = json!(output.child("negatives").url);
    section["output_files"] = json!(files);
    section["lens_catalog"] = match &lenses {
        Some(c) => {
            json!({"rows": c.data_lines, "used": c.batch.num_rows(), "rejected_lines": c.rejected})
        }
        None => Value::Null,
    };
    section["timings_s"] =
        json!({"plan": planned.as_secs_f64(), "total": started.elapsed().as_secs_f64()});
    record_stage(
        &output,
        config,
        &engine.kind.describe(),
        "negatives",
        section.clone(),
    )
    .await?;
    Ok(section)
}
