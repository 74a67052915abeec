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
use datafusion::prelude::{DataFrame, ParquetReadOptions};
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Config, ExtraStratum};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::record_stage;
use crate::plan::{Params, SqlPlan, JOIN_NSIDE, STRATIFY};
use crate::sink::{write_partitions, Location, ParquetDir};

const COUNTS: SqlPlan = SqlPlan {
    name: "stratify_counts",
    text: include_str!("../../sql/stratify_counts.sql"),
};
const LEAKAGE: SqlPlan = SqlPlan {
    name: "split_leakage",
    text: include_str!("../../sql/split_leakage.sql"),
};

/// How many negatives one (stratum, pool) should give and can give.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The per-stratum, per-pool targets: `negatives_per_positive` times the
/// positives, spread like the positives, `n2_fraction` of each from N2.
pub fn plan_quotas(
    positives: &BTreeMap<String, u64>,
    negatives: &BTreeMap<(String, String), u64>,
    negatives_per_positive: f64,
    n2_fraction: f64,
) -> Vec<Quota> {
    let total_positives: u64 = positives.values().sum();
    let total = (total_positives as f64 * negatives_per_positive).round() as u64;
    let strata: Vec<&String> = positives.keys().collect();
    let weights: Vec<u64> = strata.iter().map(|s| positives[*s]).collect();
    let targets = apportion(total, &weights);
    let mut quotas = Vec::new();
    for (stratum, target) in strata.into_iter().zip(targets) {
        let n2 = (target as f64 * n2_fraction).round() as u64;
        for (pool, pool_target) in [("N1", target - n2), ("N2", n2)] {
            let available = negatives
                .get(&(stratum.clone(), pool.to_string()))
                .copied()
                .unwrap_or(0);
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

async fn read_stage(engine: &Engine, output: &Location, stage: &str) -> Result<DataFrame> {
    let url = format!("{}/", output.child(stage).url);
    engine
        .ctx
        .read_parquet(url.as_str(), ParquetReadOptions::default())
        .await
        .map_err(|e| {
            Error::Input(format!(
                "cannot read the {stage} stage output at {url} (run that stage first): {e}"
            ))
        })
}

fn quotas_batch(quotas: &[Quota]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("stratum", DataType::Utf8, false),
        Field::new("pool", DataType::Utf8, false),
        Field::new("quota", DataType::Int64, false),
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

/// Sample rows per (label, pool, split).
type SampleCounts = BTreeMap<(String, String, String), u64>;

fn count_sample(batch: &RecordBatch, counts: &mut SampleCounts) -> Result<RecordBatch> {
    let (label, pool, split) = (
        string_column(batch, "label")?,
        string_column(batch, "pool")?,
        string_column(batch, "split")?,
    );
    let (label, pool, split) = (
        label.as_string::<i32>(),
        pool.as_string::<i32>(),
        split.as_string::<i32>(),
    );
    for i in 0..batch.num_rows() {
        let key = (
            label.value(i).to_string(),
            pool.value(i).to_string(),
            split.value(i).to_string(),
        );
        *counts.entry(key).or_default() += 1;
    }
    Ok(batch.clone())
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let stratum = stratum_expr(&config.sampling.extra_strata);
    let positives = read_stage(engine, &output, "positives")
        .await?
        .filter(col("status").eq(lit("matched")))?
        .with_column("stratum", stratum.clone())?;
    let negatives = read_stage(engine, &output, "negatives")
        .await?
        .with_column("stratum", stratum)?;
    for name in [
        "positives_strata",
        "negatives_strata",
        "quotas",
        "grade_weights",
        "sample",
    ] {
        engine.ctx.deregister_table(name)?;
    }
    engine
        .ctx
        .register_table("positives_strata", positives.into_view())?;
    engine
        .ctx
        .register_table("negatives_strata", negatives.into_view())?;

    let mut pos_counts = BTreeMap::new();
    let mut neg_counts = BTreeMap::new();
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
                pos_counts.insert(stratum, n);
            } else {
                neg_counts.insert((stratum, pool), n);
            }
        }
    }
    let quotas = plan_quotas(
        &pos_counts,
        &neg_counts,
        config.sampling.negatives_per_positive.value,
        config.sampling.n2_fraction.value,
    );
    let tables = output.child("catalog");
    engine
        .register_shared_batch("quotas", quotas_batch(&quotas)?, &tables)
        .await?;
    engine
        .register_shared_batch(
            "grade_weights",
            grade_weights_batch(&config.sampling.grade_weights.value)?,
            &tables,
        )
        .await?;

    let f = &config.split.fractions.value;
    let params = Params::new()
        .i64("sampling_seed", config.sampling.seed.value)
        .i64("split_seed", config.split.seed.value)
        .i64("split_nside", config.split.nside.value as i64)
        .f64("train_fraction", f.train)
        .f64("val_fraction", f.val);
    let df = STRATIFY.dataframe(&engine.ctx, params).await?;
    let streams = df.execute_stream_partitioned().await?;
    let dir = ParquetDir::create(output.child("sample"), run_id).await?;
    let (parts, dir) = write_partitions(dir, streams, count_sample).await?;
    let mut counts: SampleCounts = BTreeMap::new();
    for part in parts {
        for (k, v) in part {
            *counts.entry(k).or_default() += v;
        }
    }

    // Conservation: every positive is in the sample once, every quota is met exactly.
    let total_positives: u64 = pos_counts.values().sum();
    let drawn: u64 = quotas.iter().map(|q| q.quota).sum();
    let sampled_positives: u64 = counts
        .iter()
        .filter(|((l, _, _), _)| l == "1")
        .map(|(_, v)| v)
        .sum();
    let sampled_negatives: u64 = counts
        .iter()
        .filter(|((l, _, _), _)| l == "0")
        .map(|(_, v)| v)
        .sum();
    if sampled_positives != total_positives || sampled_negatives != drawn {
        return Err(Error::Conservation(format!(
            "sample holds {sampled_positives} positives and {sampled_negatives} negatives, \
             expected {total_positives} and {drawn}"
        )));
    }
    let files = dir.commit().await?;

    let sample_url = format!("{}/", output.child("sample").url);
    engine
        .ctx
        .register_parquet("sample", &sample_url, ParquetReadOptions::default())
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

    let mut fractions = serde_json::Map::new();
    for (label, class) in [("1", "positive"), ("0", "negative")] {
        let class_total: u64 = counts
            .iter()
            .filter(|((l, _, _), _)| l == label)
            .map(|(_, v)| v)
            .sum();
        let mut by_split = serde_json::Map::new();
        for split in ["train", "val", "test"] {
            let n: u64 = counts
                .iter()
                .filter(|((l, _, s), _)| l == label && s == split)
                .map(|(_, v)| v)
                .sum();
            let fraction = if class_total > 0 {
                n as f64 / class_total as f64
            } else {
                0.0
            };
            by_split.insert(split.into(), json!({"rows": n, "fraction": fraction}));
        }
        fractions.insert(class.into(), Value::Object(by_split));
    }
    let target_n2: u64 = quotas
        .iter()
        .filter(|q| q.pool == "N2")
        .map(|q| q.target)
        .sum();
    let achieved_n2: u64 = quotas
        .iter()
        .filter(|q| q.pool == "N2")
        .map(|q| q.quota)
        .sum();
    let target_total: u64 = quotas.iter().map(|q| q.target).sum();
    let shortfalls: Vec<&Quota> = quotas.iter().filter(|q| q.quota < q.target).collect();
    // A configured bin no row falls in (request_v1's [1-2] after NOBS >= 3) is reported, not hidden.
    let empty_bins: Vec<String> = config
        .bins
        .nobs_z_spec()
        .split(',')
        .filter(|label| {
            let prefix = format!("{label}|");
            !neg_counts.keys().any(|(s, _)| s.starts_with(&prefix))
                && !pos_counts.keys().any(|s| s.starts_with(&prefix))
        })
        .map(str::to_string)
        .collect();
    let section = json!({
        "positives": total_positives,
        "negatives_target": target_total,
        "negatives_drawn": drawn,
        "n2": {
            "target_fraction": config.sampling.n2_fraction.value,
            "target_rows": target_n2,
            "achieved_rows": achieved_n2,
            "achieved_fraction": if drawn > 0 { achieved_n2 as f64 / drawn as f64 } else { 0.0 },
        },
        "shortfall": !shortfalls.is_empty(),
        "empty_nobs_z_bins": empty_bins,
        "strata": quotas,
        "negatives_available_outside_positive_strata": neg_counts
            .iter()
            .filter(|((s, _), _)| !pos_counts.contains_key(s))
            .map(|((s, p), n)| json!({"stratum": s, "pool": p, "rows": n}))
            .collect::<Vec<_>>(),
        "split_fractions": fractions,
        "leakage": {"pixels_in_several_splits": mixed_pixels, "close_pairs_across_splits": leak("close_pairs_across_splits"),
                    "radius_arcsec": config.exclusion.radius_arcsec.value},
        "output": output.child("sample").url,
        "output_files": files,
        "timings_s": {"total": started.elapsed().as_secs_f64()},
    });
    record_stage(
        &output,
        config,
        &engine.kind.describe(),
        "stratify",
        section.clone(),
    )
    .await?;
    Ok(section)
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
        let q = plan_quotas(&pos, &neg, 100.0, 0.15);
        let get = |s: &str, p: &str| {
            q.iter()
                .find(|x| x.stratum == s && x.pool == p)
                .unwrap()
                .clone()
        };
        assert_eq!(get("3-5|DEV", "N1").quota, 170);
        assert_eq!(get("3-5|DEV", "N2").target, 30);
        assert_eq!(get("3-5|DEV", "N2").quota, 5);
        assert_eq!(get("6-10|REX", "N2").available, 0);
        assert_eq!(q.iter().map(|x| x.target).sum::<u64>(), 400);
    }
}
