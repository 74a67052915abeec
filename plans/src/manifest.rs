//! `run.json`: what ran, with which configuration and versions, and what
//! every stage counted. Stages run separately add their section to the same
//! file.
//!
//! The file's schema is the structs below. Every reader goes through
//! [`RunManifest::parse`], so a missing stage or key is an error naming the
//! file and the key, never a silent 0; a file that does not parse is never
//! overwritten.

use std::collections::BTreeMap;
use std::fmt;

use lenspipe_udfs::reasons::RejectReason;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sink::Location;
use crate::stages::positives::PositiveStatus;
use crate::stages::stratify::Quota;
use crate::stages::Stage;

pub const PIPELINE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("LENSPIPE_GIT_COMMIT");

/// Raised when a field of the file changes meaning or a required one is added.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub lenspipe: String,
    pub git_commit: String,
    pub datafusion: String,
    pub ballista: String,
}

pub fn versions() -> Versions {
    Versions {
        lenspipe: PIPELINE_VERSION.into(),
        git_commit: GIT_COMMIT.into(),
        datafusion: datafusion::DATAFUSION_VERSION.into(),
        ballista: ballista_core::BALLISTA_VERSION.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    pub schema_version: u32,
    pub versions: Versions,
    pub profile: String,
    /// The resolved configuration, with provenance.
    pub config: Value,
    pub output: String,
    pub engine: String,
    pub stages: Stages,
    /// Where this was read from, for error messages.
    #[serde(skip)]
    pub source: String,
}

/// One section per stage that has run; a stage not run yet is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negatives: Option<NegativesSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positives: Option<PositivesSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stratify: Option<StratifySection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutouts: Option<CutoutsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<ValidateSection>,
}

impl Stages {
    /// Sets (or replaces) one stage's section.
    pub fn set(&mut self, section: Section) {
        match section {
            Section::Negatives(s) => self.negatives = Some(s),
            Section::Positives(s) => self.positives = Some(s),
            Section::Stratify(s) => self.stratify = Some(s),
            Section::Cutouts(s) => self.cutouts = Some(s),
            Section::Validate(s) => self.validate = Some(s),
        }
    }
}

/// A stage's section, as a stage hands it to [`record_stage`].
#[derive(Debug, Clone)]
pub enum Section {
    Negatives(NegativesSection),
    Positives(PositivesSection),
    Stratify(StratifySection),
    Cutouts(CutoutsSection),
    Validate(ValidateSection),
}

impl Section {
    /// The stage this section belongs to.
    pub fn stage(&self) -> Stage {
        match self {
            Self::Negatives(_) => Stage::Negatives,
            Self::Positives(_) => Stage::Positives,
            Self::Stratify(_) => Stage::Stratify,
            Self::Cutouts(_) => Stage::Cutouts,
            Self::Validate(_) => Stage::Validate,
        }
    }

    /// Parses `stage`'s section of a run.json.
    pub fn from_json(stage: Stage, value: &Value) -> std::result::Result<Self, String> {
        fn typed<T: DeserializeOwned>(v: &Value) -> std::result::Result<T, String> {
            T::deserialize(v).map_err(|e| e.to_string())
        }
        Ok(match stage {
            Stage::Negatives => Self::Negatives(typed(value)?),
            Stage::Positives => Self::Positives(typed(value)?),
            Stage::Stratify => Self::Stratify(typed(value)?),
            Stage::Cutouts => Self::Cutouts(typed(value)?),
            Stage::Validate => Self::Validate(typed(value)?),
        })
    }

    pub fn to_json(&self) -> Result<Value> {
        let value = match self {
            Self::Negatives(s) => serde_json::to_value(s),
            Self::Positives(s) => serde_json::to_value(s),
            Self::Stratify(s) => serde_json::to_value(s),
            Self::Cutouts(s) => serde_json::to_value(s),
            Self::Validate(s) => serde_json::to_value(s),
        };
        value.map_err(|e| Error::Other(format!("run.json section: {e}")))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<f64>,
    pub total: f64,
}

/// Rows per reject reason: every reason present, none unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReasonCounts(pub BTreeMap<RejectReason, u64>);

impl ReasonCounts {
    pub fn get(&self, reason: RejectReason) -> u64 {
        self.0.get(&reason).copied().unwrap_or(0)
    }
}

impl Serialize for ReasonCounts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(RejectReason::ALL.iter().map(|r| (r.as_str(), self.get(*r))))
    }
}

