//! Mann-Whitney AUC of positives against negatives with a seeded bootstrap
//! interval. "Could a classifier separate the classes on this one feature?"
//! An AUC far from 0.5 on a non-lensing feature is a shortcut.

use crate::rng::SplitMix64;
use crate::stats::median_f64;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AucParams {
    /// Bootstrap resamples (positives and negatives resampled separately).
    pub n_boot: usize,
    pub seed: u64,
    /// Flag when |AUC - 0.5| >= margin (and the interval excludes 0.5).
    pub margin: f64,
    /// Central interval coverage, 0.95 for a 95% percentile interval.
    pub level: f64,
}

impl Default for AucParams {
    fn default() -> Self {
        Self {
            n_boot: 500,
            seed: 0x05EE_DA0C,
            margin: 0.1,
            level: 0.95,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AucResult {
    pub auc: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub median_pos: f64,
    pub median_neg: f64,
    pub n_pos: usize,
    pub n_neg: usize,
    /// NaN values dropped before anything was computed.
    pub n_nan_dropped: usize,
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AucError {
    /// No positive or no negative value left after dropping NaN.
    EmptyClass { n_pos: usize, n_neg: usize },
}

impl fmt::Display for AucError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AucError::EmptyClass { n_pos, n_neg } => {
                write!(f, "need both classes, have {n_pos} pos / {n_neg} neg")
            }
        }
    }
}

impl std::error::Error for AucError {}

/// Values grouped into distinct sorted levels with class counts per level:
/// everything the AUC needs, computed once with one sort.
struct Levels {
    /// Level index of each positive / negative value.
    pos_level: Vec<u32>,
    neg_level: Vec<u32>,
    n_levels: usize,
}

impl Levels {
    fn new(pos: &[f64], neg: &[f64]) -> Self {
        let all: Vec<f64> = pos.iter().chain(neg).copied().collect();
        let mut idx: Vec<u32> = (0..all.len() as u32).collect();
        idx.sort_unstable_by(|a, b| all[*a as usize].total_cmp(&all[*b as usize]));
        let mut level_of = vec![0u32; all.len()];
        let mut level = 0u32;
        for k in 0..idx.len() {
            if k > 0 && all[idx[k] as usize] != all[idx[k - 1] as usize] {
                level += 1;
            }
            level_of[idx[k] as usize] = level;
        }
        let n_levels = if all.is_empty() {
            0
        } else {
            level as usize + 1
        };
        let np = pos.len();
        Self {
            pos_level: level_of[..np].to_vec(),
            neg_level: level_of[np..].to_vec(),
            n_levels,
        }
    }

    /// AUC from per-level counts: P(pos > neg) + 0.5 P(pos == neg), which is
    /// exactly the midrank Mann-Whitney U / (n_pos n_neg).
    fn auc_from_counts(cp: &[u32], cn: &[u32], n_pos: usize, n_neg: usize) -> f64 {
        let mut neg_below = 0u64;
        let mut num = 0.0f64;
        for (p, n) in cp.iter().zip(cn) {
            if *p > 0 {
                num += *p as f64 * (neg_below as f64 + 0.5 * *n as f64);
            }
            neg_below += *n as u64;
        }
        num / (n_pos as f64 * n_neg as f64)
    }
}

/// Exact AUC (midranks for ties), O(n log n); NaN values are dropped.
/// None if a class is empty.
pub fn auc(pos: &[f64], neg: &[f64]) -> Option<f64> {
    let pos: Vec<f64> = pos.iter().copied().filter(|v| !v.is_nan()).collect();
    let neg: Vec<f64> = neg.iter().copied().filter(|v| !v.is_nan()).collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let lv = Levels::new(&pos, &neg);
    let (cp, cn) = counts(&lv, lv.pos_level.iter(), lv.neg_level.iter());
    Some(Levels::auc_from_counts(&cp, &cn, pos.len(), neg.len()))
}

fn counts<'a>(
    lv: &Levels,
    pos: impl Iterator<Item = &'a u32>,
    neg: impl Iterator<Item = &'a u32>,
) -> (Vec<u32>, Vec<u32>) {
    let mut cp = vec![0u32; lv.n_levels];
    let mut cn = vec![0u32; lv.n_levels];
    for l in pos {
        cp[*l as usize] += 1;
    }
    for l in neg {
        cn[*l as usize] += 1;
    }
    (cp, cn)
}

