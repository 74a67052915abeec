//! Negatives matched to the positives on `sampling.match_on`.
//!
//! The positives (a small table) are split into cells by a k-d tree: each
//! node cuts its positives at the median of one matched column, the columns
//! taken in turn, until a node holds fewer than `2 * CELL_POSITIVES`
//! positives. The cell of any row is then a nested CASE on the engine, so
//! the negative pool is never pulled into the client. The cell label joins
//! the stratum label, and the existing draw (a stable hash ranking within
//! each stratum and pool) takes `negatives_per_positive` negatives per
//! positive of each cell. The cells follow the positives' density, so where
//! positives crowd (bright, well observed) the cells are fine. Reasons and
//! limits: docs/matching.md.

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use datafusion::functions::expr_fn::concat_ws;
use datafusion::logical_expr::{cast, col, lit, when, Expr};
use datafusion::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stages::column_f64;
use crate::stages::stratify::Quota;

/// Positives a cell aims at (a node holding fewer than twice this is not
/// split). project_choice: small enough that a cell spans a narrow range of
/// every matched column where positives are dense, large enough that most
/// cells find `negatives_per_positive` negatives per positive in the pool.
pub const CELL_POSITIVES: usize = 4;

/// Rows of each class the balance statistics read at most; above it they
/// read a stable hash subsample, so client memory does not grow with the pool.
pub const BALANCE_ROWS: usize = 200_000;

/// One node of the k-d tree over the positives.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf(String),
    Split {
        column: usize,
        edge: f64,
        /// Rows whose value is NULL (or NaN) in `column`.
        missing: String,
        below: Box<Node>,
        above: Box<Node>,
    },
}

impl Node {
    /// Every leaf label, in tree order.
    pub fn leaves(&self) -> Vec<String> {
        match self {
            Node::Leaf(label) => vec![label.clone()],
            Node::Split {
                missing,
                below,
                above,
                ..
            } => {
                let mut out = vec![missing.clone()];
                out.extend(below.leaves());
                out.extend(above.leaves());
                out
            }
        }
    }

    /// The leaf a row of values (one per matched column) falls in; the
    /// client-side twin of [`Node::expr`], for tests.
    pub fn cell_of(&self, row: &[f64]) -> &str {
        match self {
            Node::Leaf(label) => label,
            Node::Split {
                column,
                edge,
                missing,
                below,
                above,
            } => {
                let v = row[*column];
                if v.is_nan() {
                    missing
                } else if v < *edge {
                    below.cell_of(row)
                } else {
                    above.cell_of(row)
                }
            }
        }
    }

    /// The cell label of a row as an engine expression.
    pub fn expr(&self, columns: &[String]) -> Expr {
        match self {
            Node::Leaf(label) => lit(label.clone()),
            Node::Split {
                column,
                edge,
                missing,
                below,
                above,
            } => {
                let value = cast(col(columns[*column].as_str()), DataType::Float64);
                when(
                    value.clone().is_null().or(value.clone().eq(lit(f64::NAN))),
                    lit(missing.clone()),
                )
                .when(value.lt(lit(*edge)), below.expr(columns))
                .otherwise(above.expr(columns))
                .unwrap_or_else(|_| lit("invalid"))
            }
        }
    }
}

/// Builds the k-d tree over positive rows (`rows[i][c]` is column `c`,
/// NaN for NULL). Depends on the values alone, not on their order.
pub fn build_tree(rows: &[Vec<f64>], columns: usize) -> Node {
    let mut rows: Vec<&Vec<f64>> = rows.iter().collect();
    // A canonical order, so ties resolve the same whatever the input order.
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    split(&rows, columns, 0, String::from("m"))
}