impl<'de> Deserialize<'de> for ReasonCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = BTreeMap::<String, u64>::deserialize(d)?;
        complete_counts(
            raw,
            &RejectReason::ALL,
            RejectReason::parse,
            "reject reason",
        )
        .map(Self)
    }
}

/// Lenses per positives status: every status present, none unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusCounts(pub BTreeMap<PositiveStatus, u64>);

impl StatusCounts {
    pub fn get(&self, status: PositiveStatus) -> u64 {
        self.0.get(&status).copied().unwrap_or(0)
    }
}

impl Serialize for StatusCounts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(
            PositiveStatus::ALL
                .iter()
                .map(|r| (r.as_str(), self.get(*r))),
        )
    }
}

impl<'de> Deserialize<'de> for StatusCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = BTreeMap::<String, u64>::deserialize(d)?;
        complete_counts(raw, &PositiveStatus::ALL, PositiveStatus::parse, "status").map(Self)
    }
}

fn complete_counts<K: Ord + Copy + fmt::Display, E: de::Error>(
    raw: BTreeMap<String, u64>,
    all: &[K],
    parse: fn(&str) -> Option<K>,
    what: &str,
) -> std::result::Result<BTreeMap<K, u64>, E> {
    let mut out = BTreeMap::new();
    for (name, n) in raw {
        let key = parse(&name).ok_or_else(|| E::custom(format!("unknown {what} `{name}`")))?;
        out.insert(key, n);
    }
    if let Some(missing) = all.iter().find(|k| !out.contains_key(k)) {
        return Err(E::custom(format!("missing {what} `{missing}`")));
    }
    Ok(out)
}

/// A reject reason spelled as its string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub RejectReason);

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RejectReason::parse(&s)
            .map(Reason)
            .ok_or_else(|| de::Error::custom(format!("unknown reject reason `{s}`")))
    }
}

/// A lens catalog line that was not used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedLine {
    pub line: usize,
    pub reason: String,
}

