//! Negatives matched to the positives on `sampling.match_on`.
//!
//! The matched columns are cut into cells by a propensity tree, a
//! classification tree of positives against the negative pool: each node
//! takes the cut that best separates the two, so cells are narrow exactly
//! where a network could tell the classes apart. It is fitted in the client
//! on the positives (a small table) and a bounded stable hash subsample of
//! the pool; the cell of any row is then a nested CASE on the engine, so the
//! pool itself never leaves it. The cell label joins the stratum label, and
//! the draw takes `negatives_per_positive` negatives per positive of each
//! cell, the nearest to the cell's positives first.
//! Reasons and limits: docs/matching.md.

use std::collections::BTreeMap;

use arrow::datatypes::DataType;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::{coalesce, concat_ws, least};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{cast, col, lit, when, Expr};
use datafusion::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stages::stratify::Quota;
use crate::stages::{column_f64, column_i64, column_strings};
use lenspipe_validate::multivariate::{logistic_score, LinearScore, LogisticParams};

/// Fewest positives a cell holds. project_choice: one, so a cell may close
/// around a single positive where the pool is rich (the tree then works as
/// nearest-neighbour matching); how far cells shrink is bounded by the pool
/// rows each needs, not by this. Larger values left the brightest hosts in
/// wide cells whose negatives were fainter.
pub const CELL_POSITIVES: usize = 1;

/// How the cells are made and drawn, as run.json states it.
pub const METHOD: &str = "propensity tree: cells cut where positives and the pool differ most \
     (class-balanced Gini), per (stratum, cell, pool) the negatives nearest to the cell's \
     positives drawn first, ties by stable hash";

/// Rows of each class the balance statistics read at most; above it they
/// read a stable hash subsample, so client memory does not grow with the pool.
pub const BALANCE_ROWS: usize = 200_000;

/// One node of the tree over the matched columns.
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

/// A Float64 value that is NULL or NaN: such rows get a cell of their own.
fn is_missing(value: Expr) -> Expr {
    value.clone().is_null().or(value.eq(lit(f64::NAN)))
}

impl Node {
    /// Leaves of the tree, each node's missing-value cell included.
    pub fn leaf_count(&self) -> usize {
        match self {
            Node::Leaf(_) => 1,
            Node::Split { below, above, .. } => 1 + below.leaf_count() + above.leaf_count(),
        }
    }

    /// The leaf a row of values (one per column the tree cuts on) falls in;
    /// the client-side twin of [`Node::expr`].
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

    /// The nested CASE that finds a row's leaf, each leaf giving `leaf(label)`;
    /// `columns[c]` is the value of column `c` the tree cuts on, as Float64.
    fn case(&self, columns: &[Expr], leaf: &dyn Fn(&str) -> Expr) -> Expr {
        match self {
            Node::Leaf(label) => leaf(label),
            Node::Split {
                column,
                edge,
                missing,
                below,
                above,
            } => {
                let value = columns[*column].clone();
                when(is_missing(value.clone()), leaf(missing))
                    .when(value.lt(lit(*edge)), below.case(columns, leaf))
                    .otherwise(above.case(columns, leaf))
                    .unwrap_or_else(|_| lit("invalid"))
            }
        }
    }

    /// The cell label of a row as an engine expression.
    pub fn expr(&self, columns: &[Expr]) -> Expr {
        self.case(columns, &|label| lit(label.to_string()))
    }