fn split(rows: &[&Vec<f64>], columns: usize, depth: usize, path: String) -> Node {
    if rows.len() < 2 * CELL_POSITIVES || columns == 0 {
        return Node::Leaf(path);
    }
    // The first column, in turn from this depth, on which the node's
    // positives take at least two values.
    for k in 0..columns {
        let column = (depth + k) % columns;
        let mut values: Vec<f64> = rows
            .iter()
            .map(|r| r[column])
            .filter(|v| !v.is_nan())
            .collect();
        if values.len() < 2 * CELL_POSITIVES {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let lowest = values[0];
        let median = values[values.len() / 2];
        // Rows below the edge go left: with many ties at the minimum the
        // edge moves to the next value up so both sides hold rows.
        let edge = if median > lowest {
            median
        } else {
            match values.iter().find(|v| **v > lowest) {
                Some(v) => *v,
                None => continue,
            }
        };
        let below: Vec<&Vec<f64>> = rows
            .iter()
            .copied()
            .filter(|r| !r[column].is_nan() && r[column] < edge)
            .collect();
        let above: Vec<&Vec<f64>> = rows
            .iter()
            .copied()
            .filter(|r| !r[column].is_nan() && r[column] >= edge)
            .collect();
        return Node::Split {
            column,
            edge,
            missing: format!("{path}n"),
            below: Box::new(split(&below, columns, depth + 1, format!("{path}0"))),
            above: Box::new(split(&above, columns, depth + 1, format!("{path}1"))),
        };
    }
    Node::Leaf(path)
}

/// Reads the positives' matched columns and builds the tree.
pub async fn tree_of(positives: &DataFrame, columns: &[String]) -> Result<Node> {
    let batches = positives
        .clone()
        .select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())?
        .collect()
        .await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let cols: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| column_f64(batch, c))
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            rows.push(cols.iter().map(|c| c[i]).collect());
        }
    }
    Ok(build_tree(&rows, columns.len()))
}

/// Checks that every matched column is a numeric column of both tables.
pub fn check_columns(
    positives: &DataFrame,
    negatives: &DataFrame,
    columns: &[String],
) -> Result<()> {
    for c in columns {
        for (what, df) in [("positives", positives), ("negatives", negatives)] {
            let field = df.schema().field_with_unqualified_name(c).map_err(|_| {
                Error::Config(format!(
                    "sampling.match_on: '{c}' is not a column of the {what} output"
                ))
            })?;
            if !field.data_type().is_numeric() && field.data_type() != &DataType::Boolean {
                return Err(Error::Config(format!(
                    "sampling.match_on: '{c}' is {} in the {what} output, not numeric",
                    field.data_type()
                )));
            }
        }
    }
    Ok(())
}

/// The stratum label with the matching cell appended.
pub fn matched_stratum(stratum: Expr, tree: &Node, columns: &[String]) -> Expr {
    concat_ws(lit("|"), vec![stratum, tree.expr(columns)])
}

/// Weight of each drawn negative of a (stratum, pool): where the pool
/// supplies fewer than the target, each drawn row stands for
/// `target / quota` so the weighted negatives follow the positives.
pub fn draw_weight(q: &Quota) -> f64 {
    if q.quota > 0 && q.quota < q.target {
        q.target as f64 / q.quota as f64
    } else {
        1.0
    }
}

/// A (stratum, cell, pool) whose pool could not supply its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellShortfall {
    pub stratum: String,
    pub pool: String,
    pub target: u64,
    pub drawn: u64,
    /// Weight of each drawn row; 0 drawn: the cell's positives have no
    /// matched negative in this pool.
    pub weight: f64,
}

/// Balance of one matched column: positives against negatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBalance {
    pub column: String,
    /// Positives against the negatives a stratified draw without matching
    /// takes (the pool, each stratum weighted as that draw weighs it).
    pub auc_before: Option<f64>,
    pub smd_before: Option<f64>,
    /// Positives against the drawn negatives, each row counted once (what a
    /// network trained without weights sees).
    pub auc_after: Option<f64>,
    pub smd_after: Option<f64>,
    /// The same with the `weight` column.
    pub auc_after_weighted: Option<f64>,
    pub smd_after_weighted: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchingSummary {
    pub columns: Vec<String>,
    pub method: String,
    pub cell_positives: usize,
    /// Leaves of the tree, and the (stratum, cell) pairs holding positives.
    pub cells: usize,
    pub cells_with_positives: usize,
    /// Positives in cells whose pool has no negative at all (kept, not matched).
    pub positives_without_negatives: u64,
    pub shortfalls: Vec<CellShortfall>,
    /// Kish effective sample size of the weighted negatives, and their count.
    pub negatives_effective_sample_size: f64,
    pub negatives_drawn: u64,
    pub balance: Vec<FeatureBalance>,
}

/// Kish effective sample size over the quotas' draw weights.
pub fn effective_sample_size(quotas: &[Quota]) -> f64 {
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for q in quotas {
        let w = draw_weight(q);
        sum += w * q.quota as f64;
        sum_sq += w * w * q.quota as f64;
    }
    if sum_sq > 0.0 {
        sum * sum / sum_sq
    } else {
        0.0
    }
}