impl From<&crate::lenses::RejectedLine> for SkippedLine {
    fn from(r: &crate::lenses::RejectedLine) -> Self {
        Self {
            line: r.line,
            reason: r.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensCatalogCounts {
    pub rows: usize,
    pub used: usize,
    pub rejected_lines: Vec<SkippedLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativesSection {
    pub input_rows: u64,
    pub rejected: ReasonCounts,
    pub funnel_order: Vec<Reason>,
    /// Rows rejected for exposures whose band fell short, e.g. `nobs_g_lt_3`.
    pub insufficient_exposures_by_band: BTreeMap<String, u64>,
    pub kept: u64,
    pub pools: BTreeMap<String, u64>,
    pub n2_categories: BTreeMap<String, u64>,
    pub sweep_files: usize,
    /// Sweep files left out under `scan.on_bad_file: skip`, each with its
    /// error; their rows are in none of the counts.
    #[serde(default)]
    pub skipped_sweep_files: Vec<lenspipe_sweeps::SkippedFile>,
    pub output: String,
    pub output_files: Vec<String>,
    /// Null when the run had no lens catalog.
    pub lens_catalog: Option<LensCatalogCounts>,
    pub timings_s: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedSource {
    pub lens_ids: Vec<i64>,
    pub row_index: i64,
    pub sweep_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositivesSection {
    pub catalog: Option<String>,
    pub catalog_lines: usize,
    pub catalog_rejected_lines: Vec<SkippedLine>,
    pub lenses: usize,
    pub status: StatusCounts,
    pub sources_claimed_by_several_lenses: Vec<SharedSource>,
    pub match_radius_arcsec: f64,
    pub output: String,
    pub output_files: Vec<String>,
    pub timings_s: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct N2Summary {
    pub target_fraction: f64,
    pub target_rows: u64,
    pub achieved_rows: u64,
    pub achieved_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StratumRows {
    pub stratum: String,
    pub pool: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitShare {
    pub rows: u64,
    pub fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leakage {
    pub pixels_in_several_splits: u64,
    pub close_pairs_across_splits: u64,
    pub radius_arcsec: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StratifySection {
    pub positives: u64,
    pub negatives_target: u64,
    pub negatives_drawn: u64,
    pub n2: N2Summary,
    pub shortfall: bool,
    pub empty_nobs_z_bins: Vec<String>,
    pub strata: Vec<Quota>,
    pub negatives_available_outside_positive_strata: Vec<StratumRows>,
    /// Class (`positive`, `negative`), then split (`train`, `val`, `test`).
    pub split_fractions: BTreeMap<String, BTreeMap<String, SplitShare>>,
    pub leakage: Leakage,
    /// Negatives matched to the positives on `sampling.match_on`: cells,
    /// shortfalls, weights and balance before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<crate::stages::matching::MatchingSummary>,
    pub output: String,
    pub output_files: Vec<String>,
    pub timings_s: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoutsSection {
    pub targets: u64,
    pub targets_input: String,
    pub shards: usize,
    pub shards_reused_whole: u64,
    pub rows_kept_from_previous_runs: u64,
    pub rows_made: u64,
    pub attempts: u64,
    pub status: BTreeMap<String, u64>,
    pub source: String,
    pub resampling: String,
    pub size: usize,
    pub bands: String,
    pub pixscale: f64,
    pub output: String,
    /// The committed version's bytes, shards taken over whole included.
    pub bytes_written: u64,
    pub timings_s: Timings,
    pub cutouts_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmeasuredFeature {
    pub feature: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateSection {
    pub input: String,
    pub cutouts: u64,
    pub passed: u64,
    pub failed_checks: BTreeMap<String, u64>,
    pub duplicate_hashes: usize,
    pub statistics_rows: usize,
    pub statistics_fraction: f64,
    pub flagged: Vec<String>,
    pub unmeasured_features: Vec<UnmeasuredFeature>,
    pub multivariate_auc: Option<f64>,
    pub output: String,
    pub timings_s: Timings,
    pub cutouts_per_s: f64,
}

impl RunManifest {
    /// Parses a run.json; `source` names the file in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::Input(format!("{source} is not valid JSON: {e}")))?;
        match value.get("schema_version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(Error::Input(format!(
                    "{source} has schema_version {v}; this lenspipe reads and writes {SCHEMA_VERSION} (use a new output folder)"
                )))
            }
            None => {
                return Err(Error::Input(format!(
                    "{source} has no schema_version (written by an older lenspipe? use a new output folder)"
                )))
            }
        }
        // Each stage is parsed on its own, so an error names its section.
        if let Some(Value::Object(stages)) = value.get("stages") {
            for (name, section) in stages {
                let checked = match Stage::from_name(name) {
                    Some(stage) => Section::from_json(stage, section).map(|_| ()),
                    None => Err(format!("unknown stage `{name}`")),
                };
                checked.map_err(|e| Error::Input(format!("{source}: stages.{name}: {e}")))?;
            }
        }
        let mut run: Self =
            serde_json::from_value(value).map_err(|e| Error::Input(format!("{source}: {e}")))?;
        run.source = source.to_string();
        Ok(run)
    }

    /// Reads `<output>/run.json`, if there is one.
    pub async fn read(output: &Location) -> Result<Option<Self>> {
        let file = output.child("run.json");
        match file.get_bytes().await? {
            Some(bytes) => Self::parse(&bytes, &file.url).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a run.json from a local path.
    pub fn read_path(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The negatives section, or an error naming the file.
    pub fn negatives(&self) -> Result<&NegativesSection> {
        self.stages.negatives.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "{} has no stages.negatives (run `lenspipe run negatives` first)",
                self.source
            ))
        })
    }
}

/// Reads `<output>/run.json` (if any), sets one stage's section and the
/// run-level fields, and writes it back. A file that does not parse is an
/// error: it is left as it is.
pub async fn record_stage(
    output: &Location,
    config: &Config,
    engine: &str,
    section: Section,
) -> Result<RunManifest> {
    let previous = RunManifest::read(output).await?;
    let mut run = RunManifest {
        schema_version: SCHEMA_VERSION,
        versions: versions(),
        profile: config.profile.clone(),
        config: serde_json::to_value(config).map_err(|e| Error::Other(e.to_string()))?,
        output: output.url.clone(),
        engine: engine.to_string(),
        stages: previous.map(|p| p.stages).unwrap_or_default(),
        source: String::new(),
    };
    run.stages.set(section);
    let text = serde_json::to_vec_pretty(&run).map_err(|e| Error::Other(e.to_string()))?;
    output.child("run.json").put_bytes(text).await?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negatives() -> NegativesSection {
        NegativesSection {
            input_rows: 10,
            rejected: ReasonCounts(RejectReason::ALL.iter().map(|r| (*r, 1)).collect()),
            funnel_order: RejectReason::ALL.iter().copied().map(Reason).collect(),
            insufficient_exposures_by_band: BTreeMap::from([("nobs_g_lt_3".into(), 1)]),
            kept: 3,
            pools: BTreeMap::from([("N1".into(), 3)]),
            n2_categories: BTreeMap::new(),
            sweep_files: 1,
            skipped_sweep_files: Vec::new(),
            output: "file:///x/negatives".into(),
            output_files: vec!["part-0.parquet".into()],
            lens_catalog: None,
            timings_s: Timings {
                plan: Some(0.1),
                checks: None,
                total: 1.0,
            },
        }
    }

    fn manifest() -> RunManifest {
        RunManifest {
            schema_version: SCHEMA_VERSION,
            versions: versions(),
            profile: "paper_iv".into(),
            config: serde_json::json!({}),
            output: "file:///x".into(),
            engine: "embedded".into(),
            stages: Stages {
                negatives: Some(negatives()),
                ..Stages::default()
            },
            source: String::new(),
        }
    }

    #[test]
    fn a_manifest_round_trips_with_the_keys_readers_use() {
        let text = serde_json::to_vec(&manifest()).unwrap();
        let back = RunManifest::parse(&text, "run.json").unwrap();
        assert_eq!(back.stages.negatives, Some(negatives()));
        let v: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["stages"]["negatives"]["kept"], 3);
        assert_eq!(v["stages"]["negatives"]["rejected"]["near_known_lens"], 1);
        assert_eq!(
            v["stages"]["negatives"]["funnel_order"][0],
            "invalid_coords"
        );
        assert!(v["stages"]["negatives"]["lens_catalog"].is_null());
        assert!(v["stages"].get("positives").is_none());
    }

    #[test]
    fn a_missing_key_or_stage_is_an_error_naming_file_and_key() {
        let mut v = serde_json::to_value(manifest()).unwrap();
        v["stages"]["negatives"]
            .as_object_mut()
            .unwrap()
            .remove("kept");
        let err = RunManifest::parse(v.to_string().as_bytes(), "out/run.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("out/run.json")
                && err.contains("stages.negatives")
                && err.contains("kept"),
            "{err}"
        );

        let mut v = serde_json::to_value(manifest()).unwrap();
        v["stages"]["negatives"]["rejected"]
            .as_object_mut()
            .unwrap()
            .remove(RejectReason::MagZFaint.as_str());
        let err = RunManifest::parse(v.to_string().as_bytes(), "out/run.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains(RejectReason::MagZFaint.as_str()), "{err}");

        let mut run = manifest();
        run.stages.negatives = None;
        run.source = "out/run.json".into();
        let err = run.negatives().unwrap_err().to_string();
        assert!(
            err.contains("out/run.json") && err.contains("stages.negatives"),
            "{err}"
        );
    }

    #[test]
    fn malformed_or_unversioned_files_are_errors() {
        assert!(RunManifest::parse(b"{not json", "r.json").is_err());
        let mut v = serde_json::to_value(manifest()).unwrap();
        v.as_object_mut().unwrap().remove("schema_version");
        let err = RunManifest::parse(v.to_string().as_bytes(), "r.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema_version"), "{err}");
    }

    #[tokio::test]
    async fn record_stage_leaves_a_malformed_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = datafusion::execution::runtime_env::RuntimeEnv::default();
        let output =
            Location::resolve(&std::sync::Arc::new(runtime), dir.path().to_str().unwrap()).unwrap();
        std::fs::write(dir.path().join("run.json"), b"{broken").unwrap();
        let config = Config::load("paper_iv", &[]).unwrap();
        let err = record_stage(
            &output,
            &config,
            "embedded",
            Section::Negatives(negatives()),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("run.json"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("run.json")).unwrap(),
            b"{broken"
        );

        std::fs::remove_file(dir.path().join("run.json")).unwrap();
        record_stage(
            &output,
            &config,
            "embedded",
            Section::Negatives(negatives()),
        )
        .await
        .unwrap();
        let run = RunManifest::read(&output).await.unwrap().unwrap();
        assert_eq!(run.stages.negatives, Some(negatives()));
    }
}