    /// The squared standardised distance of a row to the nearest positive
    /// of its cell, as an engine expression: the draw takes the negatives
    /// nearest to the cell's positives first. `points` holds each leaf's
    /// positives, `scales[c]` the spread of column `c`.
    pub fn distance_expr(
        &self,
        columns: &[Expr],
        scales: &[f64],
        points: &BTreeMap<String, Vec<Vec<f64>>>,
    ) -> Expr {
        self.case(columns, &|label| {
            let nearest: Vec<Expr> = points
                .get(label)
                .into_iter()
                .flatten()
                .map(|point| {
                    let mut sum = lit(0.0);
                    for ((value, p), scale) in columns.iter().zip(point).zip(scales) {
                        if p.is_nan() {
                            continue;
                        }
                        let z = (value.clone() - lit(*p)) / lit(*scale);
                        sum = sum + coalesce(vec![z.clone() * z, lit(0.0)]);
                    }
                    sum
                })
                .collect();
            match nearest.len() {
                0 => lit(0.0),
                1 => nearest.into_iter().next().unwrap_or(lit(0.0)),
                _ => least(nearest),
            }
        })
    }
}

/// What the tree is fitted on: the positives' matched values and those of a
/// stable hash subsample of the negative pool (`rows[i][c]` is column `c`,
/// NaN for NULL).
pub struct FitRows {
    pub positives: Vec<Vec<f64>>,
    pub pool: Vec<Vec<f64>>,
    /// Pool rows each subsampled row stands for (pool size / subsample size).
    pub pool_scale: f64,
    /// `sampling.negatives_per_positive`: the pool rows a cell must hold
    /// per positive ([`build_tree`] asks less where the whole stratum holds
    /// less, so no cell is made poorer than its stratum).
    pub negatives_per_positive: f64,
}

/// Grows the propensity tree: each node takes the cut, over every matched
/// column, that best separates its positives from its pool rows (the
/// largest decrease of the class-balanced Gini impurity), as long as each
/// side keeps `CELL_POSITIVES` positives and enough pool rows to fill its
/// draw. Leaves are therefore narrow where the classes differ and wide
/// where they do not. Depends on the values alone, not on their order.
pub fn build_tree(fit: &FitRows, columns: usize) -> Node {
    let positives = fit.positives.len();
    let rows: Vec<&Vec<f64>> = fit.positives.iter().chain(fit.pool.iter()).collect();
    if positives == 0 || fit.pool.is_empty() || columns == 0 {
        return Node::Leaf(String::from("m"));
    }
    let grower = Grower {
        rows: &rows,
        positives,
        // Class-balanced weights: each class weighs 1 in total.
        weight_pos: 1.0 / positives as f64,
        weight_neg: 1.0 / fit.pool.len() as f64,
        pool_scale: fit.pool_scale,
        per_positive: fit
            .negatives_per_positive
            .min(fit.pool.len() as f64 * fit.pool_scale / positives as f64),
    };
    // Per column, the non-missing rows in order of value.
    let sorted: Vec<Vec<u32>> = (0..columns)
        .map(|c| {
            let mut ids: Vec<u32> = (0..rows.len() as u32)
                .filter(|i| !rows[*i as usize][c].is_nan())
                .collect();
            ids.sort_by(|a, b| rows[*a as usize][c].total_cmp(&rows[*b as usize][c]));
            ids
        })
        .collect();
    let members: Vec<u32> = (0..rows.len() as u32).collect();
    let mut side = vec![0u8; rows.len()];
    grower.grow(&members, sorted, &mut side, String::from("m"))
}

struct Grower<'a> {
    rows: &'a [&'a Vec<f64>],
    /// Rows below this index are positives, the rest pool rows.
    positives: usize,
    weight_pos: f64,
    weight_neg: f64,
    pool_scale: f64,
    per_positive: f64,
}

/// The best cut of a node.
struct Cut {
    column: usize,
    edge: f64,
    gain: f64,
}

const BELOW: u8 = 1;
const ABOVE: u8 = 2;
const MISSING: u8 = 3;

