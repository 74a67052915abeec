//! The typed run configuration, loaded from YAML with every science
//! parameter carrying its provenance.
//!
//! Unknown keys are refused, so a misspelt parameter can never silently fall
//! back to a default. `--set dotted.key=value` overrides edit the YAML tree
//! before it is typed; an overridden parameter's provenance becomes
//! `command_line_override`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::error::{Error, Result};

/// Where a parameter value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Stated in the Paper IV abstract (arXiv:2508.20087).
    PaperIvAbstract,
    /// Attributed to Paper IV by the original v1 pipeline; not checked against the full text.
    RequestQuotesPaperIv,
    /// Legacy Surveys documentation (catalog format, bit definitions).
    LegacySurveysDocs,
    /// The original v1 pipeline's own value, with no source in the paper given.
    RequestV1,
    /// Chosen by this project, unverified against the paper.
    ProjectChoice,
    /// Changed on the command line for this run.
    CommandLineOverride,
}

impl Provenance {
    pub fn label(self) -> &'static str {
        match self {
            Self::PaperIvAbstract => "Paper IV abstract",
            Self::RequestQuotesPaperIv => "request quotes Paper IV",
            Self::LegacySurveysDocs => "Legacy Surveys docs",
            Self::RequestV1 => "request v1 value",
            Self::ProjectChoice => "project choice, unverified against the paper",
            Self::CommandLineOverride => "command-line override",
        }
    }
}

/// A science parameter: its value and where that value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param<T> {
    pub value: T,
    pub provenance: Provenance,
    /// Free text: a quotation, a document section, a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the profile, reported in run.json.
    pub profile: String,
    pub inputs: Inputs,
    /// URL under which every stage writes (`file://`, `s3://` or a path).
    pub output: String,
    #[serde(default)]
    pub scan: Scan,
    #[serde(default)]
    pub engine: EngineSettings,
    pub selection: Selection,
    pub n2: N2,
    pub bins: Bins,
    pub positives: Positives,
    pub exclusion: Exclusion,
    pub sampling: Sampling,
    pub split: Split,
    pub cutouts: Cutouts,
    pub validation: Validation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// Sweep FITS files: directory, prefix or glob, `file://`, `s3://` or a path.
    pub sweeps: String,
    /// Known-lens catalog CSV.
    #[serde(default)]
    pub positives: Option<String>,
    /// Targets of the cutout stage: Parquet with `galaxy_id`, `ra`, `dec`
    /// (and `brickname`). Default: the stratified sample, `<output>/sample/`.
    #[serde(default)]
    pub cutout_targets: Option<String>,
    /// DR10 coadd root for `cutouts.source: bricks` (holding `coadd/` and
    /// `survey-bricks.fits.gz`).
    #[serde(default)]
    pub coadds: Option<String>,
    /// Cutouts to validate: Parquet with `galaxy_id`, `label`, `image`.
    /// Default: the cutout stage's output, `<output>/cutouts/`.
    #[serde(default)]
    pub validate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub target_partition_mib: u64,
    pub batch_rows: usize,
    /// A sweep file that cannot be read: `fail` the run (default) or
    /// `skip` it, listing it with its error in run.json.
    #[serde(default)]
    pub on_bad_file: lenspipe_sweeps::OnBadFile,
}

impl Default for Scan {
    fn default() -> Self {
        Self {
            target_partition_mib: 64,
            batch_rows: 8192,
            on_bad_file: lenspipe_sweeps::OnBadFile::Fail,
        }
    }
}

