//! Several features at once: an L2 logistic regression on standardised
//! features, cross-validated by group (a split or sky region is held out
//! whole, so neighbouring rows cannot leak). The out-of-fold AUC says how
//! well the features *together* separate the classes; the standardised
//! coefficients say which ones the model leans on.

use crate::auc::auc;
use crate::stats::median_f64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogisticParams {
    /// L2 penalty on the (standardised) weights, sklearn's 1/C convention:
    /// loss = sum of log-losses + l2/2 |w|^2 (intercept unpenalised).
    pub l2: f64,
    /// Newton (IRLS) iterations; converges in ~10 on sane data.
    pub max_iter: usize,
    /// Stop when the largest Newton step is below this.
    pub tol: f64,
    /// With more distinct groups than this, groups are hashed into this
    /// many folds.
    pub max_folds: usize,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            l2: 1.0,
            max_iter: 100,
            tol: 1e-8,
            max_folds: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCoef {
    pub name: String,
    /// Weight on the standardised feature (per training standard deviation).
    pub coef: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// Group ids held out in this fold.
    pub groups: Vec<u64>,
    pub n_test: usize,
    pub n_test_pos: usize,
    /// AUC on the held-out rows; None when they hold a single class.
    pub auc: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateResult {
    pub features: Vec<String>,
    pub n_rows: usize,
    /// AUC of the pooled out-of-fold scores; None when a class is missing.
    pub oof_auc: Option<f64>,
    pub folds: Vec<FoldResult>,
    /// Fit on all rows, sorted by |coef| descending.
    pub coefficients: Vec<FeatureCoef>,
    pub intercept: f64,
    /// Features with no spread in the full data (coefficient forced to 0).
    pub constant_features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MvError {
    /// Columns, labels and groups disagree in length, or names and columns.
    LengthMismatch(String),
    /// Fewer than two folds: cannot hold anything out.
    TooFewGroups(usize),
    /// Both classes are needed.
    SingleClass,
}

impl fmt::Display for MvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MvError::LengthMismatch(s) => write!(f, "length mismatch: {s}"),
            MvError::TooFewGroups(n) => write!(f, "{n} group(s); need at least 2"),
            MvError::SingleClass => write!(f, "labels hold a single class"),
        }
    }
}

impl std::error::Error for MvError {}