impl Grower<'_> {
    fn is_positive(&self, row: u32) -> bool {
        (row as usize) < self.positives
    }

    fn counts(&self, rows: &[u32]) -> (usize, usize) {
        let pos = rows.iter().filter(|r| self.is_positive(**r)).count();
        (pos, rows.len() - pos)
    }

    /// Gini impurity of a set of `pos` positives and `neg` pool rows, each
    /// class weighted to one in total over the whole fit.
    fn impurity(&self, pos: usize, neg: usize) -> f64 {
        let (a, b) = (pos as f64 * self.weight_pos, neg as f64 * self.weight_neg);
        if a + b > 0.0 {
            2.0 * a * b / (a + b)
        } else {
            0.0
        }
    }

    /// A side can become a cell: enough positives, and pool rows for their draw.
    fn admissible(&self, pos: usize, neg: usize) -> bool {
        pos >= CELL_POSITIVES && neg as f64 * self.pool_scale >= self.per_positive * pos as f64
    }

    fn best_cut(&self, members: &[u32], sorted: &[Vec<u32>]) -> Option<Cut> {
        let (pos, neg) = self.counts(members);
        let whole = self.impurity(pos, neg);
        let mut best: Option<Cut> = None;
        for (column, ids) in sorted.iter().enumerate() {
            let (pos_present, neg_present) = self.counts(ids);
            let missing = self.impurity(pos - pos_present, neg - neg_present);
            let (mut pos_below, mut neg_below) = (0, 0);
            for (k, id) in ids.iter().enumerate() {
                if self.is_positive(*id) {
                    pos_below += 1;
                } else {
                    neg_below += 1;
                }
                // Cut only between two different values.
                let Some(next) = ids.get(k + 1) else { break };
                let (value, next_value) = (
                    self.rows[*id as usize][column],
                    self.rows[*next as usize][column],
                );
                if value == next_value {
                    continue;
                }
                let (pos_above, neg_above) = (pos_present - pos_below, neg_present - neg_below);
                if !self.admissible(pos_below, neg_below) || !self.admissible(pos_above, neg_above)
                {
                    continue;
                }
                let gain = whole
                    - missing
                    - self.impurity(pos_below, neg_below)
                    - self.impurity(pos_above, neg_above);
                // Ties keep the first column and the lowest edge: the tree
                // does not depend on the rows' order.
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Cut {
                        column,
                        edge: value + (next_value - value) / 2.0,
                        gain,
                    });
                }
            }
        }
        best
    }

    fn grow(&self, members: &[u32], sorted: Vec<Vec<u32>>, side: &mut [u8], path: String) -> Node {
        let Some(cut) = self.best_cut(members, &sorted) else {
            return Node::Leaf(path);
        };
        for id in members {
            let v = self.rows[*id as usize][cut.column];
            side[*id as usize] = if v.is_nan() {
                MISSING
            } else if v < cut.edge {
                BELOW
            } else {
                ABOVE
            };
        }
        let part = |wanted: u8, side: &[u8]| -> (Vec<u32>, Vec<Vec<u32>>) {
            let members = members
                .iter()
                .copied()
                .filter(|id| side[*id as usize] == wanted)
                .collect();
            let sorted = sorted
                .iter()
                .map(|ids| {
                    ids.iter()
                        .copied()
                        .filter(|id| side[*id as usize] == wanted)
                        .collect()
                })
                .collect();
            (members, sorted)
        };
        let (below_members, below_sorted) = part(BELOW, side);
        let (above_members, above_sorted) = part(ABOVE, side);
        drop(sorted);
        Node::Split {
            column: cut.column,
            edge: cut.edge,
            missing: format!("{path}n"),
            below: Box::new(self.grow(&below_members, below_sorted, side, format!("{path}0"))),
            above: Box::new(self.grow(&above_members, above_sorted, side, format!("{path}1"))),
        }
    }
}

/// One tree per stratum: the cells refine the strata, so each is grown on
/// its stratum's positives and pool rows alone. Besides the matched columns
/// the tree may cut on the stratum's linear propensity score (a logistic
/// regression of positives against the pool), whose cuts are oblique in
/// the matched columns: a colour is a difference of two magnitudes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    pub trees: Vec<StratumCells>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StratumCells {
    pub stratum: String,
    pub tree: Node,
    pub score: Option<LinearScore>,
    /// The positives of each cell, in the columns the tree cuts on.
    pub points: BTreeMap<String, Vec<Vec<f64>>>,
    /// The pool's standard deviation of each of those columns.
    pub scales: Vec<f64>,
}

