//! Stratified sampling of negatives against the positives, and the
//! train/val/test split by sky area.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::functions::expr_fn::{coalesce, concat_ws};
use datafusion::logical_expr::{col, lit, when, Expr};
use datafusion::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ExtraStratum};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, Leakage, N2Summary, Section, SplitShare, StratifySection, StratumRows, Timings,
};
use crate::plan::{Params, SqlPlan, JOIN_NSIDE, STRATIFY};
use crate::sink::{
    column_names, committed, read_committed, register_committed, write, CounterRows, Location,
};
use crate::stages::positives::PositiveStatus;
use crate::stages::{matching, Stage, CATALOG_TABLES};
use lenspipe_sinks::WriteSpec;

const COUNTS: SqlPlan = SqlPlan {
    text: include_str!("../../sql/stratify_counts.sql"),
    output: None,
};
const LEAKAGE: SqlPlan = SqlPlan {
    text: include_str!("../../sql/split_leakage.sql"),
    output: None,
};

/// How many negatives one (stratum, pool) should give and can give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub stratum: String,
    pub pool: String,
    pub target: u64,
    pub available: u64,
    pub quota: u64,
}

/// Splits `total` over weights by the largest-remainder method, so the parts
/// add up to `total` exactly.
fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|w| total as f64 * *w as f64 / sum as f64)
        .collect();
    let mut parts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        (exact[*b] - exact[*b].floor())
            .total_cmp(&(exact[*a] - exact[*a].floor()))
            .then(a.cmp(b))
    });
    let short = total.saturating_sub(parts.iter().sum());
    for i in order.into_iter().take(short as usize) {
        parts[i] += 1;
    }
    parts
}

/// How a stratum's target is shared between the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolShare {
    /// `n2_fraction` of the target from N2, the rest from N1; a short pool
    /// stays short (the unmatched draw, as the request's pipeline does it).
    Fixed,
    /// The same split where both pools can supply it; where one cannot, the
    /// other supplies the rest. Matched cells need negatives like their
    /// positives whatever their pool: every bright DEV galaxy is an N2 ring
    /// candidate, so bright early-type cells have no N1 rows at all.
    Spill,
}

