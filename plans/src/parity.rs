//! `lenspipe parity`: every selection parameter beside its value in the
//! `request_v1` profile, its provenance, and what it removed in a run.

use lenspipe_udfs::reasons::RejectReason;

use crate::config::{Config, Param, Provenance};
use crate::error::Result;
use crate::manifest::RunManifest;

/// One row of the parity table.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityRow {
    pub key: &'static str,
    pub ours: String,
    pub request_v1: String,
    pub provenance: Provenance,
    /// The funnel reason this parameter drives, if any.
    pub reason: Option<RejectReason>,
}

fn show<T: serde::Serialize>(p: &Param<T>) -> String {
    serde_json::to_string(&p.value).unwrap_or_default()
}

pub fn rows(ours: &Config, request: &Config) -> Vec<ParityRow> {
    macro_rules! row {
        ($key:literal, $($field:ident).+, $reason:expr) => {
            ParityRow {
                key: $key,
                ours: show(&ours.$($field).+),
                request_v1: show(&request.$($field).+),
                provenance: ours.$($field).+.provenance,
                reason: $reason,
            }
        };
    }
    vec![
        row!(
            "selection.dec_min",
            selection.dec_min,
            Some(RejectReason::OutsideDecals)
        ),
        row!(
            "selection.dec_max",
            selection.dec_max,
            Some(RejectReason::OutsideDecals)
        ),
        row!(
            "selection.types",
            selection.types,
            Some(RejectReason::NotValidType)
        ),
        row!(
            "selection.exclude_maskbits",
            selection.exclude_maskbits,
            Some(RejectReason::Maskbit)
        ),
        row!(
            "selection.min_nobs",
            selection.min_nobs,
            Some(RejectReason::InsufficientExposures)
        ),
        row!(
            "selection.z_mag_max",
            selection.z_mag_max,
            Some(RejectReason::MagZFaint)
        ),
        row!(
            "exclusion.radius_arcsec",
            exclusion.radius_arcsec,
            Some(RejectReason::NearKnownLens)
        ),
        row!("n2.ring_proxy", n2.ring_proxy, None),
        row!("n2.edge_on_proxy", n2.edge_on_proxy, None),
        row!("n2.blue_clumpy", n2.blue_clumpy, None),
        row!("bins.nobs_z", bins.nobs_z, None),
        row!(
            "positives.match_radius_arcsec",
            positives.match_radius_arcsec,
            None
        ),
        row!("positives.apply_selection", positives.apply_selection, None),
        row!(
            "sampling.negatives_per_positive",
            sampling.negatives_per_positive,
            None
        ),
        row!("sampling.n2_fraction", sampling.n2_fraction, None),
        row!("split.nside", split.nside, None),
        row!("split.fractions", split.fractions, None),
    ]
}

/// Renders the table; `run`'s negatives funnel fills the last column, and
/// a run without that stage is an error.
pub fn render(ours: &Config, request: &Config, run: Option<&RunManifest>) -> Result<String> {
    let funnel = run.map(RunManifest::negatives).transpose()?;
    let mut lines = vec![format!(
        "{:<34} {:<28} {:<28} {:<46} {}",
        "parameter", ours.profile, "request_v1", "provenance", "rows removed"
    )];
    for r in rows(ours, request) {
        let removed = match (r.reason, funnel) {
            (Some(reason), Some(f)) => format!("{} ({reason})", f.rejected.get(reason)),
            (Some(reason), None) => format!("- ({reason})"),
            (None, _) => String::new(),
        };
        let flag = if r.ours != r.request_v1 { "*" } else { " " };
        lines.push(format!(
            "{flag}{:<33} {:<28} {:<28} {:<46} {removed}",
            r.key,
            r.ours,
            r.request_v1,
            r.provenance.label()
        ));
    }
    if let Some(f) = funnel {
        lines.push(format!("input rows: {}, kept: {}", f.input_rows, f.kept));
    }
    lines.push("* differs from the request_v1 value".into());
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with_mag_z_faint(n: u64) -> RunManifest {
        let mut rejected = serde_json::Map::new();
        for r in RejectReason::ALL {
            let count = if r == RejectReason::MagZFaint { n } else { 0 };
            rejected.insert(r.as_str().into(), count.into());
        }
        let run = serde_json::json!({
            "schema_version": crate::manifest::SCHEMA_VERSION,
            "versions": crate::manifest::versions(),
            "profile": "paper_iv", "config": {}, "output": "file:///x", "engine": "embedded",
            "stages": {"negatives": {
                "input_rows": 100, "rejected": rejected,
                "funnel_order": RejectReason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "insufficient_exposures_by_band": {}, "kept": 83, "pools": {}, "n2_categories": {},
                "sweep_files": 1, "output": "file:///x/negatives", "output_files": [],
                "lens_catalog": null, "timings_s": {"total": 1.0}
            }}
        });
        RunManifest::parse(run.to_string().as_bytes(), "x/run.json").unwrap()
    }

    #[test]
    fn flags_the_magnitude_difference_with_its_provenance() {
        let ours = Config::load("paper_iv", &[]).unwrap();
        let req = Config::load("request_v1", &[]).unwrap();
        let table = render(&ours, &req, Some(&run_with_mag_z_faint(17))).unwrap();
        let line = table
            .lines()
            .find(|l| l.contains("selection.z_mag_max"))
            .unwrap();
        assert!(
            line.starts_with('*') && line.contains("20.0") && line.contains("21.0"),
            "{line}"
        );
        assert!(
            line.contains("Paper IV abstract") && line.contains("17 (mag_z_faint)"),
            "{line}"
        );
        let dec = table
            .lines()
            .find(|l| l.contains("selection.dec_min"))
            .unwrap();
        assert!(dec.starts_with(' '), "{dec}");
        assert!(table.contains("input rows: 100, kept: 83"), "{table}");
    }

    #[test]
    fn a_run_without_the_negatives_stage_is_an_error() {
        let ours = Config::load("paper_iv", &[]).unwrap();
        let req = Config::load("request_v1", &[]).unwrap();
        let mut run = run_with_mag_z_faint(1);
        run.stages.negatives = None;
        let err = render(&ours, &req, Some(&run)).unwrap_err().to_string();
        assert!(
            err.contains("x/run.json") && err.contains("stages.negatives"),
            "{err}"
        );
    }
}
