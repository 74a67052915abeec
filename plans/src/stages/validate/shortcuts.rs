//! The shortcut statistics: what could tell positives from negatives other
//! than lensing, measured on the checks rows (no pixels).

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::trim;
use datafusion::logical_expr::{cast, col, ident, lit, when, Expr};
use lenspipe_validate::auc::AucParams;
use lenspipe_validate::multivariate::LogisticParams;
use lenspipe_validate::shortcuts::{feature_shortcuts, SplitCounts, SplitsSummary};
use lenspipe_validate::stats::IMAGE_FEATURES;
use lenspipe_validate::{cross_validated_logistic, FeatureKind, ShortcutsReport};

use super::{query, sql, CATALOG_FEATURES};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Result;
use crate::plan::Params;
use crate::stages::{collect_batch, column_f64, column_i64, column_strings};

/// A feature tested between the classes: its name, kind and how it is
/// computed from a checks row.
struct Feature {
    name: String,
    kind: FeatureKind,
    expr: Expr,
}

/// The features present in `checks`: the catalogue columns, one indicator
/// per morphological type ("is REX"), and the image statistics.
fn features(present: &[String], type_values: &[String]) -> Result<Vec<Feature>> {
    let mut out = Vec::new();
    for name in CATALOG_FEATURES {
        if present.iter().any(|p| p == name) {
            out.push(Feature {
                name: name.to_string(),
                kind: FeatureKind::Catalog,
                expr: cast(ident(name), DataType::Float64),
            });
        }
    }
    for value in type_values {
        let value = value.trim();
        out.push(Feature {
            name: format!("type={value}"),
            kind: FeatureKind::Catalog,
            expr: when(trim(vec![ident("type")]).eq(lit(value)), lit(1.0)).otherwise(lit(0.0))?,
        });
    }
    for name in IMAGE_FEATURES {
        out.push(Feature {
            name: name.to_string(),
            kind: FeatureKind::Image,
            expr: ident(name),
        });
    }
    Ok(out)
}

/// What the statistics found, and the subsample they were measured on.
pub(super) struct Measured {
    pub report: ShortcutsReport,
    /// Each feature's values over the subsample, row for row with `labels`.
    pub values: Vec<(String, FeatureKind, Vec<f64>)>,
    /// Whether each row of the subsample is a positive.
    pub labels: Vec<bool>,
    /// The fraction of the rows with pixels in the subsample.
    pub fraction: f64,
    /// Features that could not be measured, and why.
    pub unmeasured: Vec<(String, String)>,
}