/// The per-stratum, per-pool targets: `negatives_per_positive` times the
/// positives, spread like the positives, `n2_fraction` of each from N2.
pub fn plan_quotas(
    positives: &BTreeMap<String, u64>,
    negatives: &BTreeMap<(String, String), u64>,
    negatives_per_positive: f64,
    n2_fraction: f64,
    share: PoolShare,
) -> Vec<Quota> {
    let total_positives: u64 = positives.values().sum();
    let total = (total_positives as f64 * negatives_per_positive).round() as u64;
    let strata: Vec<&String> = positives.keys().collect();
    let weights: Vec<u64> = strata.iter().map(|s| positives[*s]).collect();
    let targets = apportion(total, &weights);
    let mut quotas = Vec::new();
    for (stratum, target) in strata.into_iter().zip(targets) {
        let available = |pool: &str| {
            negatives
                .get(&(stratum.clone(), pool.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let mut n2 = (target as f64 * n2_fraction).round() as u64;
        if share == PoolShare::Spill {
            let (n1_available, n2_available) = (available("N1"), available("N2"));
            // N2 takes what N1 cannot supply, and N1 what N2 cannot; both
            // short together leaves the shortfall on N1.
            n2 = n2
                .max(target.saturating_sub(n1_available))
                .min(n2_available);
        }
        for (pool, pool_target) in [("N1", target - n2), ("N2", n2)] {
            let available = available(pool);
            quotas.push(Quota {
                stratum: stratum.clone(),
                pool: pool.into(),
                target: pool_target,
                available,
                quota: pool_target.min(available),
            });
        }
    }
    quotas
}

/// The stratum label: `nobs_z_bin|type_bin` plus any extra binned columns.
fn stratum_expr(extra: &[ExtraStratum]) -> Expr {
    let mut parts = vec![
        coalesce(vec![col("nobs_z_bin"), lit("none")]),
        coalesce(vec![col("type_bin"), lit("none")]),
    ];
    for s in extra {
        let mut case = when(
            col(s.column.as_str()).is_null(),
            lit(format!("{}:none", s.column)),
        );
        for e in &s.edges {
            case = case.when(
                col(s.column.as_str()).lt(lit(*e)),
                lit(format!("{}<{e}", s.column)),
            );
        }
        let last = s.edges.last().copied().unwrap_or(f64::NEG_INFINITY);
        parts.push(
            case.otherwise(lit(format!("{}>={last}", s.column)))
                .unwrap_or_else(|_| lit("invalid")),
        );
    }
    concat_ws(lit("|"), parts)
}

/// The committed output of an earlier stage.
async fn read_stage(engine: &Engine, output: &Location, stage: Stage) -> Result<DataFrame> {
    let dir = output.child(stage.folder());
    let manifest = committed(&dir).await?.ok_or_else(|| {
        Error::Input(format!(
            "the {stage} stage has no committed output at {} (run that stage first)",
            dir.url
        ))
    })?;
    read_committed(engine, &dir, &manifest).await
}

/// The quotas the draw joins with; `weighted`: each drawn negative of a
/// short (stratum, pool) weighs `target / quota` (matching only, so the
/// unmatched sample keeps weight 1.0 everywhere).
fn quotas_batch(quotas: &[Quota], weighted: bool) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("stratum", DataType::Utf8, false),
        Field::new("pool", DataType::Utf8, false),
        Field::new("quota", DataType::Int64, false),
        Field::new("draw_weight", DataType::Float64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                quotas.iter().map(|q| q.stratum.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                quotas.iter().map(|q| q.pool.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                quotas.iter().map(|q| q.quota as i64),
            )),
            Arc::new(Float64Array::from_iter_values(quotas.iter().map(|q| {
                if weighted {
                    matching::draw_weight(q)
                } else {
                    1.0
                }
            }))),
        ],
    )?)
}

fn grade_weights_batch(weights: &BTreeMap<String, f64>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("grade", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                weights.keys().map(String::as_str),
            )),
            Arc::new(Float64Array::from_iter_values(weights.values().copied())),
        ],
    )?)
}

/// A column of a plan batch as strings, whatever its type.
fn string_column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Other(format!("missing column {name}")))?;
    Ok(cast(array, &DataType::Utf8)?)
}

/// The column the draw orders each stratum's negatives by before the hash:
/// with `sampling.match_on` the distance to the cell's nearest positive,
/// otherwise 0 for every row.
const MATCH_DISTANCE: &str = "match_distance";

/// The writer's counter of sample rows by (label, pool, split).
const COUNT_SAMPLE: &str = "sample";

/// Sample rows per (label, pool, split).
type SampleCounts = BTreeMap<(String, String, String), u64>;