/// AUC, bootstrap percentile interval, class medians and the flag.
///
/// The bootstrap never re-sorts: each resample draws level indices and
/// recomputes the AUC from level counts in O(n + levels), so 500 resamples
/// of 100k values take well under a second.
pub fn auc_with_ci(pos: &[f64], neg: &[f64], params: &AucParams) -> Result<AucResult, AucError> {
    let n_nan = pos.iter().chain(neg).filter(|v| v.is_nan()).count();
    let pos: Vec<f64> = pos.iter().copied().filter(|v| !v.is_nan()).collect();
    let neg: Vec<f64> = neg.iter().copied().filter(|v| !v.is_nan()).collect();
    let (n_pos, n_neg) = (pos.len(), neg.len());
    if n_pos == 0 || n_neg == 0 {
        return Err(AucError::EmptyClass { n_pos, n_neg });
    }
    let lv = Levels::new(&pos, &neg);
    let (mut cp, mut cn) = counts(&lv, lv.pos_level.iter(), lv.neg_level.iter());
    let auc = Levels::auc_from_counts(&cp, &cn, n_pos, n_neg);

    let mut rng = SplitMix64::new(params.seed);
    let mut boot = Vec::with_capacity(params.n_boot);
    for _ in 0..params.n_boot {
        cp.fill(0);
        cn.fill(0);
        for _ in 0..n_pos {
            cp[lv.pos_level[rng.below(n_pos)] as usize] += 1;
        }
        for _ in 0..n_neg {
            cn[lv.neg_level[rng.below(n_neg)] as usize] += 1;
        }
        boot.push(Levels::auc_from_counts(&cp, &cn, n_pos, n_neg));
    }
    boot.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - params.level.clamp(0.0, 1.0)) / 2.0;
    let (ci_low, ci_high) = if boot.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (
            quantile_sorted(&boot, alpha),
            quantile_sorted(&boot, 1.0 - alpha),
        )
    };
    let excludes_half = ci_low > 0.5 || ci_high < 0.5;
    Ok(AucResult {
        auc,
        ci_low,
        ci_high,
        median_pos: median_f64(&pos).unwrap_or(f64::NAN),
        median_neg: median_f64(&neg).unwrap_or(f64::NAN),
        n_pos,
        n_neg,
        n_nan_dropped: n_nan,
        flagged: (auc - 0.5).abs() >= params.margin && excludes_half,
    })
}

/// Linear-interpolated quantile of sorted values (numpy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// O(n^2) reference: P(p > n) + 0.5 P(p == n).
    fn brute(pos: &[f64], neg: &[f64]) -> f64 {
        let mut s = 0.0;
        for p in pos {
            for n in neg {
                s += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (pos.len() * neg.len()) as f64
    }

    #[test]
    fn matches_brute_force_with_ties() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..20 {
            let pos: Vec<f64> = (0..rng.below(50) + 1)
                .map(|_| rng.below(7) as f64)
                .collect();
            let neg: Vec<f64> = (0..rng.below(50) + 1)
                .map(|_| rng.below(5) as f64)
                .collect();
            let a = auc(&pos, &neg).unwrap();
            assert!((a - brute(&pos, &neg)).abs() < 1e-12);
        }
        assert_eq!(auc(&[1.0], &[0.0]), Some(1.0));
        assert_eq!(auc(&[0.0], &[1.0]), Some(0.0));
        assert_eq!(auc(&[1.0, f64::NAN], &[1.0]), Some(0.5));
        assert_eq!(auc(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn ci_flags_separated_and_not_identical() {
        let p = AucParams::default();
        let pos: Vec<f64> = (0..300).map(|i| i as f64 + 100.0).collect();
        let neg: Vec<f64> = (0..300).map(|i| i as f64).collect();
        let r = auc_with_ci(&pos, &neg, &p).unwrap();
        assert!(r.flagged && r.ci_low > 0.5 && r.ci_low <= r.auc && r.auc <= r.ci_high);
        let r = auc_with_ci(&neg, &neg, &p).unwrap();
        assert_eq!(r.auc, 0.5);
        assert!(!r.flagged);
        let r = auc_with_ci(&[1.0, f64::NAN], &[f64::NAN, 0.0, 2.0], &p).unwrap();
        assert_eq!(r.n_nan_dropped, 2);
        assert_eq!((r.n_pos, r.n_neg), (1, 2));
        assert!(auc_with_ci(&[], &[1.0], &p).is_err());
    }

    #[test]
    fn bootstrap_of_100k_equal_samples_is_not_flagged() {
        let mut rng = SplitMix64::new(1);
        let pos: Vec<f64> = (0..50_000).map(|_| rng.normal()).collect();
        let neg: Vec<f64> = (0..50_000).map(|_| rng.normal()).collect();
        let r = auc_with_ci(
            &pos,
            &neg,
            &AucParams {
                n_boot: 200,
                ..Default::default()
            },
        )
        .unwrap();
        // Its speed is measured in bench/validate.sh, not here.
        assert!(!r.flagged, "{r:?}");
    }
}
