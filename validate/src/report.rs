//! The validation report: PNG charts drawn with plotters (text through an
//! embedded DejaVu font, so no system fonts or fontconfig are needed) and
//! one self-contained `report.html` that references them by relative path.

use lenspipe_viewer::rgb::{sdss_rgb, RgbParams};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// One cutout of the gallery (CHW g,r,z, nanomaggies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryTile {
    pub label: String,
    pub image: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

/// A labelled set of tiles, e.g. "positives", "N1", "N2: spirals".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryGroup {
    pub title: String,
    pub tiles: Vec<GalleryTile>,
}

/// One feature's values for positives and negatives (NaN ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureHist {
    pub name: String,
    pub pos: Vec<f64>,
    pub neg: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureAuc {
    pub name: String,
    /// "catalog" or "image".
    pub kind: String,
    pub auc: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub flagged: bool,
}

/// One stage of a selection funnel: rows kept and rows rejected by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStage {
    pub stage: String,
    pub kept: u64,
    pub rejected: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    pub title: String,
    pub stages: Vec<FunnelStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    pub title: String,
    /// Key/value lines shown at the top (counts, versions, settings).
    pub summary: Vec<(String, String)>,
    pub gallery: Vec<GalleryGroup>,
    pub histograms: Vec<FeatureHist>,
    pub aucs: Vec<FeatureAuc>,
    pub funnels: Vec<Funnel>,
    /// Balance of the matched columns before and after matching.
    #[serde(default)]
    pub balance: Vec<crate::balance::BalanceRow>,
    #[serde(default)]
    pub options: ReportOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportOptions {
    pub rgb: RgbParams,
    pub histogram_bins: usize,
    pub gallery_columns: usize,
    /// Integer upscaling of gallery tiles (101 px -> 202 px at 2).
    pub tile_scale: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            rgb: RgbParams::default(),
            histogram_bins: 40,
            gallery_columns: 8,
            tile_scale: 2,
        }
    }
}

/// Files written by [`write_report`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub pngs: Vec<PathBuf>,
}

#[derive(Debug)]
pub enum ReportError {
    Io(std::io::Error),
    Draw(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Io(e) => write!(f, "report i/o: {e}"),
            ReportError::Draw(e) => write!(f, "report drawing: {e}"),
        }
    }
}

impl std::error::Error for ReportError {}

impl From<std::io::Error> for ReportError {
    fn from(e: std::io::Error) -> Self {
        ReportError::Io(e)
    }
}

pub(crate) fn draw_err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Draw(e.to_string())
}

pub(crate) const FONT: &str = "sans-serif";

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the dejavu crate; a failure
        // would only mean text-less charts, so it is not fatal.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

const POS_COLOR: RGBColor = RGBColor(214, 96, 39);
const NEG_COLOR: RGBColor = RGBColor(49, 113, 181);
const FLAG_COLOR: RGBColor = RGBColor(200, 30, 30);
const OK_COLOR: RGBColor = RGBColor(120, 150, 190);
const KEPT_COLOR: RGBColor = RGBColor(80, 160, 90);
const PALETTE: [RGBColor; 8] = [
    RGBColor(228, 26, 28),
    RGBColor(255, 127, 0),
    RGBColor(152, 78, 163),
    RGBColor(166, 86, 40),
    RGBColor(247, 129, 191),
    RGBColor(153, 153, 153),
    RGBColor(200, 180, 20),
    RGBColor(55, 126, 184),
];