/// Weighted Mann-Whitney AUC: the probability that a positive's value
/// exceeds a negative's, ties counting one half. NaN values are left out.
pub fn weighted_auc(pos: &[(f64, f64)], neg: &[(f64, f64)]) -> Option<f64> {
    let mut all: Vec<(f64, f64, bool)> = pos
        .iter()
        .filter(|(v, w)| !v.is_nan() && *w > 0.0)
        .map(|(v, w)| (*v, *w, true))
        .chain(
            neg.iter()
                .filter(|(v, w)| !v.is_nan() && *w > 0.0)
                .map(|(v, w)| (*v, *w, false)),
        )
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wp, wn): (f64, f64) =
        all.iter().fold(
            (0.0, 0.0),
            |(p, n), r| {
                if r.2 {
                    (p + r.1, n)
                } else {
                    (p, n + r.1)
                }
            },
        );
    if wp == 0.0 || wn == 0.0 {
        return None;
    }
    let (mut below_neg, mut acc, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let mut j = i;
        let (mut tie_pos, mut tie_neg) = (0.0, 0.0);
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].2 {
                tie_pos += all[j].1;
            } else {
                tie_neg += all[j].1;
            }
            j += 1;
        }
        acc += tie_pos * (below_neg + 0.5 * tie_neg);
        below_neg += tie_neg;
        i = j;
    }
    Some(acc / (wp * wn))
}

/// Standardized mean difference: (mean_pos - mean_neg) over the root of the
/// mean of the two weighted variances.
pub fn weighted_smd(pos: &[(f64, f64)], neg: &[(f64, f64)]) -> Option<f64> {
    let moments = |xs: &[(f64, f64)]| -> Option<(f64, f64)> {
        let xs: Vec<&(f64, f64)> = xs.iter().filter(|(v, w)| !v.is_nan() && *w > 0.0).collect();
        let w: f64 = xs.iter().map(|(_, w)| w).sum();
        if w == 0.0 {
            return None;
        }
        let mean = xs.iter().map(|(v, w)| v * w).sum::<f64>() / w;
        let var = xs.iter().map(|(v, w)| w * (v - mean).powi(2)).sum::<f64>() / w;
        Some((mean, var))
    };
    let (mp, vp) = moments(pos)?;
    let (mn, vn) = moments(neg)?;
    let s = ((vp + vn) / 2.0).sqrt();
    if s > 0.0 {
        Some((mp - mn) / s)
    } else if mp == mn {
        Some(0.0)
    } else {
        None
    }
}

/// (value, weight) per column for the rows of a query: `weight_column`
/// names the weight, or None for 1.0.
async fn collect_values(
    engine: &Engine,
    sql: &str,
    columns: &[String],
    weight_column: Option<&str>,
) -> Result<Vec<Vec<(f64, f64)>>> {
    let batches = engine.ctx.sql(sql).await?.collect().await?;
    let mut out = vec![Vec::new(); columns.len()];
    for batch in &batches {
        let weights = match weight_column {
            Some(w) => column_f64(batch, w)?,
            None => vec![1.0; batch.num_rows()],
        };
        for (k, c) in columns.iter().enumerate() {
            let values = column_f64(batch, c)?;
            out[k].extend(values.into_iter().zip(weights.iter().copied()));
        }
    }
    Ok(out)
}

/// A stable hash subsample fraction that keeps about `BALANCE_ROWS` of `rows`.
fn fraction(rows: u64) -> f64 {
    if rows as usize <= BALANCE_ROWS {
        1.0
    } else {
        BALANCE_ROWS as f64 / rows as f64
    }
}

