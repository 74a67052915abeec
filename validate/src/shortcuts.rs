//! Assembly of `shortcuts.json`: per-feature AUCs (catalogue and image
//! features), the multivariate model and the split-leakage summary.

use crate::auc::{auc_with_ci, AucError, AucParams};
use crate::multivariate::MultivariateResult;
use crate::report::FeatureAuc;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// A column of the source catalogue (depth, PSF size, extinction, ...).
    Catalog,
    /// A statistic measured on the cutout pixels.
    Image,
}

impl FeatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Catalog => "catalog",
            FeatureKind::Image => "image",
        }
    }
}

/// One entry of `features` in shortcuts.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShortcut {
    pub name: String,
    pub kind: FeatureKind,
    pub auc: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub median_pos: f64,
    pub median_neg: f64,
    pub flagged: bool,
    pub n_pos: usize,
    pub n_neg: usize,
    pub n_nan_dropped: usize,
}

/// AUC entry of one feature from its positive and negative values.
pub fn feature_shortcut(
    name: &str,
    kind: FeatureKind,
    pos: &[f64],
    neg: &[f64],
    params: &AucParams,
) -> Result<FeatureShortcut, AucError> {
    let r = auc_with_ci(pos, neg, params)?;
    Ok(FeatureShortcut {
        name: name.to_string(),
        kind,
        auc: r.auc,
        ci_low: r.ci_low,
        ci_high: r.ci_high,
        median_pos: r.median_pos,
        median_neg: r.median_neg,
        flagged: r.flagged,
        n_pos: r.n_pos,
        n_neg: r.n_neg,
        n_nan_dropped: r.n_nan_dropped,
    })
}

/// Entries for several columns sharing one label vector; features whose
/// values leave a class empty (all NaN) are returned in the error list.
pub fn feature_shortcuts(
    columns: &[(&str, FeatureKind, &[f64])],
    labels: &[bool],
    params: &AucParams,
) -> (Vec<FeatureShortcut>, Vec<(String, AucError)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (name, kind, values) in columns {
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (v, l) in values.iter().zip(labels) {
            if *l {
                pos.push(*v)
            } else {
                neg.push(*v)
            }
        }
        match feature_shortcut(name, *kind, &pos, &neg, params) {
            Ok(f) => ok.push(f),
            Err(e) => failed.push((name.to_string(), e)),
        }
    }
    (ok, failed)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub n_pos: u64,
    pub n_neg: u64,
}

/// Split sizes and leakage: a HEALPix pixel or brick in two splits means
/// neighbouring sky (and shared imaging) crosses the train/test boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitsSummary {
    pub per_split: BTreeMap<String, SplitCounts>,
    pub healpix_shared: bool,
    pub brick_shared: bool,
    /// Up to [`MAX_LISTED`] shared pixels / bricks, for debugging.
    pub shared_healpix: Vec<u64>,
    pub shared_bricks: Vec<String>,
}

pub const MAX_LISTED: usize = 100;

/// One row's split membership.
#[derive(Debug, Clone, Copy)]
pub struct SplitRow<'a> {
    pub split: &'a str,
    pub label: bool,
    pub healpix: u64,
    pub brick: &'a str,
}

impl SplitsSummary {
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = SplitRow<'a>>) -> Self {
        let mut per_split: BTreeMap<String, SplitCounts> = BTreeMap::new();
        let mut pix: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        let mut bricks: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in rows {
            let c = per_split.entry(r.split.to_string()).or_default();
            if r.label {
                c.n_pos += 1
            } else {
                c.n_neg += 1
            }
            pix.entry(r.healpix)
                .or_default()
                .insert(r.split.to_string());
            bricks
                .entry(r.brick.to_string())
                .or_default()
                .insert(r.split.to_string());
        }
        let shared_healpix: Vec<u64> = pix
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .map(|(p, _)| *p)
            .take(MAX_LISTED)
            .collect();
        let shared_bricks: Vec<String> = bricks
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .map(|(b, _)| b.clone())
            .take(MAX_LISTED)
            .collect();
        Self {
            per_split,
            healpix_shared: !shared_healpix.is_empty(),
            brick_shared: !shared_bricks.is_empty(),
            shared_healpix,
            shared_bricks,
        }
    }
}

/// The whole of shortcuts.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortcutsReport {
    pub features: Vec<FeatureShortcut>,
    pub multivariate: Option<MultivariateResult>,
    pub splits: SplitsSummary,
}

impl ShortcutsReport {
    pub fn flagged(&self) -> Vec<&str> {
        self.features
            .iter()
            .filter(|f| f.flagged)
            .map(|f| f.name.as_str())
            .collect()
    }

    pub fn to_json_pretty(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// Rows for the report's AUC chart.
    pub fn feature_aucs(&self) -> Vec<FeatureAuc> {
        self.features
            .iter()
            .map(|f| FeatureAuc {
                name: f.name.clone(),
                kind: f.kind.as_str().to_string(),
                auc: f.auc,
                ci_low: f.ci_low,
                ci_high: f.ci_high,
                flagged: f.flagged,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_detect_shared_sky() {
        let rows = [
            SplitRow {
                split: "train",
                label: true,
                healpix: 1,
                brick: "a",
            },
            SplitRow {
                split: "train",
                label: false,
                healpix: 2,
                brick: "b",
            },
            SplitRow {
                split: "test",
                label: false,
                healpix: 3,
                brick: "b",
            },
        ];
        let s = SplitsSummary::from_rows(rows);
        assert_eq!(s.per_split["train"], SplitCounts { n_pos: 1, n_neg: 1 });
        assert_eq!(s.per_split["test"], SplitCounts { n_pos: 0, n_neg: 1 });
        assert!(!s.healpix_shared && s.brick_shared);
        assert_eq!(s.shared_bricks, vec!["b".to_string()]);
    }

    #[test]
    fn json_shape() {
        let f = feature_shortcut(
            "psfdepth_r",
            FeatureKind::Catalog,
            &[2.0, 3.0],
            &[1.0],
            &AucParams::default(),
        )
        .unwrap();
        let r = ShortcutsReport {
            features: vec![f],
            multivariate: None,
            splits: SplitsSummary::default(),
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json_pretty().unwrap()).unwrap();
        let f0 = &v["features"][0];
        for k in [
            "name",
            "kind",
            "auc",
            "ci_low",
            "ci_high",
            "median_pos",
            "median_neg",
            "flagged",
        ] {
            assert!(f0.get(k).is_some(), "{k}");
        }
        assert_eq!(f0["kind"], "catalog");
        assert!(v.get("multivariate").is_some() && v.get("splits").is_some());
    }
}