/// Renders into an RGB buffer (pre-filled with `bg`) and writes it as PNG.
pub(crate) fn render_png<F>(
    path: &Path,
    w: u32,
    h: u32,
    bg: [u8; 3],
    draw: F,
) -> Result<(), ReportError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), ReportError>,
{
    ensure_font();
    let mut buf: Vec<u8> = bg
        .iter()
        .copied()
        .cycle()
        .take((w * h * 3) as usize)
        .collect();
    {
        let backend = BitMapBackend::with_buffer(&mut buf, (w, h));
        let root = backend.into_drawing_area();
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    write_png(path, w, h, &buf)
}

fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<(), ReportError> {
    let file = fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(draw_err)?;
    wr.write_image_data(rgb).map_err(draw_err)?;
    wr.finish().map_err(draw_err)?;
    Ok(())
}

/// Writes `report.html` and its PNGs into `dir` (created if missing).
pub fn write_report(input: &ReportInput, dir: &Path) -> Result<ReportFiles, ReportError> {
    fs::create_dir_all(dir)?;
    let mut pngs = Vec::new();
    let mut html = String::new();
    let o = &input.options;
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:1.5em;color:#222}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         tr.flag{{background:#fdd}}img{{max-width:100%;margin:4px}}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(&input.title)
    );
    if !input.summary.is_empty() {
        html.push_str("<h2>Summary</h2><table>\n");
        for (k, v) in &input.summary {
            let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
        }
        html.push_str("</table>\n");
    }

    if !input.aucs.is_empty() {
        let name = "auc_features.png";
        auc_chart(&input.aucs, &dir.join(name))?;
        pngs.push(dir.join(name));
        let _ = writeln!(
            html,
            "<h2>Shortcut AUCs</h2><p>AUC of positives against negatives per feature; \
             red bars are flagged, whiskers are bootstrap 95% intervals.</p><img src=\"{name}\" alt=\"AUC per feature\">"
        );
        html.push_str("<table><tr><th>feature</th><th>kind</th><th>AUC</th><th>95% interval</th><th>flagged</th></tr>\n");
        for a in &input.aucs {
            let _ = writeln!(
                html,
                "<tr{}><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3} – {:.3}</td><td>{}</td></tr>",
                if a.flagged { " class=\"flag\"" } else { "" },
                esc(&a.name),
                esc(&a.kind),
                a.auc,
                a.ci_low,
                a.ci_high,
                if a.flagged { "yes" } else { "" }
            );
        }
        html.push_str("</table>\n");
    }

    if !input.histograms.is_empty() {
        html.push_str("<h2>Feature distributions</h2>\n<div>\n");
        for (i, hst) in input.histograms.iter().enumerate() {
            let name = format!("hist_{i:02}_{}.png", slug(&hst.name));
            histogram(hst, o.histogram_bins.max(1), &dir.join(&name))?;
            pngs.push(dir.join(&name));
            let _ = writeln!(html, "<img src=\"{name}\" alt=\"{}\">", esc(&hst.name));
        }
        html.push_str("</div>\n");
    }

    if !input.gallery.is_empty() {
        html.push_str("<h2>Gallery</h2>\n");
        for (i, g) in input.gallery.iter().enumerate() {
            let name = format!("gallery_{i:02}_{}.png", slug(&g.title));
            gallery(g, o, &dir.join(&name))?;
            pngs.push(dir.join(&name));
            let _ = writeln!(
                html,
                "<h3>{t} ({n})</h3><img src=\"{name}\" alt=\"{t}\">",
                t = esc(&g.title),
                n = g.tiles.len()
            );
        }
    }

    if !input.funnels.is_empty() {
        html.push_str("<h2>Funnels</h2>\n");
        for (i, f) in input.funnels.iter().enumerate() {
            let name = format!("funnel_{i:02}_{}.png", slug(&f.title));
            funnel(f, &dir.join(&name))?;
            pngs.push(dir.join(&name));
            let _ = writeln!(
                html,
                "<h3>{t}</h3><img src=\"{name}\" alt=\"{t}\">\n<table><tr><th>stage</th><th>kept</th><th>rejected (reason: rows)</th></tr>",
                t = esc(&f.title)
            );
            for s in &f.stages {
                let rej: Vec<String> = s
                    .rejected
                    .iter()
                    .map(|(r, n)| format!("{}: {n}", esc(r)))
                    .collect();
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&s.stage),
                    s.kept,
                    rej.join(", ")
                );
            }
            html.push_str("</table>\n");
        }
    }
    crate::balance::section(&input.balance, dir, &mut pngs, &mut html)?;
    html.push_str("</body></html>\n");
    let html_path = dir.join("report.html");
    fs::write(&html_path, html)?;
    Ok(ReportFiles {
        html: html_path,
        pngs,
    })
}

