//! The validation stage: per-cutout checks, shortcut detection between
//! positives and negatives, and a report to look at.
//!
//! The pixels are read where the cutout shards are scanned (executors on a
//! cluster): duplicate pixels are found by a grouped `image_hash(image)`
//! query, and the per-cutout checks and statistics are a shard job writing
//! `validation/checks/`. This process then reads only what it needs: the
//! check counts, the features of a bounded subsample for the AUCs, split
//! counts and leaks by SQL, and a few gallery images.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{ShardInput, ShardTable, TargetFile};
use lenspipe_validate::auc::AucParams;
use lenspipe_validate::checks::Thresholds;
use lenspipe_validate::checks_job::{ChecksSpec, ChecksWork, COUNT_FAILED_CHECK, COUNT_PASSED};
use lenspipe_validate::multivariate::LogisticParams;
use lenspipe_validate::report::{
    FeatureHist, Funnel, FunnelStage, GalleryGroup, GalleryTile, ReportOptions,
};
use lenspipe_validate::shortcuts::{feature_shortcuts, SplitCounts, SplitsSummary};
use lenspipe_validate::stats::{StatsParams, IMAGE_FEATURES};
use lenspipe_validate::{cross_validated_logistic, FeatureKind, ReportInput, ShortcutsReport};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{
    record_stage, RunManifest, Section, Timings, UnmeasuredFeature, ValidateSection,
};
use crate::plan::Params;
use crate::sink::{committed, Location};
use crate::stages::positives::PositiveStatus;
use crate::stages::{column_f64, column_i64, column_strings, Stage};
use lenspipe_sinks::{register_files, ShardSummary, Staged, Summaries};

/// Columns copied from the cutouts to each checks row, when present.
const IDENTITY: [&str; 11] = [
    "galaxy_id",
    "label",
    "split",
    "cutout_status",
    "pool",
    "confuser_category",
    "lens_name",
    "ra",
    "dec",
    "brickname",
    "type",
];

/// Catalogue columns tested for shortcuts, when present.
const CATALOG_FEATURES: [&str; 20] = [
    "psfsize_g",
    "psfsize_r",
    "psfsize_z",
    "psfdepth_g",
    "psfdepth_r",
    "psfdepth_z",
    "galdepth_g",
    "galdepth_r",
    "galdepth_z",
    "nobs_g",
    "nobs_r",
    "nobs_z",
    "ebv",
    "mag_g",
    "mag_r",
    "mag_z",
    "dec",
    "maskbits",
    "mw_transmission_g",
    "mw_transmission_r",
];

async fn query(engine: &Engine, sql: &str) -> Result<RecordBatch> {
    query_with(engine, sql, Params::new()).await
}

/// `sql` with `params` bound to its `$name` placeholders, collected.
async fn query_with(engine: &Engine, sql: &str, params: Params) -> Result<RecordBatch> {
    collect(params.bind(engine.ctx.sql(sql).await?)?).await
}