/// Positives per stratum, and negatives per (stratum, pool).
#[derive(Debug, Default)]
struct StrataCounts {
    positives: BTreeMap<String, u64>,
    negatives: BTreeMap<(String, String), u64>,
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let cells = register_strata(engine, config, &output).await?;
    let strata = count_strata(engine).await?;
    let quotas = plan_quotas(
        &strata.positives,
        &strata.negatives,
        config.sampling.negatives_per_positive.value,
        config.sampling.n2_fraction.value,
        if cells.is_some() {
            PoolShare::Spill
        } else {
            PoolShare::Fixed
        },
    );
    register_sampling_tables(engine, config, &output, &quotas, cells.is_some()).await?;
    let (counts, files) = draw_and_split(engine, config, &output, run_id, &strata, &quotas).await?;
    let leakage = measure_leakage(engine, config, &output).await?;
    let matching = match &cells {
        Some(cells) => Some(summarise_matching(engine, config, cells, &strata, &quotas).await?),
        None => None,
    };
    let section = Section::Stratify(StratifySection {
        matching,
        output: output.child(Stage::Stratify.folder()).url,
        output_files: files,
        timings_s: Timings {
            total: started.elapsed().as_secs_f64(),
            ..Timings::default()
        },
        ..summarise(config, &strata, &quotas, &counts, leakage)
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
}

/// Registers the matched positives and the negatives, each with its
/// stratum label, as `positives_strata` and `negatives_strata`, and the
/// negatives with the distance the draw orders them by as
/// `negatives_ranked` (only the draw reads it: with matching its
/// expression is the largest, and every query reading it plans it again).
/// With `sampling.match_on` the label ends with the matching cell (and
/// `base_stratum` keeps it without); the cells are returned.
async fn register_strata(
    engine: &Engine,
    config: &Config,
    output: &Location,
) -> Result<Option<matching::Cells>> {
    let stratum = stratum_expr(&config.sampling.extra_strata);
    let mut positives = read_stage(engine, output, Stage::Positives)
        .await?
        .filter(col("status").eq(lit(PositiveStatus::Matched.as_str())))?
        .with_column("stratum", stratum.clone())?;
    let mut negatives = read_stage(engine, output, Stage::Negatives)
        .await?
        .with_column("stratum", stratum)?;
    let columns = &config.sampling.match_on.value;
    let mut matched = None;
    let mut distance = lit(0.0);
    if !columns.is_empty() {
        matching::check_columns(&positives, &negatives, columns)?;
        let cells = matching::cells_of(
            engine,
            &positives,
            &negatives,
            columns,
            config.sampling.seed.value,
            config.sampling.negatives_per_positive.value,
        )
        .await?;
        let label = matching::matched_stratum(col("base_stratum"), &cells, columns);
        positives = cells
            .with_values(
                positives.with_column_renamed("stratum", "base_stratum")?,
                col("base_stratum"),
                columns,
            )?
            .with_column("stratum", label.clone())?;
        negatives = cells
            .with_values(
                negatives.with_column_renamed("stratum", "base_stratum")?,
                col("base_stratum"),
                columns,
            )?
            .with_column("stratum", label)?;
        distance = cells.distance_expr(col("base_stratum"), columns);
        matched = Some(cells);
    }
    for name in [
        "positives_strata",
        "negatives_strata",
        "negatives_ranked",
        "quotas",
        "grade_weights",
        "sample",
    ] {
        engine.ctx.deregister_table(name)?;
    }
    engine
        .ctx
        .register_table("positives_strata", positives.into_view())?;
    engine.ctx.register_table(
        "negatives_ranked",
        negatives
            .clone()
            .with_column(MATCH_DISTANCE, distance)?
            .into_view(),
    )?;
    engine
        .ctx
        .register_table("negatives_strata", negatives.into_view())?;
    Ok(matched)
}

async fn count_strata(engine: &Engine) -> Result<StrataCounts> {
    let mut counts = StrataCounts::default();
    for batch in COUNTS
        .dataframe(&engine.ctx, Params::new())
        .await?
        .collect()
        .await?
    {
        let rows = batch
            .column_by_name("rows")
            .map(|a| a.as_primitive::<Int64Type>().clone())
            .ok_or_else(|| Error::Other("counts lack rows".into()))?;
        let (class, stratum, pool) = (
            string_column(&batch, "class")?,
            string_column(&batch, "stratum")?,
            string_column(&batch, "pool")?,
        );
        let (class, stratum, pool) = (
            class.as_string::<i32>(),
            stratum.as_string::<i32>(),
            pool.as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            let (class, stratum, pool) = (
                class.value(i),
                stratum.value(i).to_string(),
                pool.value(i).to_string(),
            );
            let n = rows.value(i) as u64;
            if class == "positive" {
                counts.positives.insert(stratum, n);
            } else {
                counts.negatives.insert((stratum, pool), n);
            }
        }
    }
    Ok(counts)
}

/// Registers the small tables the draw joins with: `quotas`, `grade_weights`.
async fn register_sampling_tables(
    engine: &Engine,
    config: &Config,
    output: &Location,
    quotas: &[Quota],
    matched: bool,
) -> Result<()> {
    let tables = output.child(CATALOG_TABLES);
    engine
        .register_shared_batch("quotas", quotas_batch(quotas, matched)?, &tables)
        .await?;
    engine
        .register_shared_batch(
            "grade_weights",
            grade_weights_batch(&config.sampling.grade_weights.value)?,
            &tables,
        )
        .await?;
    Ok(())
}

/// Every value the stratify plan binds.
pub fn params(config: &Config) -> Params {
    let f = &config.split.fractions.value;
    Params::new()
        .i64("sampling_seed", config.sampling.seed.value)
        .i64("split_seed", config.split.seed.value)
        .i64("split_nside", config.split.nside.value as i64)
        .f64("train_fraction", f.train)
        .f64("val_fraction", f.val)
}

/// Runs the stratify plan into `sample/`, checks that every positive is in
/// it once and every quota is met exactly, then makes it visible.
async fn draw_and_split(
    engine: &Engine,
    config: &Config,
    output: &Location,
    run_id: &str,
    strata: &StrataCounts,
    quotas: &[Quota],
) -> Result<(SampleCounts, Vec<String>)> {
    let df = STRATIFY.dataframe(&engine.ctx, params(config)).await?;
    let columns = column_names(&df);
    let written = write(
        engine,
        df,
        output.child(Stage::Stratify.folder()),
        run_id,
        |folder| {
            WriteSpec::new(folder, &columns).count(
                COUNT_SAMPLE,
                &["label", "pool", "split"],
                CounterRows::All,
            )
        },
    )
    .await?;
    let mut counts: SampleCounts = BTreeMap::new();
    for (key, n) in written.summaries.counts.counter(COUNT_SAMPLE) {
        let text = |i: usize| key.get(i).cloned().flatten().unwrap_or_default();
        *counts.entry((text(0), text(1), text(2))).or_default() += n;
    }

    let total_positives: u64 = strata.positives.values().sum();
    let drawn: u64 = quotas.iter().map(|q| q.quota).sum();
    let (sampled_positives, sampled_negatives) = (
        class_rows(&counts, "1", None),
        class_rows(&counts, "0", None),
    );
    let files = written
        .commit_if(|_| {
            if sampled_positives != total_positives || sampled_negatives != drawn {
                return Err(Error::Conservation(format!(
                    "sample holds {sampled_positives} positives and {sampled_negatives} negatives, \
                     expected {total_positives} and {drawn}"
                )));
            }
            Ok(())
        })
        .await?;
    Ok((counts, files))
}

/// Rows of one label (`"1"`, `"0"`), in one split or all.
fn class_rows(counts: &SampleCounts, label: &str, split: Option<&str>) -> u64 {
    counts
        .iter()
        .filter(|((l, _, s), _)| l == label && split.is_none_or(|split| s == split))
        .map(|(_, v)| v)
        .sum()
}

/// Reads the sample back and measures how the split separates the sky; a
/// HEALPix pixel in several splits is an error.
async fn measure_leakage(engine: &Engine, config: &Config, output: &Location) -> Result<Leakage> {
    register_committed(
        &engine.ctx,
        "sample",
        &output.child(Stage::Stratify.folder()),
    )
    .await?;
    let leakage = LEAKAGE
        .dataframe(
            &engine.ctx,
            Params::new()
                .i64("join_nside", JOIN_NSIDE)
                .f64("radius_arcsec", config.exclusion.radius_arcsec.value),
        )
        .await?
        .collect()
        .await?;
    let leak = |name: &str| -> u64 {
        leakage
            .first()
            .and_then(|b| b.column_by_name(name))
            .and_then(|a| cast(a, &DataType::Int64).ok())
            .map(|a| a.as_primitive::<Int64Type>().value(0) as u64)
            .unwrap_or(0)
    };
    let mixed_pixels = leak("pixels_in_several_splits");
    if mixed_pixels != 0 {
        return Err(Error::Conservation(format!(
            "{mixed_pixels} HEALPix pixels fall in several splits"
        )));
    }
    Ok(Leakage {
        pixels_in_several_splits: mixed_pixels,
        close_pairs_across_splits: leak("close_pairs_across_splits"),
        radius_arcsec: config.exclusion.radius_arcsec.value,
    })
}

/// The stage's run.json section, but for its output and timings.
fn summarise(
    config: &Config,
    strata: &StrataCounts,
    quotas: &[Quota],
    counts: &SampleCounts,
    leakage: Leakage,
) -> StratifySection {
    let mut split_fractions = BTreeMap::new();
    for (label, class) in [("1", "positive"), ("0", "negative")] {
        let class_total = class_rows(counts, label, None);
        let by_split = ["train", "val", "test"]
            .into_iter()
            .map(|split| {
                let rows = class_rows(counts, label, Some(split));
                let fraction = if class_total > 0 {
                    rows as f64 / class_total as f64
                } else {
                    0.0
                };
                (split.to_string(), SplitShare { rows, fraction })
            })
            .collect();
        split_fractions.insert(class.to_string(), by_split);
    }
    let drawn: u64 = quotas.iter().map(|q| q.quota).sum();
    let n2 = quotas.iter().filter(|q| q.pool == "N2");
    let (target_n2, achieved_n2): (u64, u64) = (
        n2.clone().map(|q| q.target).sum(),
        n2.map(|q| q.quota).sum(),
    );
    // A configured bin no row falls in (request_v1's [1-2] after NOBS >= 3) is reported, not hidden.
    let empty_bins: Vec<String> = config
        .bins
        .nobs_z_spec()
        .split(',')
        .filter(|label| {
            let prefix = format!("{label}|");
            !strata.negatives.keys().any(|(s, _)| s.starts_with(&prefix))
                && !strata.positives.keys().any(|s| s.starts_with(&prefix))
        })
        .map(str::to_string)
        .collect();
    StratifySection {
        positives: strata.positives.values().sum(),
        negatives_target: quotas.iter().map(|q| q.target).sum(),
        negatives_drawn: drawn,
        n2: N2Summary {
            target_fraction: config.sampling.n2_fraction.value,
            target_rows: target_n2,
            achieved_rows: achieved_n2,
            achieved_fraction: if drawn > 0 {
                achieved_n2 as f64 / drawn as f64
            } else {
                0.0
            },
        },
        shortfall: quotas.iter().any(|q| q.quota < q.target),
        empty_nobs_z_bins: empty_bins,
        strata: quotas.to_vec(),
        negatives_available_outside_positive_strata: strata
            .negatives
            .iter()
            .filter(|((s, _), _)| !strata.positives.contains_key(s))
            .map(|((s, p), n)| StratumRows {
                stratum: s.clone(),
                pool: p.clone(),
                rows: *n,
            })
            .collect(),
        split_fractions,
        leakage,
        matching: None,
        output: String::new(),
        output_files: Vec::new(),
        timings_s: Timings::default(),
    }
}

/// The base stratum of a matched stratum label (the cell is its last part).
fn base_of(stratum: &str) -> &str {
    stratum.rsplit_once('|').map_or(stratum, |(base, _)| base)
}

/// Cells, shortfalls, weights and balance of a matched draw.
async fn summarise_matching(
    engine: &Engine,
    config: &Config,
    cells: &matching::Cells,
    strata: &StrataCounts,
    quotas: &[Quota],
) -> Result<matching::MatchingSummary> {
    let mut positives_base: BTreeMap<String, u64> = BTreeMap::new();
    for (s, n) in &strata.positives {
        *positives_base.entry(base_of(s).to_string()).or_default() += n;
    }
    let mut pool_base: BTreeMap<String, u64> = BTreeMap::new();
    for ((s, _), n) in &strata.negatives {
        *pool_base.entry(base_of(s).to_string()).or_default() += n;
    }
    let mut drawn_per_stratum: BTreeMap<&str, u64> = BTreeMap::new();
    for q in quotas {
        *drawn_per_stratum.entry(q.stratum.as_str()).or_default() += q.quota;
    }
    let positives_without_negatives = strata
        .positives
        .iter()
        .filter(|(s, _)| drawn_per_stratum.get(s.as_str()).copied().unwrap_or(0) == 0)
        .map(|(_, n)| n)
        .sum();
    let drawn: u64 = quotas.iter().map(|q| q.quota).sum();
    let balance = matching::balance(
        engine,
        &config.sampling.match_on.value,
        config.sampling.seed.value,
        &positives_base,
        &pool_base,
        drawn,
    )
    .await?;
    Ok(matching::MatchingSummary {
        columns: config.sampling.match_on.value.clone(),
        method: matching::METHOD.into(),
        cell_positives: matching::CELL_POSITIVES,
        cells: cells.count(),
        cells_with_positives: strata.positives.len(),
        positives_without_negatives,
        shortfalls: quotas
            .iter()
            .filter(|q| q.quota < q.target)
            .map(|q| matching::CellShortfall {
                stratum: q.stratum.clone(),
                pool: q.pool.clone(),
                target: q.target,
                drawn: q.quota,
                weight: matching::draw_weight(q),
            })
            .collect(),
        negatives_effective_sample_size: matching::effective_sample_size(quotas),
        negatives_drawn: drawn,
        balance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(100, &[3, 1]), vec![75, 25]);
        assert_eq!(apportion(7, &[0, 0]), vec![0, 0]);
        let parts = apportion(1003, &[5, 17, 3, 99]);
        assert_eq!(parts.iter().sum::<u64>(), 1003);
    }

    #[test]
    fn quotas_report_shortfall_instead_of_hiding_it() {
        let pos = BTreeMap::from([("3-5|DEV".to_string(), 2u64), ("6-10|REX".to_string(), 2)]);
        let neg = BTreeMap::from([
            (("3-5|DEV".to_string(), "N1".to_string()), 1000u64),
            (("3-5|DEV".to_string(), "N2".to_string()), 5),
            (("6-10|REX".to_string(), "N1".to_string()), 1000),
        ]);
        let q = plan_quotas(&pos, &neg, 100.0, 0.15, PoolShare::Fixed);
        let get = |q: &[Quota], s: &str, p: &str| {
            q.iter()
                .find(|x| x.stratum == s && x.pool == p)
                .unwrap()
                .clone()
        };
        assert_eq!(get(&q, "3-5|DEV", "N1").quota, 170);
        assert_eq!(get(&q, "3-5|DEV", "N2").target, 30);
        assert_eq!(get(&q, "3-5|DEV", "N2").quota, 5);
        assert_eq!(get(&q, "6-10|REX", "N2").available, 0);
        assert_eq!(q.iter().map(|x| x.target).sum::<u64>(), 400);

        // Spilling, the pool that has rows supplies what the other lacks.
        let q = plan_quotas(&pos, &neg, 100.0, 0.15, PoolShare::Spill);
        assert_eq!(get(&q, "3-5|DEV", "N1").quota, 195);
        assert_eq!(get(&q, "3-5|DEV", "N2").quota, 5);
        assert_eq!(get(&q, "6-10|REX", "N1").quota, 200);
        assert!(q.iter().all(|x| x.quota == x.target));
        assert_eq!(q.iter().map(|x| x.target).sum::<u64>(), 400);
    }

    #[test]
    fn spilling_fills_an_empty_n1_cell_from_n2_and_keeps_a_joint_shortfall_on_n1() {
        let pos = BTreeMap::from([("a".to_string(), 2u64), ("b".to_string(), 2)]);
        let neg = BTreeMap::from([
            (("a".to_string(), "N2".to_string()), 50u64),
            (("b".to_string(), "N1".to_string()), 3),
            (("b".to_string(), "N2".to_string()), 4),
        ]);
        let q = plan_quotas(&pos, &neg, 5.0, 0.15, PoolShare::Spill);
        let quota = |s: &str, p: &str| {
            let x = q.iter().find(|x| x.stratum == s && x.pool == p).unwrap();
            (x.target, x.quota)
        };
        assert_eq!(quota("a", "N1"), (0, 0));
        assert_eq!(quota("a", "N2"), (10, 10));
        assert_eq!(quota("b", "N1"), (6, 3));
        assert_eq!(quota("b", "N2"), (4, 4));
    }
}