/// Training-set median imputation and standardisation.
struct Scaler {
    median: Vec<f64>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaler {
    fn fit(columns: &[&[f64]], rows: &[usize]) -> Self {
        let p = columns.len();
        let (mut median, mut mean, mut std) = (vec![0.0; p], vec![0.0; p], vec![0.0; p]);
        for j in 0..p {
            let vals: Vec<f64> = rows
                .iter()
                .map(|&i| columns[j][i])
                .map(|v| if v.is_finite() { v } else { f64::NAN })
                .collect();
            let med = median_f64(&vals).unwrap_or(0.0);
            let n = vals.len().max(1) as f64;
            let m = vals
                .iter()
                .map(|v| if v.is_nan() { med } else { *v })
                .sum::<f64>()
                / n;
            let var = vals
                .iter()
                .map(|v| (if v.is_nan() { med } else { *v }) - m)
                .map(|d| d * d)
                .sum::<f64>()
                / n;
            median[j] = med;
            mean[j] = m;
            std[j] = var.sqrt();
        }
        Self { median, mean, std }
    }

    fn is_constant(&self, j: usize) -> bool {
        !(self.std[j] > 1e-12 * self.mean[j].abs().max(1e-300))
    }

    /// Standardised row with a leading 1 for the intercept.
    fn row(&self, columns: &[&[f64]], i: usize, out: &mut [f64]) {
        out[0] = 1.0;
        for j in 0..columns.len() {
            let v = columns[j][i];
            let v = if v.is_finite() { v } else { self.median[j] };
            out[j + 1] = if self.is_constant(j) {
                0.0
            } else {
                (v - self.mean[j]) / self.std[j]
            };
        }
    }
}

/// Newton/IRLS with backtracking; returns [intercept, w...].
fn fit(
    columns: &[&[f64]],
    y: &[bool],
    rows: &[usize],
    sc: &Scaler,
    p: &LogisticParams,
) -> Vec<f64> {
    let k = columns.len() + 1;
    let mut w = vec![0.0; k];
    let mut x = vec![0.0; k];
    let loss = |w: &[f64], x: &mut [f64]| -> f64 {
        let mut l = 0.0;
        for &i in rows {
            sc.row(columns, i, x);
            let t = dot(w, x);
            // log(1 + e^t) - y t, stably.
            l += softplus(t) - if y[i] { t } else { 0.0 };
        }
        l + 0.5 * p.l2 * w[1..].iter().map(|v| v * v).sum::<f64>()
    };
    let mut cur = loss(&w, &mut x);
    for _ in 0..p.max_iter {
        let mut g = vec![0.0; k];
        let mut h = vec![0.0; k * k];
        for &i in rows {
            sc.row(columns, i, &mut x);
            let mu = sigmoid(dot(&w, &x));
            let r = mu - if y[i] { 1.0 } else { 0.0 };
            let s = (mu * (1.0 - mu)).max(1e-12);
            for a in 0..k {
                g[a] += r * x[a];
                let sa = s * x[a];
                for b in 0..=a {
                    h[a * k + b] += sa * x[b];
                }
            }
        }
        for a in 0..k {
            for b in 0..a {
                h[b * k + a] = h[a * k + b];
            }
        }
        h[0] += 1e-9;
        for a in 1..k {
            g[a] += p.l2 * w[a];
            h[a * k + a] += p.l2 + 1e-9;
        }
        let Some(step) = cholesky_solve(&mut h, &g, k) else {
            break;
        };
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let trial: Vec<f64> = w.iter().zip(&step).map(|(a, d)| a - t * d).collect();
            let l = loss(&trial, &mut x);
            if l <= cur {
                w = trial;
                cur = l;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        let max_step = step.iter().fold(0.0f64, |m, d| m.max((t * d).abs()));
        if !accepted || max_step < p.tol {
            break;
        }
    }
    w
}

/// One standardised input of a [`LinearScore`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTerm {
    /// Weight of `(x - mean) / std`; 0 for a constant column.
    pub weight: f64,
    pub mean: f64,
    pub std: f64,
    /// Stands in for a NaN or infinite value.
    pub median: f64,
}

/// The log-odds of a logistic regression fitted on every row:
/// `intercept + sum weight * (x - mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearScore {
    pub intercept: f64,
    pub terms: Vec<ScoreTerm>,
}

impl LinearScore {
    /// The score of one row (one value per column), in the terms' order.
    pub fn value(&self, row: &[f64]) -> f64 {
        let mut t = self.intercept;
        for (term, v) in self.terms.iter().zip(row) {
            if term.weight != 0.0 {
                let v = if v.is_finite() { *v } else { term.median };
                t += term.weight * ((v - term.mean) / term.std);
            }
        }
        t
    }
}

/// Fits a logistic regression of `labels` on `columns` (all rows, no
/// folds) and returns its linear score. None with a single class.
pub fn logistic_score(
    columns: &[&[f64]],
    labels: &[bool],
    params: &LogisticParams,
) -> Option<LinearScore> {
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 || positives == labels.len() {
        return None;
    }
    let rows: Vec<usize> = (0..labels.len()).collect();
    let sc = Scaler::fit(columns, &rows);
    let w = fit(columns, labels, &rows, &sc, params);
    Some(LinearScore {
        intercept: w[0],
        terms: (0..columns.len())
            .map(|j| ScoreTerm {
                weight: if sc.is_constant(j) { 0.0 } else { w[j + 1] },
                mean: sc.mean[j],
                std: sc.std[j],
                median: sc.median[j],
            })
            .collect(),
    })
}

