//! The report: `report.html` with its pictures (funnels, the AUCs, the
//! most separating features' histograms, a gallery of cutouts).

use std::collections::BTreeMap;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::prelude::SessionContext;
use lenspipe_cutouts::schema as cs;
use lenspipe_sinks::register_files;
use lenspipe_validate::report::{
    FeatureHist, Funnel, FunnelStage, GalleryGroup, GalleryTile, ReportOptions,
};
use lenspipe_validate::ReportInput;

use super::checks::{Checked, Cutouts};
use super::shortcuts::Measured;
use super::{query, sql};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::RunManifest;
use crate::plan::Params;
use crate::sink::Location;
use crate::stages::positives::PositiveStatus;
use crate::stages::{collect_batch, column_strings};

/// Writes the report of a validation under `folder`.
pub(super) async fn write(
    engine: &Engine,
    config: &Config,
    output: &Location,
    folder: &Location,
    cutouts: &Cutouts,
    checked: &Checked,
    measured: &Measured,
) -> Result<()> {
    let run = RunManifest::read(output).await?;
    let mut ranked: Vec<&lenspipe_validate::FeatureShortcut> =
        measured.report.features.iter().collect();
    ranked.sort_by(|a, b| (b.auc - 0.5).abs().total_cmp(&(a.auc - 0.5).abs()));
    let histograms: Vec<FeatureHist> = ranked
        .iter()
        .filter(|f| f.flagged)
        .chain(ranked.iter().filter(|f| !f.flagged))
        .take(6)
        .filter_map(|f| measured.values.iter().find(|(n, _, _)| *n == f.name))
        .map(|(name, _, column)| {
            let (mut pos, mut neg) = (Vec::new(), Vec::new());
            for (x, l) in column.iter().zip(&measured.labels) {
                if x.is_finite() {
                    if *l {
                        pos.push(*x)
                    } else {
                        neg.push(*x)
                    }
                }
            }
            FeatureHist {
                name: name.clone(),
                pos,
                neg,
            }
        })
        .collect();
    let (rows, passed) = (checked.rows, checked.passed);
    let failed_total: u64 = rows - passed;
    let flagged = measured.report.flagged();
    let input_report = ReportInput {
        title: format!("lenspipe validation: {}", output.url),
        summary: vec![
            ("cutouts checked".into(), rows.to_string()),
            ("passed every check".into(), passed.to_string()),
            ("failed a check".into(), failed_total.to_string()),
            (
                "rows in the shortcut statistics".into(),
                measured.labels.len().to_string(),
            ),
            (
                "flagged features".into(),
                if flagged.is_empty() {
                    "none".into()
                } else {
                    flagged.join(", ")
                },
            ),
            (
                "failed checks".into(),
                checked
                    .failures
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ],
        gallery: gallery(engine, config, &cutouts.present, &cutouts.urls).await?,
        histograms,
        aucs: measured.report.feature_aucs(),
        funnels: funnels(run.as_ref()),
        balance: crate::stages::matching::report_rows(run.as_ref()),
        options: ReportOptions::default(),
    };
    write_report(&input_report, folder)
}

/// Funnel charts from what the earlier stages recorded in run.json.
fn funnels(run: Option<&RunManifest>) -> Vec<Funnel> {
    let Some(run) = run else {
        return Vec::new();
    };
    let mut stages = Vec::new();
    if let Some(neg) = &run.stages.negatives {
        stages.push(FunnelStage {
            stage: "negatives".into(),
            kept: neg.kept,
            rejected: neg
                .funnel_order
                .iter()
                .map(|r| (r.0.as_str().to_string(), neg.rejected.get(r.0)))
                .collect(),
        });
    }
    // Stages that count rows by status: one status is kept, the rest are rejections.
    if let Some(pos) = &run.stages.positives {
        stages.push(FunnelStage {
            stage: "positives (lenses)".into(),
            kept: pos.status.get(PositiveStatus::Matched),
            rejected: PositiveStatus::ALL
                .iter()
                .filter(|s| **s != PositiveStatus::Matched)
                .map(|s| (s.as_str().to_string(), pos.status.get(*s)))
                .collect(),
        });
    }
    if let Some(cut) = &run.stages.cutouts {
        let kept_status = "ok";
        stages.push(FunnelStage {
            stage: "cutouts".into(),
            kept: cut.status.get(kept_status).copied().unwrap_or(0),
            rejected: cut
                .status
                .iter()
                .filter(|(k, _)| k.as_str() != kept_status)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        });
    }
    if stages.is_empty() {
        return Vec::new();
    }
    vec![Funnel {
        title: "Rows kept and rejected, by stage".into(),
        stages,
    }]
}

/// Gallery: random cutouts of positives, N1 and each N2 category. The
/// draw is made on the checks rows (no pixels); the pixels of the few drawn
/// targets are then read in one scan of the cutouts, filtering on galaxy_id
/// before the images are decoded.
async fn gallery(
    engine: &Engine,
    config: &Config,
    present: &[String],
    cutout_urls: &[String],
) -> Result<Vec<GalleryGroup>> {
    let has = |c: &str| present.iter().any(|p| p == c);
    let negative = || col("label").eq(lit(0));
    let mut groups: Vec<(String, Expr)> =
        vec![("Positives (known lenses)".into(), col("label").eq(lit(1)))];
    if has("pool") {
        groups.push((
            "Negatives, pool N1".into(),
            negative().and(col("pool").eq(lit("N1"))),
        ));
        if has("confuser_category") {
            let cats = query(engine, sql::N2_CATEGORIES, Params::new()).await?;
            for c in column_strings(&cats, "c")?.into_iter().flatten() {
                let condition = negative()
                    .and(col("pool").eq(lit("N2")))
                    .and(col("confuser_category").eq(lit(c.clone())));
                groups.push((format!("Negatives, pool N2: {c}"), condition));
            }
        }
    } else {
        groups.push(("Negatives".into(), negative()));
    }
    let hash = engine.ctx.udf("stable_hash_unit")?;
    let checks = engine.ctx.table("checks").await?;
    let mut drawn: Vec<(String, Vec<String>)> = Vec::new();
    for (title, condition) in groups {
        let mut keep = condition.and(col("image_hash").is_not_null());
        if has(cs::STATUS) {
            keep = keep.and(col(cs::STATUS).eq(lit("ok")));
        }
        let draw = checks
            .clone()
            .filter(keep)?
            .sort(vec![
                hash.call(vec![col("galaxy_id"), lit(config.validation.seed)])
                    .sort(true, false),
                col("galaxy_id").sort(true, false),
            ])?
            .limit(0, Some(config.validation.gallery_per_group))?
            .select_columns(&["galaxy_id"])?;
        let ids = column_strings(&collect_batch(draw).await?, "galaxy_id")?
            .into_iter()
            .flatten()
            .collect();
        drawn.push((title, ids));
    }
    let wanted: Vec<Expr> = drawn
        .iter()
        .flat_map(|(_, ids)| ids.iter())
        .map(|id| lit(id.clone()))
        .collect();
    let mut pixels: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    if !wanted.is_empty() {
        // A few images of the cutouts, read here with filter pushdown, so
        // the galaxy_id filter runs before any image page is decoded; a
        // reader of its own, so no other query changes its settings.
        let reader = SessionContext::new_with_config_rt(
            engine
                .ctx
                .copied_config()
                .set_bool("datafusion.execution.parquet.pushdown_filters", true),
            engine.runtime(),
        );
        register_files(&reader, "cutouts_input", cutout_urls).await?;
        let read = reader
            .table("cutouts_input")
            .await?
            .filter(col("galaxy_id").in_list(wanted, false))?
            .select_columns(&["galaxy_id", "image"])?;
        let batch = collect_batch(read).await?;
        let ids = column_strings(&batch, "galaxy_id")?;
        let images = batch
            .column_by_name("image")
            .ok_or_else(|| Error::Other("gallery lacks image".into()))?;
        for (i, id) in ids.into_iter().enumerate() {
            if let Some(values) = lenspipe_validate::checks_job::pixels(images, i)? {
                pixels.insert(id.unwrap_or_default(), values.values().to_vec());
            }
        }
    }
    let size = config.cutouts.size.value;
    Ok(drawn
        .into_iter()
        .map(|(title, ids)| GalleryGroup {
            title,
            tiles: ids
                .into_iter()
                .filter_map(|id| {
                    let image = pixels.get(&id)?.clone();
                    (image.len() == 3 * size * size).then_some(GalleryTile {
                        label: id,
                        image,
                        height: size,
                        width: size,
                    })
                })
                .collect(),
        })
        .collect())
}

/// Writes the report's files under `folder`: directly on a local file
/// system, through a scratch folder otherwise.
fn write_report(input: &ReportInput, folder: &Location) -> Result<()> {
    let local = url::Url::parse(&folder.url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok());
    match local {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            lenspipe_validate::write_report(input, &dir)
                .map_err(|e| Error::Other(format!("report: {e}")))?;
            Ok(())
        }
        None => {
            let scratch = tempfile::tempdir()?;
            let files = lenspipe_validate::write_report(input, scratch.path())
                .map_err(|e| Error::Other(format!("report: {e}")))?;
            let runtime = tokio::runtime::Handle::current();
            for path in std::iter::once(files.html).chain(files.pngs) {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let bytes = std::fs::read(&path)?;
                tokio::task::block_in_place(|| {
                    runtime.block_on(folder.child(&name).put_bytes(bytes))
                })?;
            }
            Ok(())
        }
    }
}
