//! The report's before/after balance of the matched columns: AUC of
//! positives against negatives per column, before matching (the unmatched
//! stratified draw) and after (the drawn negatives).

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::{auc_axes, draw_err, esc, render_png, ReportError, FONT};

/// One matched column's balance (values from run.json; None: not measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub name: String,
    pub auc_before: Option<f64>,
    pub auc_after: Option<f64>,
    pub smd_before: Option<f64>,
    pub smd_after: Option<f64>,
}

const BEFORE: RGBColor = RGBColor(200, 120, 60);
const AFTER: RGBColor = RGBColor(60, 130, 190);

/// Writes `balance.png` into `dir` and appends its HTML section; nothing
/// when no column was matched.
pub fn section(
    rows: &[BalanceRow],
    dir: &Path,
    pngs: &mut Vec<PathBuf>,
    html: &mut String,
) -> Result<(), ReportError> {
    if rows.is_empty() {
        return Ok(());
    }
    let name = "balance_matching.png";
    chart(rows, &dir.join(name))?;
    pngs.push(dir.join(name));
    let _ = writeln!(
        html,
        "<h2>Matching balance</h2><p>AUC of positives against negatives per matched column \
         (sampling.match_on), before matching (orange: the unmatched stratified draw) and after \
         (blue: the drawn negatives); 0.5 is no separation. SMD: standardized mean difference.</p>\
         <img src=\"{name}\" alt=\"balance before and after matching\">"
    );
    html.push_str(
        "<table><tr><th>column</th><th>AUC before</th><th>AUC after</th>\
         <th>SMD before</th><th>SMD after</th></tr>\n",
    );
    let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
    for r in rows {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            f(r.auc_before),
            f(r.auc_after),
            f(r.smd_before),
            f(r.smd_after)
        );
    }
    html.push_str("</table>\n");
    Ok(())
}

fn chart(rows: &[BalanceRow], path: &Path) -> Result<(), ReportError> {
    let n = rows.len();
    let h = (80 + 36 * n) as u32;
    render_png(path, 720, h, [255, 255, 255], |root| {
        let mut chart = auc_axes(root, "AUC before (orange) and after (blue) matching", n)?;
        let row = |i: usize| (n - 1 - i) as f64;
        let bar = |v: Option<f64>| v.filter(|v| v.is_finite()).unwrap_or(0.0);
        chart
            .draw_series(rows.iter().enumerate().flat_map(|(i, r)| {
                [
                    Rectangle::new(
                        [(0.0, row(i) + 0.52), (bar(r.auc_before), row(i) + 0.9)],
                        BEFORE.filled(),
                    ),
                    Rectangle::new(
                        [(0.0, row(i) + 0.1), (bar(r.auc_after), row(i) + 0.48)],
                        AFTER.filled(),
                    ),
                ]
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.5, 0.0), (0.5, n as f64)],
                BLACK.stroke_width(1),
            )))
            .map_err(draw_err)?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
                Text::new(
                    format!("{}  {} → {}", r.name, f(r.auc_before), f(r.auc_after)),
                    (0.01, row(i) + 0.8),
                    (FONT, 13).into_font().color(&BLACK),
                )
            }))
            .map_err(draw_err)?;
        Ok(())
    })
}
