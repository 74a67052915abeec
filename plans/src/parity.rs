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

/// Widths that keep every line of the table within 100 columns.
const KEY_WIDTH: usize = 31;
const VALUE_WIDTH: usize = 14;
const REMOVED_WIDTH: usize = 8;
const LINE_WIDTH: usize = 100;

/// Shorter than [`Provenance::label`], to fit the table.
fn short_label(p: Provenance) -> &'static str {
    match p {
        Provenance::ProjectChoice => "project choice, unverified",
        other => other.label(),
    }
}

/// `s` cut to `width` characters, marking a cut with `~`.
fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('~');
        out
    }
}

/// Renders the table, at most 100 columns wide: values too long for their
/// column are listed below it. `run`'s negatives funnel fills the `removed`
/// column, and a run without that stage is an error.
pub fn render(ours: &Config, request: &Config, run: Option<&RunManifest>) -> Result<String> {
    let funnel = run.map(RunManifest::negatives).transpose()?;
    let mut lines = vec![format!(
        "  {:<KEY_WIDTH$} {:<VALUE_WIDTH$} {:<VALUE_WIDTH$} {:>REMOVED_WIDTH$}  provenance",
        "parameter",
        clip(&ours.profile, VALUE_WIDTH),
        "request_v1",
        "removed"
    )];
    let mut long_values = Vec::new();
    for r in rows(ours, request) {
        let removed = match (r.reason, funnel) {
            (Some(reason), Some(f)) => f.rejected.get(reason).to_string(),
            (Some(_), None) => "-".into(),
            (None, _) => String::new(),
        };
        let differs = r.ours != r.request_v1;
        let cell = |v: &str| {
            if v.chars().count() > VALUE_WIDTH {
                "(below)".to_string()
            } else {
                v.to_string()
            }
        };
        lines.push(format!(
            "{} {:<KEY_WIDTH$} {:<VALUE_WIDTH$} {:<VALUE_WIDTH$} {:>REMOVED_WIDTH$}  {}",
            if differs { '*' } else { ' ' },
            r.key,
            cell(&r.ours),
            cell(&r.request_v1),
            removed,
            short_label(r.provenance)
        ));
        if r.ours.chars().count() > VALUE_WIDTH || r.request_v1.chars().count() > VALUE_WIDTH {
            let both = format!("  {}: {} {}", r.key, ours.profile, r.ours);
            if !differs && both.len() + " (both)".len() <= LINE_WIDTH {
                long_values.push(format!("{both} (both)"));
            } else {
                long_values.push(both);
                long_values.push(format!("  {}: request_v1 {}", r.key, r.request_v1));
            }
        }
    }
    if !long_values.is_empty() {
        lines.push("values too long for the table:".into());
        lines.extend(long_values);
    }
    if let (Some(f), Some(run)) = (funnel, run) {
        lines.push(format!(
            "removed: rows the negatives funnel rejected for that parameter\n         ({} rows in, {} kept; {})",
            f.input_rows, f.kept, run.source
        ));
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
            line.contains("Paper IV abstract") && line.split_whitespace().any(|w| w == "17"),
            "{line}"
        );
        let dec = table
            .lines()
            .find(|l| l.contains("selection.dec_min"))
            .unwrap();
        assert!(dec.starts_with(' '), "{dec}");
        assert!(table.contains("100 rows in, 83 kept"), "{table}");
    }

    #[test]
    fn fits_100_columns_and_lists_long_values_below() {
        let ours = Config::load("paper_iv", &[]).unwrap();
        let req = Config::load("request_v1", &[]).unwrap();
        let table = render(&ours, &req, Some(&run_with_mag_z_faint(17))).unwrap();
        for line in table.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} columns: {line}",
                line.len()
            );
        }
        // A value too long for its column is named in the row and given whole below.
        let ring = serde_json::to_string(&ours.n2.ring_proxy.value).unwrap();
        assert!(ring.len() > VALUE_WIDTH, "{ring}");
        let row = table
            .lines()
            .find(|l| l.contains("n2.ring_proxy") && l.contains("(below)"))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(!row.contains(&ring), "{row}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("  n2.ring_proxy:") && l.contains(&ring)),
            "{table}"
        );
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