/// A matched column as the tree reads it.
fn value_expr(column: &str) -> Expr {
    cast(col(column), DataType::Float64)
}

/// [`LinearScore::value`] on the engine, over the value columns of
/// [`Cells::with_values`].
fn score_expr(score: &LinearScore) -> Expr {
    let mut sum = lit(score.intercept);
    for (k, term) in score.terms.iter().enumerate() {
        if term.weight == 0.0 {
            continue;
        }
        let v = col(value_column(k));
        let v = when(is_missing(v.clone()), lit(term.median))
            .otherwise(v)
            .unwrap_or_else(|_| lit(term.median));
        sum = sum + lit(term.weight) * ((v - lit(term.mean)) / lit(term.std));
    }
    sum
}

/// The column holding matched column `k` as Float64, added by
/// [`Cells::with_values`] so the cells' expressions stay small.
fn value_column(k: usize) -> String {
    format!("match_value_{k}")
}

/// The column holding the row's stratum's propensity score.
const SCORE_COLUMN: &str = "match_score";

impl StratumCells {
    /// The columns the tree cuts on, as added by [`Cells::with_values`].
    fn values(&self, columns: &[String]) -> Vec<Expr> {
        let mut values: Vec<Expr> = (0..columns.len()).map(|k| col(value_column(k))).collect();
        if self.score.is_some() {
            values.push(col(SCORE_COLUMN));
        }
        values
    }

    fn expr(&self, columns: &[String]) -> Expr {
        self.tree.expr(&self.values(columns))
    }

    fn distance_expr(&self, columns: &[String]) -> Expr {
        self.tree
            .distance_expr(&self.values(columns), &self.scales, &self.points)
    }
}

impl Cells {
    /// `df` with the columns the trees cut on: each matched column as
    /// Float64 and the propensity score of the row's stratum (`stratum`).
    /// Computed once per row, they keep the cell and distance expressions
    /// small.
    pub fn with_values(
        &self,
        df: DataFrame,
        stratum: Expr,
        columns: &[String],
    ) -> Result<DataFrame> {
        let mut df = df;
        for (k, c) in columns.iter().enumerate() {
            df = df.with_column(&value_column(k), value_expr(c))?;
        }
        // A stratum without a score (a single class) has a tree that never cuts on it.
        let score = self.case(
            stratum,
            |t| t.score.as_ref().map_or(lit(0.0), score_expr),
            lit(0.0),
        );
        Ok(df.with_column(SCORE_COLUMN, score)?)
    }

    /// Leaves over all strata.
    pub fn count(&self) -> usize {
        self.trees.iter().map(|t| t.tree.leaf_count()).sum()
    }

    /// `per_stratum(t)` for the rows of each tree's stratum, `otherwise` for the rest.
    fn case(
        &self,
        stratum: Expr,
        per_stratum: impl Fn(&StratumCells) -> Expr,
        otherwise: Expr,
    ) -> Expr {
        let mut trees = self.trees.iter();
        let Some(first) = trees.next() else {
            return otherwise;
        };
        let mut case = when(
            stratum.clone().eq(lit(first.stratum.clone())),
            per_stratum(first),
        );
        for t in trees {
            case = case.when(stratum.clone().eq(lit(t.stratum.clone())), per_stratum(t));
        }
        case.otherwise(otherwise.clone()).unwrap_or(otherwise)
    }

    /// The cell label of a row (its stratum in `stratum`) as an engine
    /// expression. A stratum without positives draws nothing: one cell is
    /// enough there.
    pub fn expr(&self, stratum: Expr, columns: &[String]) -> Expr {
        self.case(stratum, |t| t.expr(columns), lit("m"))
    }