async fn collect(df: DataFrame) -> Result<RecordBatch> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// The cutout files to validate: the committed version's (what its
/// `_SUCCESS` names) or, for a folder lenspipe did not write, the Parquet
/// files directly in it.
async fn cutout_files(folder: &Location) -> Result<Vec<TargetFile>> {
    if let Some(manifest) = committed(folder).await? {
        return Ok(manifest
            .files
            .iter()
            .map(|f| TargetFile {
                path: folder.child(&f.path).path.to_string(),
                size: f.bytes,
            })
            .collect());
    }
    let listed = folder.store.list_with_delimiter(Some(&folder.path)).await?;
    let mut files: Vec<TargetFile> = listed
        .objects
        .into_iter()
        .filter(|o| {
            o.location
                .filename()
                .is_some_and(|f| f.ends_with(".parquet") && !f.starts_with('_'))
        })
        .map(|o| TargetFile {
            path: o.location.to_string(),
            size: o.size,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn store_url(location: &Location) -> Result<String> {
    let url = url::Url::parse(&location.url)
        .map_err(|e| Error::Config(format!("{}: {e}", location.url)))?;
    Ok(format!(
        "{}://{}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    ))
}

/// (Re)registers table `checks` over the files a checks pass wrote.
async fn register_checks(engine: &Engine, staged: &Staged, summaries: &Summaries) -> Result<()> {
    let folder = Location::resolve(&engine.runtime(), staged.folder_url())?;
    let urls: Vec<String> = summaries
        .shards
        .iter()
        .filter_map(|s| s.shard.as_deref())
        .map(|name| folder.child(name).url)
        .collect();
    if urls.is_empty() {
        return Err(Error::Conservation("the checks wrote no file".into()));
    }
    register_files(&engine.ctx, "checks", &urls).await?;
    Ok(())
}

/// Runs the checks job over the cutout shards into `staged`'s folder.
async fn run_checks(
    engine: &Engine,
    files: Vec<TargetFile>,
    input: &Location,
    spec: ChecksSpec,
) -> Result<Summaries> {
    let schema = engine
        .ctx
        .table("cutouts_input")
        .await?
        .schema()
        .as_arrow()
        .clone();
    let table = ShardTable::new(
        Arc::new(ChecksWork(spec)),
        ShardInput::Files {
            store_url: store_url(input)?,
            files,
            schema: Arc::new(schema),
        },
    );
    let mut stream = engine
        .ctx
        .read_table(Arc::new(table))?
        .execute_stream()
        .await?;
    let mut summaries = Summaries::default();
    while let Some(batch) = stream.next().await {
        for summary in ShardSummary::from_batch(&batch?)? {
            summaries.push(summary);
        }
    }
    summaries.check()?;
    Ok(summaries)
}

/// The numeric features present in `checks`, and which kind each is.
fn features(present: &[String], type_values: &[String]) -> Vec<(String, FeatureKind, String)> {
    let mut out = Vec::new();
    for name in CATALOG_FEATURES {
        if present.iter().any(|p| p == name) {
            out.push((
                name.to_string(),
                FeatureKind::Catalog,
                format!("CAST(\"{name}\" AS DOUBLE)"),
            ));
        }
    }
    // TYPE as one indicator per value: the AUC of "is REX" between the classes.
    for value in type_values {
        let literal = value.replace('\'', "''");
        out.push((
            format!("type={}", value.trim()),
            FeatureKind::Catalog,
            format!(
                "CASE WHEN trim(\"type\") = '{}' THEN 1.0 ELSE 0.0 END",
                literal.trim()
            ),
        ));
    }
    for name in IMAGE_FEATURES {
        out.push((name.to_string(), FeatureKind::Image, format!("\"{name}\"")));
    }
    out
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
            let cats = query(
                engine,
                "SELECT DISTINCT confuser_category AS c FROM checks WHERE label = 0 AND pool = 'N2' \
                 AND confuser_category IS NOT NULL ORDER BY c",
            )
            .await?;
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
        let ids = column_strings(&collect(draw).await?, "galaxy_id")?
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
        let batch = collect(read).await?;
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

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let v = &config.validation;
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child(Stage::Validate.folder());
    let input = match &config.inputs.validate {
        Some(url) => Location::resolve(&engine.runtime(), url)?,
        None => output.child(Stage::Cutouts.folder()),
    };
    let files = cutout_files(&input).await?;
    if files.is_empty() {
        return Err(Error::Input(format!(
            "no cutout Parquet files under {} (run cutouts first, or set inputs.validate)",
            input.url
        )));
    }
    let store = store_url(&input)?;
    let urls: Vec<String> = files
        .iter()
        .map(|f| format!("{store}/{}", f.path))
        .collect();
    register_files(&engine.ctx, "cutouts_input", &urls)
        .await
        .map_err(|e| Error::Input(format!("cannot read the cutouts at {}: {e}", input.url)))?;
    let schema = engine
        .ctx
        .table("cutouts_input")
        .await?
        .schema()
        .as_arrow()
        .clone();
    let present: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for required in [cs::GALAXY_ID, "label", cs::IMAGE] {
        if !present.iter().any(|p| p == required) {
            return Err(Error::Input(format!(
                "the cutouts at {} lack the column '{required}'",
                input.url
            )));
        }
    }
    let input_rows = column_i64(
        &query(engine, "SELECT count(*) AS n FROM cutouts_input").await?,
        "n",
    )?[0]
        .unwrap_or(0) as u64;

    let carry: Vec<String> = IDENTITY
        .iter()
        .chain(CATALOG_FEATURES.iter())
        .filter(|c| present.iter().any(|p| p == *c))
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let thresholds = Thresholds {
        max_zero_fraction: v.max_zero_fraction.value,
        max_aperture_flux: v.max_aperture_flux_nmgy.value,
        max_peak: v.max_peak_nmgy.value,
        max_centroid_offset_px: v.max_centroid_offset_px.value,
    };
    let stats = StatsParams {
        annulus_inner_px: v.background_annulus_px.value.0,
        annulus_outer_px: v.background_annulus_px.value.1,
        aperture_radius_px: v.aperture_radius_px.value,
        ..StatsParams::default()
    };
    let mut staged = Staged::start(folder.child("checks"), run_id).await?;
    let mut spec = ChecksSpec {
        output_url: staged.folder_url().to_string(),
        carry: carry.clone(),
        duplicate_hashes: Vec::new(),
        thresholds,
        stats,
        exclude_maskbits: config.exclude_mask(),
    };
    let checks_schema = lenspipe_validate::checks_job::output_schema(&schema, &spec)?;
    // One pass over the pixels; a second only when two targets share pixels,
    // to mark every one of them duplicate_image (rare: a failure upstream).
    let mut summaries = run_checks(engine, files.clone(), &input, spec.clone()).await?;
    register_checks(engine, &staged, &summaries).await?;
    let dups = query(
        engine,
        "SELECT image_hash AS h FROM checks WHERE image_hash IS NOT NULL GROUP BY image_hash HAVING count(*) > 1",
    )
    .await?;
    let duplicate_hashes: Vec<i64> = column_i64(&dups, "h")?.into_iter().flatten().collect();
    if !duplicate_hashes.is_empty() {
        spec.duplicate_hashes = duplicate_hashes.clone();
        // The same version again, from scratch.
        staged = Staged::start(staged.dir().clone(), run_id).await?;
        summaries = run_checks(engine, files.clone(), &input, spec).await?;
        register_checks(engine, &staged, &summaries).await?;
    }
    let rows = summaries.rows_written;
    if rows != input_rows {
        staged.abort().await?;
        return Err(Error::Conservation(format!(
            "{input_rows} cutouts in, {rows} checked"
        )));
    }
    let passed = summaries.counts.total(COUNT_PASSED);
    let failures: BTreeMap<String, u64> = summaries
        .counts
        .by_value(COUNT_FAILED_CHECK)
        .into_iter()
        .filter_map(|(check, n)| Some((check?, n)))
        .collect();
    let committed = staged.commit(&summaries.shards, &checks_schema).await?;
    let checks_dir = folder.child("checks");
    register_files(&engine.ctx, "checks", &committed.file_urls(&checks_dir)).await?;
    let checked = Instant::now();

    // Shortcut statistics on (a stable subsample of) the checked rows with
    // pixels, in galaxy_id order: the bootstrap draws by position, so the
    // order must not depend on the engine or the partitioning.
    let with_pixels = column_i64(
        &query(
            engine,
            "SELECT count(*) AS n FROM checks WHERE image_hash IS NOT NULL",
        )
        .await?,
        "n",
    )?[0]
        .unwrap_or(0) as u64;
    let fraction = if with_pixels == 0 {
        1.0
    } else {
        (v.max_rows_for_statistics as f64 / with_pixels as f64).min(1.0)
    };
    let type_values = if present.iter().any(|p| p == "type") {
        column_strings(&query(engine, "SELECT DISTINCT trim(\"type\") AS t FROM checks WHERE \"type\" IS NOT NULL ORDER BY t").await?, "t")?
            .into_iter()
            .flatten()
            .collect()
    } else {
        Vec::new()
    };
    let features = features(&present, &type_values);
    let has_split = present.iter().any(|p| p == "split");
    let select: Vec<String> = features
        .iter()
        .map(|(name, _, expr)| format!("{expr} AS \"{name}\""))
        .collect();
    // The column list is built from the fixed feature list; the values
    // (seed, fraction) are bound.
    let sample = query_with(
        engine,
        &format!(
            "SELECT label, {} AS split_key, {} FROM checks WHERE image_hash IS NOT NULL AND stable_hash_unit(galaxy_id, $seed) < $fraction \
             ORDER BY galaxy_id",
            if has_split { "split" } else { "CAST(healpix_nested(ra, dec, 8) AS VARCHAR)" },
            select.join(", "),
        ),
        Params::new().i64("seed", v.seed).f64("fraction", fraction),
    )
    .await?;
    let labels: Vec<bool> = column_i64(&sample, "label")?
        .into_iter()
        .map(|l| l == Some(1))
        .collect();
    let values: Vec<(String, FeatureKind, Vec<f64>)> = features
        .iter()
        .map(|(name, kind, _)| Ok((name.clone(), *kind, column_f64(&sample, name)?)))
        .collect::<Result<_>>()?;
    let params = AucParams {
        n_boot: v.bootstrap_resamples,
        seed: v.seed as u64,
        margin: v.shortcut_auc_margin.value,
        level: 0.95,
    };
    let columns: Vec<(&str, FeatureKind, &[f64])> = values
        .iter()
        .map(|(n, k, c)| (n.as_str(), *k, c.as_slice()))
        .collect();
    let (per_feature, unmeasured) = feature_shortcuts(&columns, &labels, &params);

    // All catalogue features together, cross-validated across splits (or sky cells).
    let groups: Vec<u64> = column_strings(&sample, "split_key")?
        .into_iter()
        .map(|s| {
            lenspipe_udfs::stable_hash_unit::fnv1a64_update(0, s.unwrap_or_default().as_bytes())
        })
        .collect();
    let catalog: Vec<&(String, FeatureKind, Vec<f64>)> = values
        .iter()
        .filter(|(_, k, _)| *k == FeatureKind::Catalog)
        .collect();
    let names: Vec<&str> = catalog.iter().map(|(n, _, _)| n.as_str()).collect();
    let cols: Vec<&[f64]> = catalog.iter().map(|(_, _, c)| c.as_slice()).collect();
    let multivariate = if names.is_empty() {
        None
    } else {
        cross_validated_logistic(&names, &cols, &labels, &groups, &LogisticParams::default()).ok()
    };

    // Splits: counts by class, and sky shared between splits (all rows, by SQL).
    let mut per_split: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let (mut shared_healpix, mut shared_bricks) = (Vec::new(), Vec::new());
    if has_split {
        let counts = query(
            engine,
            "SELECT split, label, count(*) AS n FROM checks GROUP BY split, label",
        )
        .await?;
        let (splits, labels_, ns) = (
            column_strings(&counts, "split")?,
            column_i64(&counts, "label")?,
            column_i64(&counts, "n")?,
        );
        for i in 0..ns.len() {
            let entry = per_split
                .entry(splits[i].clone().unwrap_or_else(|| "none".into()))
                .or_default();
            if labels_[i] == Some(1) {
                entry.n_pos += ns[i].unwrap_or(0) as u64;
            } else {
                entry.n_neg += ns[i].unwrap_or(0) as u64;
            }
        }
        let nside = config.split.nside.value;
        if present.iter().any(|p| p == "ra") && present.iter().any(|p| p == "dec") {
            let leaks = query_with(
                engine,
                "SELECT p FROM (SELECT healpix_nested(ra, dec, $nside) AS p, split FROM checks) GROUP BY p HAVING count(DISTINCT split) > 1 ORDER BY p LIMIT 100",
                Params::new().i64("nside", i64::from(nside)),
            )
            .await?;
            shared_healpix = column_i64(&leaks, "p")?
                .into_iter()
                .flatten()
                .map(|p| p as u64)
                .collect();
        }
        if present.iter().any(|p| p == "brickname") {
            let leaks = query(engine, "SELECT brickname AS b FROM checks GROUP BY brickname HAVING count(DISTINCT split) > 1 ORDER BY b LIMIT 100").await?;
            shared_bricks = column_strings(&leaks, "b")?.into_iter().flatten().collect();
        }
    }
    let splits = SplitsSummary {
        per_split,
        healpix_shared: !shared_healpix.is_empty(),
        brick_shared: !shared_bricks.is_empty(),
        shared_healpix,
        shared_bricks,
    };
    let report = ShortcutsReport {
        features: per_feature,
        multivariate,
        splits,
    };
    let flagged: Vec<String> = report.flagged().into_iter().map(str::to_string).collect();
    let shortcuts_json = report
        .to_json_pretty()
        .map_err(|e| Error::Other(e.to_string()))?;
    folder
        .child("shortcuts.json")
        .put_bytes(shortcuts_json.into_bytes())
        .await?;

    // The report: pictures beside one HTML page.
    let run = RunManifest::read(&output).await?;
    let mut ranked: Vec<&lenspipe_validate::FeatureShortcut> = report.features.iter().collect();
    ranked.sort_by(|a, b| (b.auc - 0.5).abs().total_cmp(&(a.auc - 0.5).abs()));
    let histograms: Vec<FeatureHist> = ranked
        .iter()
        .filter(|f| f.flagged)
        .chain(ranked.iter().filter(|f| !f.flagged))
        .take(6)
        .filter_map(|f| values.iter().find(|(n, _, _)| *n == f.name))
        .map(|(name, _, column)| {
            let (mut pos, mut neg) = (Vec::new(), Vec::new());
            for (x, l) in column.iter().zip(&labels) {
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
    let failed_total: u64 = rows - passed;
    let input_report = ReportInput {
        title: format!("lenspipe validation: {}", output.url),
        summary: vec![
            ("cutouts checked".into(), rows.to_string()),
            ("passed every check".into(), passed.to_string()),
            ("failed a check".into(), failed_total.to_string()),
            (
                "rows in the shortcut statistics".into(),
                labels.len().to_string(),
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
                failures
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ],
        gallery: gallery(engine, config, &present, &urls).await?,
        histograms,
        aucs: report.feature_aucs(),
        funnels: funnels(run.as_ref()),
        balance: crate::stages::matching::report_rows(run.as_ref()),
        options: ReportOptions::default(),
    };
    write_report(&input_report, &folder)?;

    let seconds = started.elapsed().as_secs_f64();
    let section = Section::Validate(ValidateSection {
        input: input.url.clone(),
        cutouts: rows,
        passed,
        failed_checks: failures.clone(),
        duplicate_hashes: duplicate_hashes.len(),
        statistics_rows: labels.len(),
        statistics_fraction: fraction,
        flagged: flagged.clone(),
        unmeasured_features: unmeasured
            .iter()
            .map(|(n, e)| UnmeasuredFeature {
                feature: n.to_string(),
                why: e.to_string(),
            })
            .collect(),
        multivariate_auc: report.multivariate.as_ref().and_then(|m| m.oof_auc),
        output: folder.url.clone(),
        timings_s: Timings {
            plan: None,
            checks: Some(checked.duration_since(started).as_secs_f64()),
            total: seconds,
        },
        cutouts_per_s: rows as f64 / checked.duration_since(started).as_secs_f64().max(1e-9),
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
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