/// Balance before and after matching, on the engine's registered tables:
/// `positives_strata` and `negatives_strata` (with `base_stratum`, the
/// stratum without the cell) and the committed `sample`.
pub async fn balance(
    engine: &Engine,
    columns: &[String],
    seed: i64,
    positives_per_stratum: &BTreeMap<String, u64>,
    pool_per_stratum: &BTreeMap<String, u64>,
    sample_negatives: u64,
) -> Result<Vec<FeatureBalance>> {
    let list = columns.join(", ");
    let positives = collect_values(
        engine,
        &format!("SELECT {list} FROM positives_strata"),
        columns,
        None,
    )
    .await?;
    // The pool, each base stratum weighted by positives' share over the
    // pool's share: the distribution an unmatched stratified draw has.
    let total_pos: u64 = positives_per_stratum.values().sum();
    let total_pool: u64 = pool_per_stratum.values().sum();
    let mut case = String::from("CASE");
    for (s, n) in pool_per_stratum {
        let p = positives_per_stratum.get(s).copied().unwrap_or(0);
        let w = if *n > 0 && total_pos > 0 {
            (p as f64 / total_pos as f64) / (*n as f64 / total_pool as f64)
        } else {
            0.0
        };
        case.push_str(&format!(
            " WHEN base_stratum = '{}' THEN {w:.12}",
            s.replace('\'', "''")
        ));
    }
    case.push_str(" ELSE 0.0 END");
    let before = collect_values(
        engine,
        &format!(
            "SELECT {list}, {case} AS balance_weight FROM negatives_strata \
             WHERE stable_hash_unit(galaxy_id, {seed} + 1) < {}",
            fraction(total_pool)
        ),
        columns,
        Some("balance_weight"),
    )
    .await?;
    let after_sql = |weight: &str| {
        format!(
            "SELECT {list}, {weight} AS balance_weight FROM negatives_strata n \
             JOIN (SELECT sweep_file AS s_file, row_index AS s_row, weight FROM sample WHERE label = 0 \
                   AND stable_hash_unit(galaxy_id, {seed} + 1) < {}) s \
             ON n.sweep_file = s.s_file AND n.row_index = s.s_row",
            fraction(sample_negatives)
        )
    };
    let after = collect_values(
        engine,
        &after_sql("weight"),
        columns,
        Some("balance_weight"),
    )
    .await?;
    let mut out = Vec::new();
    for (k, c) in columns.iter().enumerate() {
        let unweighted: Vec<(f64, f64)> = after[k].iter().map(|(v, _)| (*v, 1.0)).collect();
        out.push(FeatureBalance {
            column: c.clone(),
            auc_before: weighted_auc(&positives[k], &before[k]),
            smd_before: weighted_smd(&positives[k], &before[k]),
            auc_after: weighted_auc(&positives[k], &unweighted),
            smd_after: weighted_smd(&positives[k], &unweighted),
            auc_after_weighted: weighted_auc(&positives[k], &after[k]),
            smd_after_weighted: weighted_smd(&positives[k], &after[k]),
        });
    }
    Ok(out)
}

/// The report's balance rows from run.json's stratify section (none when
/// the run did not match).
pub fn report_rows(
    run: Option<&crate::manifest::RunManifest>,
) -> Vec<lenspipe_validate::balance::BalanceRow> {
    let Some(matching) = run
        .and_then(|r| r.stages.stratify.as_ref())
        .and_then(|s| s.matching.as_ref())
    else {
        return Vec::new();
    };
    matching
        .balance
        .iter()
        .map(|b| lenspipe_validate::balance::BalanceRow {
            name: b.column.clone(),
            auc_before: b.auc_before,
            auc_after: b.auc_after,
            smd_before: b.smd_before,
            smd_after: b.smd_after,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_cells_hold_few_positives_and_do_not_depend_on_order() {
        let rows: Vec<Vec<f64>> = (0..100)
            .map(|i| vec![(i * 37 % 100) as f64, (i % 7) as f64])
            .collect();
        let tree = build_tree(&rows, 2);
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(tree, build_tree(&reversed, 2));
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            *counts.entry(tree.cell_of(r).to_string()).or_default() += 1;
        }
        assert!(counts.len() >= 100 / (2 * CELL_POSITIVES));
        assert!(
            counts.values().all(|n| *n < 2 * CELL_POSITIVES),
            "{counts:?}"
        );
        assert_eq!(counts.values().sum::<usize>(), 100);
    }

    #[test]
    fn constant_and_missing_columns_do_not_split() {
        let rows: Vec<Vec<f64>> = (0..50).map(|_| vec![3.0, f64::NAN]).collect();
        assert_eq!(build_tree(&rows, 2), Node::Leaf("m".into()));
    }

    #[test]
    fn auc_and_smd() {
        let pos = [(2.0, 1.0), (3.0, 1.0)];
        let neg = [(0.0, 1.0), (1.0, 1.0)];
        assert_eq!(weighted_auc(&pos, &neg), Some(1.0));
        assert_eq!(weighted_auc(&neg, &pos), Some(0.0));
        assert_eq!(weighted_auc(&pos, &pos), Some(0.5));
        // Weight 3 on a row counts as three copies.
        let neg_w = [(2.5, 3.0), (0.0, 1.0)];
        let neg_c = [(2.5, 1.0), (2.5, 1.0), (2.5, 1.0), (0.0, 1.0)];
        assert_eq!(weighted_auc(&pos, &neg_w), weighted_auc(&pos, &neg_c));
        assert_eq!(weighted_smd(&pos, &pos), Some(0.0));
        assert!(weighted_smd(&pos, &neg).unwrap() > 0.0);
    }

    #[test]
    fn shortfall_weights_restore_the_target() {
        let q = Quota {
            stratum: "a".into(),
            pool: "N1".into(),
            target: 10,
            available: 4,
            quota: 4,
        };
        assert_eq!(draw_weight(&q) * q.quota as f64, 10.0);
        assert_eq!(effective_sample_size(&[q]), 4.0);
    }
}