/// Cross-validated logistic regression. `columns[j][i]` is feature j of row
/// i; NaN/inf are imputed with the training median; `groups[i]` assigns
/// row i to a held-out unit (split id, HEALPix pixel, ...).
pub fn cross_validated_logistic(
    names: &[&str],
    columns: &[&[f64]],
    labels: &[bool],
    groups: &[u64],
    params: &LogisticParams,
) -> Result<MultivariateResult, MvError> {
    let n = labels.len();
    if names.len() != columns.len() {
        return Err(MvError::LengthMismatch(format!(
            "{} names, {} columns",
            names.len(),
            columns.len()
        )));
    }
    if groups.len() != n || columns.iter().any(|c| c.len() != n) {
        return Err(MvError::LengthMismatch(format!("{n} labels")));
    }
    let n_pos = labels.iter().filter(|l| **l).count();
    if n_pos == 0 || n_pos == n {
        return Err(MvError::SingleClass);
    }
    // Fold of every distinct group: its own, or a hash bucket.
    let distinct: Vec<u64> = {
        let mut g = groups.to_vec();
        g.sort_unstable();
        g.dedup();
        g
    };
    let max_folds = params.max_folds.max(2);
    let fold_of_group: BTreeMap<u64, usize> = distinct
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let f = if distinct.len() <= max_folds {
                i
            } else {
                (crate::rng::SplitMix64::new(*g).next_u64() % max_folds as u64) as usize
            };
            (*g, f)
        })
        .collect();
    let n_folds = fold_of_group.values().copied().max().map_or(0, |m| m + 1);
    let mut fold_rows: Vec<Vec<usize>> = vec![Vec::new(); n_folds];
    for (i, g) in groups.iter().enumerate() {
        fold_rows[fold_of_group[g]].push(i);
    }
    let non_empty = fold_rows.iter().filter(|r| !r.is_empty()).count();
    if non_empty < 2 {
        return Err(MvError::TooFewGroups(non_empty));
    }

    let k = columns.len() + 1;
    let mut x = vec![0.0; k];
    let mut oof = vec![f64::NAN; n];
    let mut folds = Vec::new();
    for (f, test) in fold_rows.iter().enumerate() {
        if test.is_empty() {
            continue;
        }
        let train: Vec<usize> = (0..n).filter(|i| fold_of_group[&groups[*i]] != f).collect();
        let sc = Scaler::fit(columns, &train);
        let w = fit(columns, labels, &train, &sc, params);
        let (mut sp, mut sn) = (Vec::new(), Vec::new());
        for &i in test {
            sc.row(columns, i, &mut x);
            let s = dot(&w, &x);
            oof[i] = s;
            if labels[i] {
                sp.push(s)
            } else {
                sn.push(s)
            }
        }
        folds.push(FoldResult {
            groups: fold_of_group
                .iter()
                .filter(|(_, v)| **v == f)
                .map(|(g, _)| *g)
                .collect(),
            n_test: test.len(),
            n_test_pos: sp.len(),
            auc: auc(&sp, &sn),
        });
    }
    let (mut sp, mut sn) = (Vec::new(), Vec::new());
    for (s, l) in oof.iter().zip(labels) {
        if *l {
            sp.push(*s)
        } else {
            sn.push(*s)
        }
    }
    let oof_auc = auc(&sp, &sn);

    let all: Vec<usize> = (0..n).collect();
    let sc = Scaler::fit(columns, &all);
    let w = fit(columns, labels, &all, &sc, params);
    let mut coefficients: Vec<FeatureCoef> = names
        .iter()
        .zip(&w[1..])
        .map(|(n, c)| FeatureCoef {
            name: n.to_string(),
            coef: *c,
        })
        .collect();
    coefficients.sort_by(|a, b| b.coef.abs().total_cmp(&a.coef.abs()));
    let constant_features = (0..columns.len())
        .filter(|j| sc.is_constant(*j))
        .map(|j| names[j].to_string())
        .collect();
    Ok(MultivariateResult {
        features: names.iter().map(|s| s.to_string()).collect(),
        n_rows: n,
        oof_auc,
        folds,
        coefficients,
        intercept: w[0],
        constant_features,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

fn softplus(t: f64) -> f64 {
    t.max(0.0) + (-t.abs()).exp().ln_1p()
}

/// Solves H d = g for symmetric positive-definite H (k x k, overwritten).
fn cholesky_solve(h: &mut [f64], g: &[f64], k: usize) -> Option<Vec<f64>> {
    for j in 0..k {
        let mut d = h[j * k + j];
        for m in 0..j {
            d -= h[j * k + m] * h[j * k + m];
        }
        if !(d > 0.0) {
            return None;
        }
        let d = d.sqrt();
        h[j * k + j] = d;
        for i in j + 1..k {
            let mut s = h[i * k + j];
            for m in 0..j {
                s -= h[i * k + m] * h[j * k + m];
            }
            h[i * k + j] = s / d;
        }
    }
    let mut z = g.to_vec();
    for i in 0..k {
        for m in 0..i {
            z[i] -= h[i * k + m] * z[m];
        }
        z[i] /= h[i * k + i];
    }
    for i in (0..k).rev() {
        for m in i + 1..k {
            z[i] -= h[m * k + i] * z[m];
        }
        z[i] /= h[i * k + i];
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn the_linear_score_ranks_by_the_separating_column_and_imputes_the_median() {
        // Positives are larger in column 0; column 1 is constant.
        let x0: Vec<f64> = (0..200)
            .map(|i| (i % 100) as f64 + if i < 100 { 30.0 } else { 0.0 })
            .collect();
        let x1 = vec![2.0; 200];
        let y: Vec<bool> = (0..200).map(|i| i < 100).collect();
        let score = logistic_score(&[&x0, &x1], &y, &LogisticParams::default()).unwrap();
        assert!(score.terms[0].weight > 0.0);
        assert_eq!(score.terms[1].weight, 0.0);
        assert!(score.value(&[90.0, 2.0]) > score.value(&[10.0, 2.0]));
        let median = score.terms[0].median;
        assert_eq!(score.value(&[f64::NAN, 2.0]), score.value(&[median, 2.0]));
        assert!(logistic_score(&[&x0], &[true; 200], &LogisticParams::default()).is_none());
    }

    #[allow(clippy::type_complexity)]
    fn data(n: usize, signal: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>, Vec<u64>) {
        let mut rng = SplitMix64::new(11);
        let (mut a, mut b, mut c, mut y, mut g) = (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let lab = i % 2 == 0;
            a.push(rng.normal() + if lab { signal } else { 0.0 });
            b.push(if i % 7 == 0 { f64::NAN } else { rng.normal() });
            c.push(3.0);
            y.push(lab);
            g.push((i % 5) as u64);
        }
        (a, b, c, y, g)
    }

    #[test]
    fn finds_the_informative_feature() {
        let (a, b, c, y, g) = data(2000, 1.5);
        let r = cross_validated_logistic(
            &["a", "b", "c"],
            &[&a, &b, &c],
            &y,
            &g,
            &LogisticParams::default(),
        )
        .unwrap();
        assert_eq!(r.folds.len(), 5);
        let oof = r.oof_auc.unwrap();
        assert!(oof > 0.8, "{oof}");
        assert_eq!(r.coefficients[0].name, "a");
        assert!(r.coefficients[0].coef > 1.0);
        assert_eq!(r.constant_features, vec!["c".to_string()]);
        let c_coef = r.coefficients.iter().find(|f| f.name == "c").unwrap();
        assert_eq!(c_coef.coef, 0.0);
    }

    #[test]
    fn no_signal_gives_half_and_errors_are_reported() {
        let (a, b, _, y, g) = data(2000, 0.0);
        let r =
            cross_validated_logistic(&["a", "b"], &[&a, &b], &y, &g, &LogisticParams::default())
                .unwrap();
        assert!((r.oof_auc.unwrap() - 0.5).abs() < 0.06);
        let one = vec![0u64; y.len()];
        assert!(matches!(
            cross_validated_logistic(&["a"], &[&a], &y, &one, &LogisticParams::default()),
            Err(MvError::TooFewGroups(1))
        ));
        assert!(matches!(
            cross_validated_logistic(&["a"], &[&a[1..]], &y, &g, &LogisticParams::default()),
            Err(MvError::LengthMismatch(_))
        ));
    }

    #[test]
    fn separable_data_stays_finite() {
        let a: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let y: Vec<bool> = (0..200).map(|i| i >= 100).collect();
        let g: Vec<u64> = (0..200).map(|i| (i % 4) as u64).collect();
        let r =
            cross_validated_logistic(&["a"], &[&a], &y, &g, &LogisticParams::default()).unwrap();
        assert!(r.coefficients[0].coef.is_finite() && r.coefficients[0].coef > 0.0);
        assert!(r.oof_auc.unwrap() > 0.99);
    }
}
