//! `lenspipe parity`: every selection parameter beside the request's value,
//! its provenance, and what it removed in a run.

use serde_json::Value;

use crate::config::{Config, Param, Provenance};

/// One row of the parity table.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityRow {
    pub key: &'static str,
    pub ours: String,
    pub request_v1: String,
    pub provenance: Provenance,
    /// The funnel reason this parameter drives, if any.
    pub reason: Option<&'static str>,
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
            Some("outside_decals")
        ),
        row!(
            "selection.dec_max",
            selection.dec_max,
            Some("outside_decals")
        ),
        row!("selection.types", selection.types, Some("not_valid_type")),
        row!(
            "selection.exclude_maskbits",
            selection.exclude_maskbits,
            Some("maskbit")
        ),
        row!(
            "selection.min_nobs",
            selection.min_nobs,
            Some("insufficient_exposures")
        ),
        row!(
            "selection.z_mag_max",
            selection.z_mag_max,
            Some("mag_z_faint")
        ),
        row!(
            "exclusion.radius_arcsec",
            exclusion.radius_arcsec,
            Some("near_known_lens")
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

/// Renders the table; `run` is a parsed run.json whose negatives funnel fills the last column.
pub fn render(ours: &Config, request: &Config, run: Option<&Value>) -> String {
    let funnel = run.and_then(|r| r.pointer("/stages/negatives/rejected"));
    let mut lines = vec![format!(
        "{:<34} {:<28} {:<28} {:<46} {}",
        "parameter", ours.profile, "request_v1", "provenance", "rows removed"
    )];
    for r in rows(ours, request) {
        let removed = match (r.reason, funnel) {
            (Some(reason), Some(f)) => format!(
                "{} ({reason})",
                f.get(reason).and_then(Value::as_u64).unwrap_or(0)
            ),
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
    if let Some(run) = run {
        if let Some(n) = run.pointer("/stages/negatives/input_rows") {
            lines.push(format!(
                "input rows: {n}, kept: {}",
                run.pointer("/stages/negatives/kept")
                    .unwrap_or(&Value::Null)
            ));
        }
    }
    lines.push("* differs from the request's value".into());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_the_magnitude_difference_with_its_provenance() {
        let ours = Config::load("paper_iv", &[]).unwrap();
        let req = Config::load("request_v1", &[]).unwrap();
        let table = render(
            &ours,
            &req,
            Some(&serde_json::json!({"stages": {"negatives": {"rejected": {"mag_z_faint": 17}}}})),
        );
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
    }
}
