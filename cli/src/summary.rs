//! One line per stage for a person reading the terminal; run.json keeps
//! every count (`lenspipe run --json` prints it).

use lenspipe_plans::manifest::{
    CutoutsSection, NegativesSection, PositivesSection, Section, StratifySection, ValidateSection,
};
use lenspipe_plans::stages::matching::FeatureBalance;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `name count, name count` for the non-zero counts, largest first.
fn counts<'a>(map: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let mut items: Vec<(&String, &u64)> = map.into_iter().filter(|(_, n)| **n > 0).collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(name, n)| format!("{name} {}", thousands(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

fn negatives(s: &NegativesSection) -> String {
    let pools = counts(&s.pools);
    let skipped = match s.skipped_sweep_files.len() {
        0 => String::new(),
        n => format!(" ({n} unreadable, skipped: see run.json)"),
    };
    format!(
        "{} rows in {} sweep files{skipped}, {} kept{}, {}",
        thousands(s.input_rows),
        s.sweep_files,
        thousands(s.kept),
        if pools.is_empty() {
            String::new()
        } else {
            format!(" ({pools})")
        },
        seconds(s.timings_s.total)
    )
}

fn positives(s: &PositivesSection) -> String {
    use lenspipe_plans::stages::positives::PositiveStatus as P;
    let parts: Vec<String> = [
        (P::Matched, "matched"),
        (P::OutsideFootprint, "outside footprint"),
        (P::NoSourceWithinRadius, "no source"),
        (P::FailsSelection, "fail cuts"),
    ]
    .iter()
    .filter(|(status, _)| s.status.get(*status) > 0 || *status == P::Matched)
    .map(|(status, words)| format!("{} {words}", thousands(s.status.get(*status))))
    .collect();
    format!(
        "{} lenses in, {}, {}",
        thousands(s.lenses as u64),
        parts.join(", "),
        seconds(s.timings_s.total)
    )
}

fn stratify(s: &StratifySection) -> String {
    let split = |name: &str| -> u64 {
        s.split_fractions
            .values()
            .filter_map(|splits| splits.get(name))
            .map(|share| share.rows)
            .sum()
    };
    let balance = s
        .matching
        .as_ref()
        .map_or(String::new(), |m| unbalanced(&m.balance));
    format!(
        "{} positives, {}{} negatives ({} N2{}), split {}/{}/{}{balance}, {}",
        thousands(s.positives),
        thousands(s.negatives_drawn),
        if s.shortfall {
            format!(" of {}", thousands(s.negatives_target))
        } else {
            String::new()
        },
        thousands(s.n2.achieved_rows),
        if s.shortfall { "; SHORTFALL" } else { "" },
        thousands(split("train")),
        thousands(split("val")),
        thousands(split("test")),
        seconds(s.timings_s.total)
    )
}

/// AUC distance from 0.5 at which a matched column counts as unbalanced
/// (the validation report's default shortcut margin).
const UNBALANCED_MARGIN: f64 = 0.1;

/// `; UNBALANCED mag_z 0.06, ...` for matched columns the drawn negatives
/// still separate from the positives (at most three named), else nothing.
fn unbalanced(balance: &[FeatureBalance]) -> String {
    let off: Vec<String> = balance
        .iter()
        .filter_map(|b| {
            let auc = b.auc_after?;
            ((auc - 0.5).abs() >= UNBALANCED_MARGIN).then(|| format!("{} {auc:.2}", b.column))
        })
        .collect();
    match off.len() {
        0 => String::new(),
        n if n > 3 => format!("; UNBALANCED {} and {} more", off[..3].join(", "), n - 3),
        _ => format!("; UNBALANCED {}", off.join(", ")),
    }
}

fn cutouts(s: &CutoutsSection) -> String {
    format!(
        "{} targets: {}; {} made, {} reused, {:.1} MB, {} ({:.0}/s)",
        thousands(s.targets),
        counts(&s.status),
        thousands(s.rows_made),
        thousands(s.rows_kept_from_previous_runs),
        s.bytes_written as f64 / 1e6,
        seconds(s.timings_s.total),
        s.cutouts_per_s
    )
}

fn validate(s: &ValidateSection) -> String {
    let failed = counts(&s.failed_checks);
    let shortcuts = if s.flagged.is_empty() {
        "shortcuts: none".to_string()
    } else {
        format!("SHORTCUT: {}", s.flagged.join(", "))
    };
    format!(
        "{} cutouts, {} passed{}; {}{}, {}",
        thousands(s.cutouts),
        thousands(s.passed),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({failed})")
        },
        shortcuts,
        s.multivariate_auc
            .map(|auc| format!(" (joint AUC {auc:.2})"))
            .unwrap_or_default(),
        seconds(s.timings_s.total)
    )
}

/// The stage's line: its name padded, then its counts and time.
pub fn stage_line(section: &Section) -> String {
    let text = match section {
        Section::Negatives(s) => negatives(s),
        Section::Positives(s) => positives(s),
        Section::Stratify(s) => stratify(s),
        Section::Cutouts(s) => cutouts(s),
        Section::Validate(s) => validate(s),
    };
    format!("{:<9} {text}", section.stage().name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lenspipe_plans::stages::Stage;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn validate_line_names_flagged_features_and_failed_checks() {
        let section = serde_json::json!({
            "input": "file:///x/cutouts", "cutouts": 1200, "passed": 1190,
            "failed_checks": {"not_ok_status": 10, "duplicate_image": 0},
            "duplicate_hashes": 0, "statistics_rows": 1200, "statistics_fraction": 1.0,
            "flagged": ["mag_z", "dec"], "unmeasured_features": [],
            "multivariate_auc": 0.61, "output": "file:///x/validation",
            "timings_s": {"total": 12.34}, "cutouts_per_s": 100.0
        });
        let section = Section::from_json(Stage::Validate, &section).unwrap();
        let line = stage_line(&section);
        assert_eq!(
            line,
            "validate  1,200 cutouts, 1,190 passed (not_ok_status 10); \
             SHORTCUT: mag_z, dec (joint AUC 0.61), 12 s"
        );
    }

    #[test]
    fn matched_columns_still_separated_are_named() {
        let b = |column: &str, auc: Option<f64>| FeatureBalance {
            column: column.into(),
            auc_before: Some(0.1),
            smd_before: None,
            auc_after: auc,
            smd_after: None,
            auc_after_weighted: None,
            smd_after_weighted: None,
        };
        assert_eq!(unbalanced(&[b("mag_z", Some(0.45)), b("dec", None)]), "");
        assert_eq!(
            unbalanced(&[
                b("mag_z", Some(0.063)),
                b("nobs_z", Some(0.49)),
                b("mag_g", Some(0.61))
            ]),
            "; UNBALANCED mag_z 0.06, mag_g 0.61"
        );
        let many: Vec<FeatureBalance> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|c| b(c, Some(0.2)))
            .collect();
        assert_eq!(
            unbalanced(&many),
            "; UNBALANCED a 0.20, b 0.20, c 0.20 and 2 more"
        );
    }
}
