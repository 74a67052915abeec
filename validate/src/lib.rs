//! Validation stage of lenspipe: cutout quality checks, "shortcut"
//! statistics (per-feature AUC with bootstrap intervals, a cross-validated
//! logistic regression), the Legacy Surveys colour mapping and the HTML
//! report: plain slices and structs in, serde structs and files out. And
//! the checks as a shard job that runs where the cutouts are
//! ([`checks_job`]).

// `!(a > b)` is used on purpose where NaN must take the "not greater" branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod auc;
pub mod balance;
pub mod checks;
pub mod checks_job;
pub mod multivariate;
pub mod report;
pub mod rng;
pub mod shortcuts;
pub mod stats;
pub mod synth;

pub use auc::{auc, auc_with_ci, AucParams, AucResult};
pub use checks::{check_cutout, failed_checks, mark_duplicates, Check, Thresholds};
pub use lenspipe_viewer::rgb::{sdss_rgb, RgbParams};
pub use multivariate::{cross_validated_logistic, LogisticParams, MultivariateResult};
pub use report::{write_report, ReportInput};
pub use shortcuts::{FeatureKind, FeatureShortcut, ShortcutsReport, SplitsSummary};
pub use stats::{compute_stats, CutoutStats, StatsComputer, StatsParams};