/// Per-feature AUCs on (a stable subsample of) the checked rows with
/// pixels, a cross-validated regression on the catalogue features, and the
/// split counts and leaks over all rows.
pub(super) async fn measure(
    engine: &Engine,
    config: &Config,
    present: &[String],
) -> Result<Measured> {
    let v = &config.validation;
    let has = |c: &str| present.iter().any(|p| p == c);
    let checks = engine.ctx.table("checks").await?;
    let with_pixels = checks
        .clone()
        .filter(col("image_hash").is_not_null())?
        .count()
        .await? as u64;
    let fraction = if with_pixels == 0 {
        1.0
    } else {
        (v.max_rows_for_statistics as f64 / with_pixels as f64).min(1.0)
    };
    let type_values = if has("type") {
        column_strings(&query(engine, sql::TYPE_VALUES, Params::new()).await?, "t")?
            .into_iter()
            .flatten()
            .collect()
    } else {
        Vec::new()
    };
    let features = features(present, &type_values)?;
    let has_split = has("split");
    // In galaxy_id order: the bootstrap draws by position, so the order
    // must not depend on the engine or the partitioning.
    let hash = engine.ctx.udf("stable_hash_unit")?;
    let split_key = if has_split {
        col("split")
    } else {
        let healpix = engine.ctx.udf("healpix_nested")?;
        cast(
            healpix.call(vec![col("ra"), col("dec"), lit(8i64)]),
            DataType::Utf8,
        )
    };
    let mut columns = vec![col("label"), split_key.alias("split_key")];
    columns.extend(features.iter().map(|f| f.expr.clone().alias(&f.name)));
    let drawn = col("image_hash").is_not_null().and(
        hash.call(vec![col("galaxy_id"), lit(v.seed)])
            .lt(lit(fraction)),
    );
    let sample = collect_batch(
        checks
            .filter(drawn)?
            .sort(vec![col("galaxy_id").sort(true, false)])?
            .select(columns)?,
    )
    .await?;
    let labels: Vec<bool> = column_i64(&sample, "label")?
        .into_iter()
        .map(|l| l == Some(1))
        .collect();
    let values: Vec<(String, FeatureKind, Vec<f64>)> = features
        .iter()
        .map(|f| Ok((f.name.clone(), f.kind, column_f64(&sample, &f.name)?)))
        .collect::<Result<_>>()?;
    let params = AucParams {
        n_boot: v.bootstrap_resamples,
        seed: v.seed as u64,
        margin: v.shortcut_auc_margin.value,
        level: 0.95,
    };
    let by_feature: Vec<(&str, FeatureKind, &[f64])> = values
        .iter()
        .map(|(n, k, c)| (n.as_str(), *k, c.as_slice()))
        .collect();
    let (per_feature, unmeasured) = feature_shortcuts(&by_feature, &labels, &params);

    // All catalogue features together, cross-validated across splits (or sky cells).
    let groups: Vec<u64> = column_strings(&sample, "split_key")?
        .into_iter()
        .map(|s| {
            lenspipe_udfs::stable_hash_unit::fnv1a64_update(0, s.unwrap_or_default().as_bytes())
        })
        .collect();
    let catalog: Vec<&(String, FeatureKind, Vec<f64>)> = values
        .iter()
        .filter(|(_, k, _)| *k == FeatureKind::Catalog)
        .collect();
    let names: Vec<&str> = catalog.iter().map(|(n, _, _)| n.as_str()).collect();
    let cols: Vec<&[f64]> = catalog.iter().map(|(_, _, c)| c.as_slice()).collect();
    let multivariate = if names.is_empty() {
        None
    } else {
        cross_validated_logistic(&names, &cols, &labels, &groups, &LogisticParams::default()).ok()
    };

    let splits = if has_split {
        splits(engine, config, present).await?
    } else {
        SplitsSummary {
            per_split: BTreeMap::new(),
            healpix_shared: false,
            brick_shared: false,
            shared_healpix: Vec::new(),
            shared_bricks: Vec::new(),
        }
    };
    Ok(Measured {
        report: ShortcutsReport {
            features: per_feature,
            multivariate,
            splits,
        },
        values,
        labels,
        fraction,
        unmeasured: unmeasured
            .into_iter()
            .map(|(name, why)| (name, why.to_string()))
            .collect(),
    })
}

/// Counts by split and class, and the sky (HEALPix pixels, bricks) shared
/// between splits, over all checked rows.
async fn splits(engine: &Engine, config: &Config, present: &[String]) -> Result<SplitsSummary> {
    let has = |c: &str| present.iter().any(|p| p == c);
    let mut per_split: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let counts = query(engine, sql::SPLIT_COUNTS, Params::new()).await?;
    let (splits, labels, ns) = (
        column_strings(&counts, "split")?,
        column_i64(&counts, "label")?,
        column_i64(&counts, "n")?,
    );
    for i in 0..ns.len() {
        let entry = per_split
            .entry(splits[i].clone().unwrap_or_else(|| "none".into()))
            .or_default();
        if labels[i] == Some(1) {
            entry.n_pos += ns[i].unwrap_or(0) as u64;
        } else {
            entry.n_neg += ns[i].unwrap_or(0) as u64;
        }
    }
    let mut shared_healpix = Vec::new();
    if has("ra") && has("dec") {
        let nside = i64::from(config.split.nside.value);
        let leaks = query(
            engine,
            sql::SPLIT_SKY_LEAKS,
            Params::new().i64("nside", nside),
        )
        .await?;
        shared_healpix = column_i64(&leaks, "p")?
            .into_iter()
            .flatten()
            .map(|p| p as u64)
            .collect();
    }
    let mut shared_bricks = Vec::new();
    if has("brickname") {
        let leaks = query(engine, sql::SPLIT_BRICK_LEAKS, Params::new()).await?;
        shared_bricks = column_strings(&leaks, "b")?.into_iter().flatten().collect();
    }
    Ok(SplitsSummary {
        per_split,
        healpix_shared: !shared_healpix.is_empty(),
        brick_shared: !shared_bricks.is_empty(),
        shared_healpix,
        shared_bricks,
    })
}