    /// The distance the draw orders each cell's negatives by (see
    /// [`Node::distance_expr`]); 0 in strata without positives.
    pub fn distance_expr(&self, stratum: Expr, columns: &[String]) -> Expr {
        self.case(stratum, |t| t.distance_expr(columns), lit(0.0))
    }
}

/// Standard deviation of each column over the rows (NaN left out); 1 where
/// it is zero or undefined.
fn spreads(rows: &[Vec<f64>], columns: usize) -> Vec<f64> {
    (0..columns)
        .map(|c| {
            let values: Vec<f64> = rows
                .iter()
                .map(|r| r[c])
                .filter(|v| v.is_finite())
                .collect();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            if sd.is_finite() && sd > 0.0 {
                sd
            } else {
                1.0
            }
        })
        .collect()
}

/// Each row with its propensity score appended.
fn with_score(rows: Vec<Vec<f64>>, score: &LinearScore) -> Vec<Vec<f64>> {
    rows.into_iter()
        .map(|mut r| {
            r.push(score.value(&r));
            r
        })
        .collect()
}

/// The logistic propensity score of positives against pool rows.
fn propensity(positives: &[Vec<f64>], pool: &[Vec<f64>], columns: usize) -> Option<LinearScore> {
    let values: Vec<Vec<f64>> = (0..columns)
        .map(|c| positives.iter().chain(pool).map(|r| r[c]).collect())
        .collect();
    let refs: Vec<&[f64]> = values.iter().map(|v| v.as_slice()).collect();
    let labels: Vec<bool> = (0..positives.len() + pool.len())
        .map(|i| i < positives.len())
        .collect();
    logistic_score(&refs, &labels, &LogisticParams::default())
}

/// Stratum and matched values of a table's rows, NaN for NULL.
async fn matched_values(
    df: DataFrame,
    columns: &[String],
) -> Result<BTreeMap<String, Vec<Vec<f64>>>> {
    let batches = df
        .select(
            std::iter::once(col("stratum"))
                .chain(columns.iter().map(|c| col(c.as_str())))
                .collect::<Vec<_>>(),
        )?
        .collect()
        .await?;
    let mut rows: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for batch in &batches {
        let strata = column_strings(batch, "stratum")?;
        let cols: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| column_f64(batch, c))
            .collect::<Result<_>>()?;
        for (i, stratum) in strata.into_iter().enumerate() {
            rows.entry(stratum.unwrap_or_default())
                .or_default()
                .push(cols.iter().map(|c| c[i]).collect());
        }
    }
    Ok(rows)
}