fn gallery(g: &GalleryGroup, o: &ReportOptions, path: &Path) -> Result<(), ReportError> {
    let scale = o.tile_scale.clamp(1, 8);
    let tile = g
        .tiles
        .iter()
        .map(|t| t.height.max(t.width))
        .max()
        .unwrap_or(101)
        .clamp(1, 512)
        * scale;
    let (pad, caption, title) = (6usize, 18usize, 30usize);
    let cols = o.gallery_columns.max(1).min(g.tiles.len().max(1));
    let rows = g.tiles.len().div_ceil(cols).max(1);
    let w = cols * (tile + pad) + pad;
    let h = title + rows * (tile + caption + pad) + pad;
    render_png(path, w as u32, h as u32, [32, 32, 32], |root| {
        // Tiles go in as pixels, text on top.
        for (k, t) in g.tiles.iter().enumerate() {
            let (cx, cy) = (
                pad + (k % cols) * (tile + pad),
                title + (k / cols) * (tile + caption + pad),
            );
            match sdss_rgb(&t.image, t.height, t.width, &o.rgb) {
                Some(rgb) => {
                    for y in 0..t.height * scale {
                        for x in 0..t.width * scale {
                            let i = 3 * ((y / scale) * t.width + x / scale);
                            let c = RGBColor(rgb[i], rgb[i + 1], rgb[i + 2]);
                            root.draw_pixel(((cx + x) as i32, (cy + y) as i32), &c)
                                .map_err(draw_err)?;
                        }
                    }
                }
                None => {
                    root.draw(&Rectangle::new(
                        [
                            (cx as i32, cy as i32),
                            ((cx + tile) as i32, (cy + tile) as i32),
                        ],
                        RGBColor(90, 30, 30).filled(),
                    ))
                    .map_err(draw_err)?;
                }
            }
            let label = truncate(&t.label, tile / 7);
            root.draw(&Text::new(
                label,
                (cx as i32, (cy + tile + 2) as i32),
                (FONT, 13).into_font().color(&WHITE),
            ))
            .map_err(draw_err)?;
        }
        root.draw(&Text::new(
            format!("{} ({} cutouts)", g.title, g.tiles.len()),
            (pad as i32, 6),
            (FONT, 18).into_font().color(&WHITE),
        ))
        .map_err(draw_err)?;
        Ok(())
    })
}

/// Fractions per bin over a robust range (0.5 to 99.5 percentiles of both
/// classes together), so one outlier cannot squash the picture.
fn hist_bins(pos: &[f64], neg: &[f64], bins: usize) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let mut all: Vec<f64> = pos
        .iter()
        .chain(neg)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    all.sort_unstable_by(f64::total_cmp);
    let (mut lo, mut hi) = if all.is_empty() {
        (0.0, 1.0)
    } else {
        (
            crate::auc::quantile_sorted(&all, 0.005),
            crate::auc::quantile_sorted(&all, 0.995),
        )
    };
    if !(hi > lo) {
        lo -= 0.5;
        hi += 0.5;
    }
    let count = |vals: &[f64]| {
        let mut c = vec![0.0; bins];
        let fin: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
        for v in &fin {
            let b = ((v - lo) / (hi - lo) * bins as f64).floor();
            let b = (b.max(0.0) as usize).min(bins - 1);
            c[b] += 1.0;
        }
        let n = fin.len().max(1) as f64;
        c.iter_mut().for_each(|x| *x /= n);
        c
    };
    let (cp, cn) = (count(pos), count(neg));
    (lo, hi, cp, cn)
}

fn histogram(hst: &FeatureHist, bins: usize, path: &Path) -> Result<(), ReportError> {
    let (lo, hi, cp, cn) = hist_bins(&hst.pos, &hst.neg, bins);
    let ymax = cp
        .iter()
        .chain(&cn)
        .fold(0.0f64, |m, v| m.max(*v))
        .max(1e-9)
        * 1.15;
    let width = (hi - lo) / bins as f64;
    let npos = hst.pos.iter().filter(|v| v.is_finite()).count();
    let nneg = hst.neg.iter().filter(|v| v.is_finite()).count();
    render_png(path, 480, 320, [255, 255, 255], |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&hst.name, (FONT, 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, 0.0..ymax)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .y_desc("fraction")
            .label_style((FONT, 12))
            .draw()
            .map_err(draw_err)?;
        for (counts, color, label) in [
            (&cn, NEG_COLOR, format!("negatives (n={nneg})")),
            (&cp, POS_COLOR, format!("positives (n={npos})")),
        ] {
            chart
                .draw_series(counts.iter().enumerate().map(|(i, c)| {
                    let x0 = lo + i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, *c)], color.mix(0.35).filled())
                }))
                .map_err(draw_err)?;
            let step: Vec<(f64, f64)> = counts
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    let x0 = lo + i as f64 * width;
                    [(x0, *c), (x0 + width, *c)]
                })
                .collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    step,
                    color.stroke_width(2),
                )))
                .map_err(draw_err)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// A chart with AUC from 0 to 1 across and one row per feature down.