/// How the in-process engine runs (cluster executors take their own
/// `--memory-pool-size`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Memory the engine's operators may reserve (MiB); above it they spill
    /// to disk or the job fails with an error. Null: no limit.
    #[serde(default)]
    pub memory_limit_mib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands<T> {
    pub g: T,
    pub r: T,
    pub z: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Strict: dec > dec_min.
    pub dec_min: Param<f64>,
    /// Strict: dec < dec_max.
    pub dec_max: Param<f64>,
    pub types: Param<Vec<String>>,
    pub exclude_maskbits: Param<Vec<u32>>,
    pub min_nobs: Param<Bands<i64>>,
    /// Strict: mag_z < z_mag_max.
    pub z_mag_max: Param<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct N2 {
    pub ring_proxy: Param<RingProxy>,
    pub edge_on_proxy: Param<EdgeOnProxy>,
    pub blue_clumpy: Param<BlueClumpy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingProxy {
    pub types: Vec<String>,
    /// Nanomaggies; 10 nmgy is r = 20.0 mag.
    pub flux_r_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeOnProxy {
    pub types: Vec<String>,
    /// Arcsec.
    pub shape_r_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueClumpy {
    pub g_minus_r_max: f64,
    pub r_mag_max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// Inclusive `[lo, hi]` ranges; `hi: null` is open-ended.
    pub nobs_z: Param<Vec<(i64, Option<i64>)>>,
}

impl Bins {
    /// The bin list as the `nobs_bin` UDF takes it: `1-2,3-5,6-10,11+`.
    pub fn nobs_z_spec(&self) -> String {
        self.nobs_z
            .value
            .iter()
            .map(|(lo, hi)| match hi {
                Some(hi) => format!("{lo}-{hi}"),
                None => format!("{lo}+"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogColumns {
    pub name: String,
    pub ra: String,
    pub dec: String,
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub zlens: Option<String>,
    #[serde(default)]
    pub lens_type: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Positives {
    pub columns: CatalogColumns,
    pub match_radius_arcsec: Param<f64>,
    pub apply_selection: Param<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub radius_arcsec: Param<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub negatives_per_positive: Param<f64>,
    pub n2_fraction: Param<f64>,
    pub seed: Param<i64>,
    /// Extra strata beyond nobs_z_bin x type_bin: a column and its bin edges.
    #[serde(default)]
    pub extra_strata: Vec<ExtraStratum>,
    /// Numeric sample columns the negatives are matched on, inside each
    /// stratum (docs/matching.md); empty: strata alone, as before.
    #[serde(default = "no_matching")]
    pub match_on: Param<Vec<String>>,
    /// Weight per grade of the positives; unlisted grades weigh 1.0.
    pub grade_weights: Param<BTreeMap<String, f64>>,
}

fn no_matching() -> Param<Vec<String>> {
    Param {
        value: Vec::new(),
        provenance: Provenance::ProjectChoice,
        note: None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraStratum {
    pub column: String,
    pub edges: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub nside: Param<u32>,
    pub fractions: Param<SplitFractions>,
    pub seed: Param<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

/// Where cutout pixels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoutSource {
    /// The Legacy Surveys viewer's `fits-cutout` API at `cutouts.viewer_url`.
    Viewer,
    /// Coadd bricks under `inputs.coadds`.
    Bricks,
}

/// The cutout stage: the image grid (science parameters, with provenance)
/// and how politely the viewer is asked (operational settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutouts {
    pub source: Param<CutoutSource>,
    pub viewer_url: Param<String>,
    pub layer: Param<String>,
    /// Pixels on a side.
    pub size: Param<usize>,
    /// Arcsec per pixel.
    pub pixscale: Param<f64>,
    /// Band letters in plane order.
    pub bands: Param<String>,
    /// `lanczos3` or `native`; bricks only (the viewer always resamples with Lanczos-3).
    pub resampling: Param<lenspipe_cutouts::Resampling>,
    /// `[image]`, or `[image, invvar]` for the inverse variance on the same grid.
    pub planes: Param<Vec<lenspipe_cutouts::Plane>>,
    /// Viewer requests in flight at most, per process.
    pub concurrency: usize,
    /// Viewer requests per second on average, per process.
    pub rate_per_s: f64,
    pub timeout_s: f64,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Targets per shard on average (a brick's targets share a shard): the
    /// unit of writing, resuming and cluster tasks.
    pub shard_rows: usize,
}

/// The validation stage: per-cutout check thresholds and shortcut detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// `no_coverage` beyond this fraction of exactly-zero pixels in a band.
    pub max_zero_fraction: Param<f64>,
    /// `saturated_or_bright` beyond this peak pixel (nanomaggies).
    pub max_peak_nmgy: Param<f64>,
    /// `saturated_or_bright` beyond this central aperture flux (nanomaggies).
    pub max_aperture_flux_nmgy: Param<f64>,
    /// `off_centre` beyond this distance of the brightest compact source (pixels).
    pub max_centroid_offset_px: Param<f64>,
    /// Central aperture radius (pixels).
    pub aperture_radius_px: Param<f64>,
    /// Background annulus, inner and outer radius (pixels).
    pub background_annulus_px: Param<(f64, f64)>,
    /// A feature is flagged when |AUC - 0.5| reaches this and its interval excludes 0.5.
    pub shortcut_auc_margin: Param<f64>,
    /// Bootstrap resamples for the AUC intervals.
    pub bootstrap_resamples: usize,
    /// Rows the shortcut statistics use at most (a stable-hash subsample above it).
    pub max_rows_for_statistics: u64,
    /// Seed of the subsample, the bootstrap and the gallery draw.
    pub seed: i64,
    /// Cutouts per group in the report's gallery.
    pub gallery_per_group: usize,
}

/// Profiles shipped with the binary, so `--config paper_iv` works anywhere.
pub const BUILTIN_PROFILES: [(&str, &str); 3] = [
    ("paper_iv", include_str!("../../configs/paper_iv.yaml")),
    (
        "paper_iv_matched",
        include_str!("../../configs/paper_iv_matched.yaml"),
    ),
    ("request_v1", include_str!("../../configs/request_v1.yaml")),
];

impl Config {
    /// Loads a profile by built-in name or file path, then applies overrides.
    pub fn load(profile_or_path: &str, overrides: &[String]) -> Result<Self> {
        let text = match BUILTIN_PROFILES
            .iter()
            .find(|(name, _)| *name == profile_or_path)
        {
            Some((_, text)) => text.to_string(),
            None => std::fs::read_to_string(Path::new(profile_or_path)).map_err(|e| {
                Error::Config(format!("cannot read config '{profile_or_path}': {e}"))
            })?,
        };
        Self::from_yaml(&text, profile_or_path, overrides)
    }

    pub fn from_yaml(text: &str, source: &str, overrides: &[String]) -> Result<Self> {
        let mut tree: Value =
            serde_yaml::from_str(text).map_err(|e| Error::Config(format!("{source}: {e}")))?;
        for item in overrides {
            apply_override(&mut tree, item)?;
        }
        let config: Config =
            serde_yaml::from_value(tree).map_err(|e| Error::Config(format!("{source}: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that no value can change the meaning of a plan or is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        let type_ok =
            |t: &String| !t.is_empty() && t.len() <= 4 && t.chars().all(|c| c.is_ascii_uppercase());
        for (key, types) in [
            ("selection.types", &self.selection.types.value),
            ("n2.ring_proxy.types", &self.n2.ring_proxy.value.types),
            ("n2.edge_on_proxy.types", &self.n2.edge_on_proxy.value.types),
        ] {
            if let Some(t) = types.iter().find(|t| !type_ok(t)) {
                return bad(&format!(
                    "{key}: '{t}' is not a Tractor TYPE (1 to 4 upper-case letters, e.g. REX)"
                ));
            }
        }
        if let Some(b) = self
            .selection
            .exclude_maskbits
            .value
            .iter()
            .find(|b| **b > 62)
        {
            return bad(&format!(
                "selection.exclude_maskbits: bit {b} is out of range 0..=62"
            ));
        }
        if !(self.selection.dec_min.value < self.selection.dec_max.value) {
            return bad("selection.dec_min must be below selection.dec_max");
        }
        for (key, v) in [
            (
                "positives.match_radius_arcsec",
                self.positives.match_radius_arcsec.value,
            ),
            (
                "exclusion.radius_arcsec",
                self.exclusion.radius_arcsec.value,
            ),
        ] {
            if !(v > 0.0 && v <= 3600.0) {
                return bad(&format!("{key}: {v} is not in (0, 3600] arcsec"));
            }
        }
        let nside = self.split.nside.value;
        if !nside.is_power_of_two() || nside > (1 << 29) {
            return bad(&format!(
                "split.nside: {nside} is not a power of two up to 2^29"
            ));
        }
        let f = &self.split.fractions.value;
        if [f.train, f.val, f.test]
            .iter()
            .any(|x| !(0.0..=1.0).contains(x))
            || (f.train + f.val + f.test - 1.0).abs() > 1e-9
        {
            return bad("split.fractions must be in [0, 1] and add up to 1");
        }
        let n2 = self.sampling.n2_fraction.value;
        if !(0.0..=1.0).contains(&n2) {
            return bad("sampling.n2_fraction must be in [0, 1]");
        }
        if !(self.sampling.negatives_per_positive.value > 0.0) {
            return bad("sampling.negatives_per_positive must be positive");
        }
        let mut last_hi = i64::MIN;
        for (lo, hi) in &self.bins.nobs_z.value {
            if *lo <= last_hi || hi.is_some_and(|h| h < *lo) {
                return bad("bins.nobs_z: bins must be ordered and not overlap");
            }
            last_hi = hi.unwrap_or(i64::MAX);
        }
        for s in &self.sampling.extra_strata {
            let ok_name = !s.column.is_empty()
                && s.column
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok_name {
                return bad(&format!(
                    "sampling.extra_strata: '{}' is not a column name",
                    s.column
                ));
            }
            if s.edges.windows(2).any(|w| !(w[0] < w[1])) || s.edges.iter().any(|e| !e.is_finite())
            {
                return bad(&format!(
                    "sampling.extra_strata.{}: edges must increase",
                    s.column
                ));
            }
        }
        for (i, column) in self.sampling.match_on.value.iter().enumerate() {
            let ok_name = !column.is_empty()
                && column
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok_name {
                return bad(&format!(
                    "sampling.match_on: '{column}' is not a column name"
                ));
            }
            if self.sampling.match_on.value[..i].contains(column) {
                return bad(&format!("sampling.match_on: '{column}' is listed twice"));
            }
        }
        let c = &self.cutouts;
        if c.shard_rows == 0 {
            return bad("cutouts.shard_rows must be at least 1");
        }
        if c.source.value == CutoutSource::Bricks && self.inputs.coadds.is_none() {
            return bad("cutouts.source is bricks but inputs.coadds is not set");
        }
        if !(c.viewer_url.value.starts_with("http://")
            || c.viewer_url.value.starts_with("https://"))
        {
            return bad(&format!(
                "cutouts.viewer_url: '{}' is not an http(s) URL",
                c.viewer_url.value
            ));
        }
        self.cutout_spec("file:///")?
            .validate()
            .map_err(Error::Config)?;
        Ok(())
    }

    /// The cutout stage's plan parameters, writing under `output_url`.
    pub fn cutout_spec(&self, output_url: &str) -> Result<lenspipe_cutouts::CutoutSpec> {
        use lenspipe_cutouts::{CutoutSpec, SourceSpec, ViewerSpec};
        let c = &self.cutouts;
        let source = match c.source.value {
            CutoutSource::Viewer => SourceSpec::Viewer(ViewerSpec {
                url: c.viewer_url.value.clone(),
                layer: c.layer.value.clone(),
                concurrency: c.concurrency,
                rate_per_s: c.rate_per_s,
                timeout_s: c.timeout_s,
                max_retries: c.max_retries,
                backoff_base_ms: c.backoff_base_ms,
                backoff_max_ms: c.backoff_max_ms,
            }),
            CutoutSource::Bricks => SourceSpec::Bricks {
                coadds_url: match &self.inputs.coadds {
                    Some(root) => crate::sink::to_url(root)?.to_string(),
                    None => String::new(),
                },
                resampling: c.resampling.value,
            },
        };
        Ok(CutoutSpec {
            output_url: output_url.to_string(),
            resume_from: Vec::new(),
            source,
            size: c.size.value,
            pixscale: c.pixscale.value,
            bands: c.bands.value.clone(),
            planes: c.planes.value.clone(),
        })
    }

    /// The OR of `1 << bit` over the excluded mask bits.
    pub fn exclude_mask(&self) -> i64 {
        self.selection
            .exclude_maskbits
            .value
            .iter()
            .fold(0i64, |m, b| m | (1i64 << b))
    }
}

/// Applies one `dotted.key=value` override to the YAML tree.
fn apply_override(tree: &mut Value, item: &str) -> Result<()> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--set '{item}': expected dotted.key=value")))?;
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| Error::Config(format!("--set '{item}': value is not YAML: {e}")))?;
    let mut node = tree;
    for part in key.split('.') {
        let map = node.as_mapping_mut().ok_or_else(|| {
            Error::Config(format!("--set '{item}': '{part}' is not inside a section"))
        })?;
        node = map.get_mut(part).ok_or_else(|| {
            Error::Config(format!(
                "--set '{item}': no key '{part}' in the configuration"
            ))
        })?;
    }
    let is_param = node
        .as_mapping()
        .is_some_and(|m| m.contains_key("value") && m.contains_key("provenance"));
    if is_param {
        let map = node.as_mapping_mut().expect("checked above");
        map.insert("value".into(), value);
        map.insert("provenance".into(), "command_line_override".into());
        map.insert("note".into(), format!("--set {item}").into());
    } else {
        *node = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper_iv(overrides: &[&str]) -> Result<Config> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::load("paper_iv", &o)
    }

    #[test]
    fn builtin_profiles_load_and_differ_where_documented() {
        let p = paper_iv(&[]).unwrap();
        let r = Config::load("request_v1", &[]).unwrap();
        assert_eq!(p.selection.z_mag_max.value, 20.0);
        assert_eq!(
            p.selection.z_mag_max.provenance,
            Provenance::PaperIvAbstract
        );
        assert_eq!(r.selection.z_mag_max.value, 21.0);
        assert_eq!(
            p.exclude_mask(),
            (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 11) | (1 << 12) | (1 << 13)
        );
        assert_eq!(p.bins.nobs_z_spec(), "3-5,6-10,11+");
        assert_eq!(r.bins.nobs_z_spec(), "1-2,3-5,6-10,11+");
    }

    #[test]
    fn overrides_are_typed_and_marked() {
        let c = paper_iv(&["selection.z_mag_max=19.5", "inputs.sweeps=s3://b/p/"]).unwrap();
        assert_eq!(c.selection.z_mag_max.value, 19.5);
        assert_eq!(
            c.selection.z_mag_max.provenance,
            Provenance::CommandLineOverride
        );
        assert_eq!(c.inputs.sweeps, "s3://b/p/");
        let err = paper_iv(&["selection.z_mag_max=faint"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("z_mag_max") || err.contains("invalid type"),
            "{err}"
        );
        let err = paper_iv(&["selection.no_such_key=1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_key"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = include_str!("../../configs/paper_iv.yaml").replace(
            "\nselection:\n",
            "\nselection:\n  z_mag_maxx: {value: 1, provenance: project_choice}\n",
        );
        let err = Config::from_yaml(&text, "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("z_mag_maxx"), "{err}");
    }

    #[test]
    fn sql_in_values_is_rejected() {
        let err = paper_iv(&["selection.types=[\"REX') OR 1=1 --\"]"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("selection.types") && err.contains("not a Tractor TYPE"),
            "{err}"
        );
        let err =
            paper_iv(&["sampling.extra_strata=[{column: 'mag_z; DROP TABLE x', edges: [1, 2]}]"])
                .unwrap_err()
                .to_string();
        assert!(err.contains("not a column name"), "{err}");
    }
}