/// Reads the positives and a stable hash subsample of at most about
/// `BALANCE_ROWS` pool rows (the pool stays on the engine) and grows a tree
/// per stratum. Both tables carry a `stratum` column.
pub async fn cells_of(
    engine: &Engine,
    positives: &DataFrame,
    negatives: &DataFrame,
    columns: &[String],
    seed: i64,
    negatives_per_positive: f64,
) -> Result<Cells> {
    let mut pool_sizes: BTreeMap<String, u64> = BTreeMap::new();
    for batch in negatives
        .clone()
        .aggregate(vec![col("stratum")], vec![count(lit(1)).alias("n")])?
        .collect()
        .await?
    {
        for (s, n) in column_strings(&batch, "stratum")?
            .into_iter()
            .zip(column_i64(&batch, "n")?)
        {
            pool_sizes.insert(s.unwrap_or_default(), n.unwrap_or(0) as u64);
        }
    }
    let hash = engine.ctx.udf("stable_hash_unit")?;
    let fraction = fraction(pool_sizes.values().sum());
    let subsample = negatives.clone().filter(
        hash.call(vec![col("galaxy_id"), lit(seed + 2)])
            .lt(lit(fraction)),
    )?;
    let mut pool = matched_values(subsample, columns).await?;
    let mut trees = Vec::new();
    for (stratum, positives) in matched_values(positives.clone(), columns).await? {
        let pool = pool.remove(&stratum).unwrap_or_default();
        let size = pool_sizes.get(&stratum).copied().unwrap_or(0);
        let score = propensity(&positives, &pool, columns.len());
        let (positives, pool, cut_columns) = match &score {
            Some(score) => (
                with_score(positives, score),
                with_score(pool, score),
                columns.len() + 1,
            ),
            None => (positives, pool, columns.len()),
        };
        let scales = spreads(&pool, cut_columns);
        let fit = FitRows {
            pool_scale: size as f64 / pool.len().max(1) as f64,
            positives,
            pool,
            negatives_per_positive,
        };
        let tree = build_tree(&fit, cut_columns);
        let mut points: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for p in fit.positives {
            points
                .entry(tree.cell_of(&p).to_string())
                .or_default()
                .push(p);
        }
        trees.push(StratumCells {
            stratum,
            tree,
            score,
            points,
            scales,
        });
    }
    Ok(Cells { trees })
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
pub fn matched_stratum(stratum: Expr, cells: &Cells, columns: &[String]) -> Expr {
    concat_ws(
        lit("|"),
        vec![stratum.clone(), cells.expr(stratum, columns)],
    )
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

    /// Positives crowd at low values of column 0; column 1 is the same
    /// noise in both classes.
    fn crowded_low() -> FitRows {
        let positives = (0..200)
            .map(|i| vec![(i * 37 % 200) as f64 / 100.0, (i * 13 % 50) as f64])
            .collect();
        let pool = (0..4000)
            .map(|i| vec![(i * 7 % 4000) as f64 / 400.0, (i * 11 % 50) as f64])
            .collect();
        FitRows {
            positives,
            pool,
            pool_scale: 10.0,
            negatives_per_positive: 2.0,
        }
    }

    fn cells(tree: &Node, rows: &[Vec<f64>]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in rows {
            *counts.entry(tree.cell_of(r).to_string()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_tree_cuts_where_the_classes_differ() {
        let fit = crowded_low();
        let tree = build_tree(&fit, 2);
        let Node::Split { column, edge, .. } = &tree else {
            panic!("no cut: {tree:?}")
        };
        assert_eq!(*column, 0);
        assert!(*edge > 1.5 && *edge < 2.5, "first cut at {edge}");
        // Every cell with positives can be filled.
        let pool_cells = cells(&tree, &fit.pool);
        let positive_cells = cells(&tree, &fit.positives);
        for (cell, n) in &positive_cells {
            assert!(*n >= CELL_POSITIVES, "{cell}: {n} positives");
            let pool = pool_cells.get(cell).copied().unwrap_or(0) as f64 * fit.pool_scale;
            assert!(
                pool >= 2.0 * *n as f64,
                "{cell}: {pool} pool rows for {n} positives"
            );
        }
        assert_eq!(positive_cells.values().sum::<usize>(), 200);
    }

    #[test]
    fn the_tree_does_not_depend_on_row_order() {
        let fit = crowded_low();
        let mut reversed = crowded_low();
        reversed.positives.reverse();
        reversed.pool.reverse();
        assert_eq!(build_tree(&fit, 2), build_tree(&reversed, 2));
    }

    #[test]
    fn constant_and_missing_columns_do_not_split() {
        let fit = FitRows {
            positives: (0..50).map(|_| vec![3.0, f64::NAN]).collect(),
            pool: (0..500).map(|_| vec![3.0, f64::NAN]).collect(),
            pool_scale: 1.0,
            negatives_per_positive: 1.0,
        };
        assert_eq!(build_tree(&fit, 2), Node::Leaf("m".into()));
    }

    #[test]
    fn a_cell_keeps_a_pool_row_per_positive() {
        // Positives beyond the pool's range cannot get a cell of their own.
        let fit = FitRows {
            positives: (0..40).map(|i| vec![50.0 + i as f64]).collect(),
            pool: (0..40).map(|i| vec![i as f64]).collect(),
            pool_scale: 1.0,
            negatives_per_positive: 1.0,
        };
        assert_eq!(build_tree(&fit, 1), Node::Leaf("m".into()));
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