pub(crate) type AucChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The axes of an AUC bar chart of `rows` rows.
pub(crate) fn auc_axes<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: &str,
    rows: usize,
) -> Result<AucChart<'a, 'b>, ReportError> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(8)
        .build_cartesian_2d(0.0..1.0, 0.0..rows as f64)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("AUC")
        .label_style((FONT, 12))
        .draw()
        .map_err(draw_err)?;
    Ok(chart)
}

fn auc_chart(aucs: &[FeatureAuc], path: &Path) -> Result<(), ReportError> {
    let mut v: Vec<&FeatureAuc> = aucs.iter().collect();
    v.sort_by(|a, b| (b.auc - 0.5).abs().total_cmp(&(a.auc - 0.5).abs()));
    let n = v.len();
    let h = (70 + 24 * n) as u32;
    render_png(path, 720, h, [255, 255, 255], |root| {
        let mut chart = auc_axes(root, "AUC per feature (positives vs negatives)", n)?;
        let row = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(v.iter().enumerate().map(|(i, a)| {
                let c = if a.flagged { FLAG_COLOR } else { OK_COLOR };
                let auc = if a.auc.is_finite() { a.auc } else { 0.0 };
                Rectangle::new([(0.0, row(i) + 0.15), (auc, row(i) + 0.85)], c.filled())
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(
                v.iter()
                    .enumerate()
                    .filter(|(_, a)| a.ci_low.is_finite())
                    .map(|(i, a)| {
                        PathElement::new(
                            vec![(a.ci_low, row(i) + 0.5), (a.ci_high, row(i) + 0.5)],
                            BLACK.stroke_width(2),
                        )
                    }),
            )
            .map_err(draw_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.5, 0.0), (0.5, n as f64)],
                BLACK.stroke_width(1),
            )))
            .map_err(draw_err)?;
        chart
            .draw_series(v.iter().enumerate().map(|(i, a)| {
                Text::new(
                    format!("{} [{}]  {:.3}", a.name, a.kind, a.auc),
                    (0.01, row(i) + 0.75),
                    (FONT, 13).into_font().color(&BLACK),
                )
            }))
            .map_err(draw_err)?;
        Ok(())
    })
}

fn funnel(f: &Funnel, path: &Path) -> Result<(), ReportError> {
    let mut reasons: Vec<&str> = Vec::new();
    for s in &f.stages {
        for (r, _) in &s.rejected {
            if !reasons.contains(&r.as_str()) {
                reasons.push(r);
            }
        }
    }
    let total = |s: &FunnelStage| s.kept + s.rejected.iter().map(|(_, n)| *n).sum::<u64>();
    let widest = f.stages.iter().map(total).max().unwrap_or(1).max(1) as f64;
    // Bars use the left ~70%; the legend sits in the free right part.
    let xmax = widest * 1.45;
    let n = f.stages.len().max(1);
    let h = (90 + 34 * n).max(80 + 18 * (reasons.len() + 1)) as u32;
    render_png(path, 760, h, [255, 255, 255], |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&f.title, (FONT, 18))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(8)
            .build_cartesian_2d(0.0..xmax, 0.0..n as f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("rows")
            .label_style((FONT, 12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(draw_err)?;
        let row = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(f.stages.iter().enumerate().map(|(i, s)| {
                Rectangle::new(
                    [(0.0, row(i) + 0.15), (s.kept as f64, row(i) + 0.85)],
                    KEPT_COLOR.filled(),
                )
            }))
            .map_err(draw_err)?
            .label("kept")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], KEPT_COLOR.filled()));
        for (k, reason) in reasons.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<_> = f
                .stages
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let before: u64 = s.kept
                        + s.rejected
                            .iter()
                            .take_while(|(r, _)| r != reason)
                            .map(|(_, n)| *n)
                            .sum::<u64>();
                    let count = s.rejected.iter().find(|(r, _)| r == reason)?.1;
                    Some(Rectangle::new(
                        [
                            (before as f64, row(i) + 0.15),
                            ((before + count) as f64, row(i) + 0.85),
                        ],
                        color.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(draw_err)?
                .label(format!("rejected: {reason}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .draw_series(f.stages.iter().enumerate().map(|(i, s)| {
                Text::new(
                    format!("{}: kept {} of {}", s.stage, s.kept, total(s)),
                    (xmax * 0.01, row(i) + 0.7),
                    (FONT, 13).into_font().color(&BLACK),
                )
            }))
            .map_err(draw_err)?;
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// File-name-safe form of a label.
fn slug(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    t.chars().take(40).collect()
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
