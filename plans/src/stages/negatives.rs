//! Negative sampling: the Paper IV selection (pool N1) and N2 confusers.

use std::collections::BTreeMap;
use std::time::Instant;

use lenspipe_udfs::reasons::RejectReason;

use crate::columns::OUTPUT_COLUMN_NAMES;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, LensCatalogCounts, NegativesSection, Reason, ReasonCounts, Section, Timings,
    GIT_COMMIT, PIPELINE_VERSION,
};
use crate::plan::{Params, NEGATIVES};
use crate::sink::{write, CounterRows, Location};
use crate::stages::{lens_cells, register_lens_table, register_lenses, Stage};
use lenspipe_sinks::{Counts, WriteSpec};

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

/// The writer's counters of the negatives plan.
const COUNT_REASONS: &str = "reject_reason";
const COUNT_NOBS_LOW: &str = "nobs_low";
const COUNT_POOLS: &str = "pool";
const COUNT_CATEGORIES: &str = "confuser_category";

impl Funnel {
    /// What the writer counts: every row by reason and by short bands, the
    /// kept rows by pool and by N2 category.
    pub fn counters(spec: WriteSpec) -> WriteSpec {
        spec.keep_where_null(REASON_COLUMN)
            .count(COUNT_REASONS, &[REASON_COLUMN], CounterRows::All)
            .count(COUNT_NOBS_LOW, &NOBS_LOW_COLUMNS, CounterRows::All)
            .count(COUNT_POOLS, &["pool"], CounterRows::Written)
            .count(
                COUNT_CATEGORIES,
                &["confuser_category"],
                CounterRows::Written,
            )
    }

    /// The funnel from the writer's merged counts.
    pub fn from_counts(counts: &Counts) -> Result<Self> {
        let mut funnel = Funnel::default();
        for (reason, n) in counts.by_value(COUNT_REASONS) {
            let parsed = match &reason {
                None => None,
                Some(s) => Some(RejectReason::parse(s).ok_or_else(|| {
                    Error::Conservation(format!("{n} rows with unknown reject reason '{s}'"))
                })?),
            };
            *funnel.reasons.entry(parsed).or_default() += n;
        }
        for (bands, n) in counts.counter(COUNT_NOBS_LOW) {
            for (band, low) in bands.iter().enumerate().take(3) {
                if low.as_deref() == Some("true") {
                    funnel.nobs_low[band] += n;
                }
            }
        }
        funnel.pools = counts.by_value(COUNT_POOLS);
        funnel.categories = counts.by_value(COUNT_CATEGORIES);
        Ok(funnel)
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
            skipped_sweep_files: Vec::new(),
            output: String::new(),
            output_files: Vec::new(),
            lens_catalog: None,
            timings_s: Timings::default(),
        }
    }
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

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let mut sweeps = engine.register_sweeps(config).await?;
    let lenses = register_lenses(engine, config, &output).await?;
    register_lens_table(
        engine,
        "lens_cells",
        lens_cells(config),
        lenses.as_ref(),
        &output,
    )
    .await?;
    let mut planned = std::time::Duration::ZERO;
    let mut attempt = 0;
    // A file that passed the header checks but fails while scanned (cut
    // short since, missing a column the plan needs, unreadable object) stops
    // the job; under `scan.on_bad_file: skip` the job runs again without it,
    // so no file is ever half counted.
    let (funnel, files) = loop {
        let outcome = async {
            let df = NEGATIVES.dataframe(&engine.ctx, params(config)).await?;
            planned = started.elapsed();
            let version = match attempt {
                0 => run_id.to_string(),
                n => format!("{run_id}-retry{n}"),
            };
            let written = write(
                engine,
                df,
                output.child(Stage::Negatives.folder()),
                &version,
                |folder| Funnel::counters(WriteSpec::new(folder, OUTPUT_COLUMN_NAMES)),
            )
            .await?;
            let funnel = Funnel::from_counts(&written.summaries.counts)?;
            // Checked before the output is made visible.
            let files = written
                .commit_if(|s| {
                    funnel.check(sweeps.total_rows())?;
                    if s.rows_written != funnel.kept() {
                        return Err(Error::Conservation(format!(
                            "{} rows written but {} kept",
                            s.rows_written,
                            funnel.kept()
                        )));
                    }
                    Ok(())
                })
                .await?;
            Ok::<_, Error>((funnel, files))
        }
        .await;
        match outcome {
            Ok(done) => break done,
            Err(e) => {
                let e = engine.explain(e, config);
                sweeps = engine.without_bad_file(&sweeps, e, config)?;
                attempt += 1;
            }
        }
    };

    let min_nobs = &config.selection.min_nobs.value;
    let section = NegativesSection {
        sweep_files: sweeps.files().len(),
        skipped_sweep_files: sweeps.skipped().to_vec(),
        output: output.child(Stage::Negatives.folder()).url,
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
    Ok(section)
}
