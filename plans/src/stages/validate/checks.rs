//! The checks pass: the checks job over the cutout shards, run where the
//! shards are read, its version of `validation/checks/` committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::Schema;
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{ShardInput, ShardTable, TargetFile};
use lenspipe_sinks::{register_files, Staged, Summaries};
use lenspipe_sweeps::ObjectUrl;
use lenspipe_validate::checks::Thresholds;
use lenspipe_validate::checks_job::{
    output_schema, ChecksSpec, ChecksWork, COUNT_FAILED_CHECK, COUNT_PASSED,
};
use lenspipe_validate::stats::StatsParams;

use super::{query, sql, CATALOG_FEATURES, IDENTITY};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::Params;
use crate::sink::{committed, Location};
use crate::stages::column_i64;

/// The cutouts being validated, registered as table `cutouts_input`.
pub(super) struct Cutouts {
    pub input: Location,
    pub files: Vec<TargetFile>,
    /// The files' URLs, in the same order.
    pub urls: Vec<String>,
    pub schema: Schema,
    /// The columns the cutouts have.
    pub present: Vec<String>,
    pub rows: u64,
}

impl Cutouts {
    /// The committed cutouts of `input` (what its `_SUCCESS` names) or, for
    /// a folder lenspipe did not write, the Parquet files directly in it.
    pub async fn register(engine: &Engine, input: &Location) -> Result<Self> {
        let (files, urls): (Vec<TargetFile>, Vec<String>) =
            cutout_files(input).await?.into_iter().unzip();
        if files.is_empty() {
            return Err(Error::Input(format!(
                "no cutout Parquet files under {} (run cutouts first, or set inputs.validate)",
                input.url
            )));
        }
        register_files(&engine.ctx, "cutouts_input", &urls)
            .await
            .map_err(|e| Error::Input(format!("cannot read the cutouts at {}: {e}", input.url)))?;
        let table = engine.ctx.table("cutouts_input").await?;
        let schema = table.schema().as_arrow().clone();
        let present: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        for required in [cs::GALAXY_ID, "label", cs::IMAGE] {
            if !present.iter().any(|p| p == required) {
                return Err(Error::Input(format!(
                    "the cutouts at {} lack the column '{required}'",
                    input.url
                )));
            }
        }
        let rows = table.count().await? as u64;
        Ok(Self {
            input: input.clone(),
            files,
            urls,
            schema,
            present,
            rows,
        })
    }
}

/// Each cutout file, with its URL.
async fn cutout_files(folder: &Location) -> Result<Vec<(TargetFile, String)>> {
    if let Some(manifest) = committed(folder).await? {
        return Ok(manifest
            .files
            .iter()
            .map(|f| {
                let file = folder.child(&f.path);
                let target = TargetFile {
                    path: file.path.to_string(),
                    size: f.bytes,
                };
                (target, file.url)
            })
            .collect());
    }
    let store = folder.object_url().store_url();
    let listed = folder.store.list_with_delimiter(Some(&folder.path)).await?;
    let mut files: Vec<(TargetFile, String)> = listed
        .objects
        .into_iter()
        .filter(|o| {
            o.location
                .filename()
                .is_some_and(|f| f.ends_with(".parquet") && !f.starts_with('_'))
        })
        .map(|o| {
            let url = ObjectUrl::from_store_path(&store, &o.location).to_string();
            let target = TargetFile {
                path: o.location.to_string(),
                size: o.size,
            };
            (target, url)
        })
        .collect();
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(files)
}

/// What the checks pass found.
pub(super) struct Checked {
    pub rows: u64,
    pub passed: u64,
    pub failures: BTreeMap<String, u64>,
    /// Pixel hashes shared by several cutouts.
    pub duplicate_hashes: usize,
}

/// Checks every cutout, commits `validation/checks/` and registers it as
/// table `checks`.
pub(super) async fn run(
    engine: &Engine,
    config: &Config,
    run_id: &str,
    cutouts: &Cutouts,
    folder: &Location,
) -> Result<Checked> {
    let v = &config.validation;
    let carry: Vec<String> = IDENTITY
        .iter()
        .chain(CATALOG_FEATURES.iter())
        .filter(|c| cutouts.present.iter().any(|p| p == *c))
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
    let checks_dir = folder.child("checks");
    let mut staged = Staged::start(checks_dir.clone(), run_id).await?;
    let mut spec = ChecksSpec {
        output_url: staged.folder_url().to_string(),
        carry,
        duplicate_hashes: Vec::new(),
        thresholds,
        stats,
        exclude_maskbits: config.exclude_mask(),
    };
    let checks_schema = output_schema(&cutouts.schema, &spec)?;
    // One pass over the pixels; a second only when two targets share pixels,
    // to mark every one of them duplicate_image (rare: a failure upstream).
    let mut summaries = checks_job(engine, cutouts, spec.clone()).await?;
    register_checks(engine, &staged, &summaries).await?;
    let dups = query(engine, sql::DUPLICATE_HASHES, Params::new()).await?;
    let duplicate_hashes: Vec<i64> = column_i64(&dups, "h")?.into_iter().flatten().collect();
    if !duplicate_hashes.is_empty() {
        spec.duplicate_hashes = duplicate_hashes.clone();
        // The same version again, from scratch.
        staged = Staged::start(checks_dir.clone(), run_id).await?;
        summaries = checks_job(engine, cutouts, spec).await?;
        register_checks(engine, &staged, &summaries).await?;
    }
    let rows = summaries.rows_written;
    if rows != cutouts.rows {
        staged.abort().await?;
        return Err(Error::Conservation(format!(
            "{} cutouts in, {rows} checked",
            cutouts.rows
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
    register_files(&engine.ctx, "checks", &committed.file_urls(&checks_dir)).await?;
    Ok(Checked {
        rows,
        passed,
        failures,
        duplicate_hashes: duplicate_hashes.len(),
    })
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

/// Runs the checks job over the cutout shards, one shard per task.
async fn checks_job(engine: &Engine, cutouts: &Cutouts, spec: ChecksSpec) -> Result<Summaries> {
    let table = ShardTable::new(
        Arc::new(ChecksWork(spec)),
        ShardInput::Files {
            store_url: cutouts.input.object_url().store_url().to_string(),
            files: cutouts.files.clone(),
            schema: Arc::new(cutouts.schema.clone()),
        },
    );
    let stream = engine
        .ctx
        .read_table(Arc::new(table))?
        .execute_stream()
        .await?;
    let summaries = Summaries::collect(stream, |_| {}).await?;
    summaries.check()?;
    Ok(summaries)
}
