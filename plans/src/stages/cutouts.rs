//! The cutout stage: an image for every target of the sample.
//!
//! This process (the client) only plans: it counts the targets, gives each
//! a shard (a hash of its brick, so a brick's targets share a shard and
//! its decoded tiles) and scans a [`CutoutsTable`] over that plan. Whoever
//! runs a shard (this process embedded, an executor on a cluster) reads
//! its targets, makes their cutouts and writes
//! `<output>/cutouts/shard-NNNNNN.parquet` in one put; the client receives
//! one summary row per shard, checks the counts and writes the manifest.
//! No target row passes through the client.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::{coalesce, floor};
use datafusion::logical_expr::{cast, col, lit, Expr};
use futures::StreamExt;
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{CutoutsTable, ShardInput, ShardJob};
use object_store::ObjectStoreExt;
use serde_json::json;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, CutoutsSection, Section, Timings};
use crate::progress::Progress;
use crate::sink::{read_output, Location};
use crate::stages::{column_i64, column_strings, Stage};

/// The targets with their shard column, and how many targets and shards.
async fn targets_plan(
    engine: &Engine,
    url: &str,
    shard_rows: usize,
) -> Result<(DataFrame, u64, i64)> {
    let df = read_output(engine, url)
        .await
        .map_err(|e| Error::Input(format!("cannot read the cutout targets at {url} (run stratify first, or set inputs.cutout_targets): {e}")))?;
    let schema = df.schema().clone();
    for required in [cs::GALAXY_ID, cs::RA, cs::DEC] {
        if schema.field_with_unqualified_name(required).is_err() {
            return Err(Error::Input(format!(
                "the cutout targets at {url} lack the column '{required}'"
            )));
        }
    }
    let n_targets = df.clone().count().await? as u64;
    let n_shards = n_targets.div_ceil(shard_rows as u64).max(1) as i64;
    // A brick's targets share a shard (its tiles are decoded once); a
    // target without a brick is placed by its galaxy_id. The hash is
    // stable, so the same targets make the same shards in every run, which
    // is what lets a rerun find its shards again.
    let as_text = |name: &str| cast(col(name), DataType::Utf8);
    let key = match schema.field_with_unqualified_name(cs::BRICKNAME) {
        Ok(_) => coalesce(vec![as_text(cs::BRICKNAME), as_text(cs::GALAXY_ID)]),
        Err(_) => as_text(cs::GALAXY_ID),
    };
    let hash = engine.ctx.udf("stable_hash_unit")?;
    let shard: Expr = cast(
        floor(hash.call(vec![key, lit(0i64)]) * lit(n_shards as f64)),
        DataType::Int64,
    );
    // Columns the stage writes itself are not carried over from the input.
    let mut keep: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| *n != cs::SHARD && !cs::ADDED.contains(n))
        .map(col)
        .collect();
    keep.push(shard.alias(cs::SHARD));
    Ok((df.select(keep)?, n_targets, n_shards))
}

/// Removes `shard-NNNNNN.parquet` objects whose shard this run did not
/// make: left by an earlier run over other targets.
async fn remove_other_shards(folder: &Location, made: &BTreeSet<i64>) -> Result<()> {
    let listed = folder.store.list_with_delimiter(Some(&folder.path)).await?;
    for object in listed.objects {
        let name = object.location.filename().unwrap_or_default();
        let index = name
            .strip_prefix("shard-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<i64>().ok());
        if index.is_some_and(|i| !made.contains(&i)) {
            folder.store.delete(&object.location).await?;
        }
    }
    Ok(())
}

pub async fn run(engine: &Engine, config: &Config, _run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child(Stage::Cutouts.folder());
    let spec = config.cutout_spec(&folder.url)?;
    spec.validate().map_err(Error::Config)?;
    let targets_url = match &config.inputs.cutout_targets {
        Some(url) => Location::resolve(&engine.runtime(), url)?.url,
        None => output.child(Stage::Stratify.folder()).url,
    };
    let (targets, n_targets, n_shards) =
        targets_plan(engine, &targets_url, config.cutouts.shard_rows).await?;
    if n_targets == 0 {
        return Err(Error::Input(format!("no cutout targets at {targets_url}")));
    }
    let table = CutoutsTable::new(
        ShardJob::Cutouts(spec.clone()),
        ShardInput::Plan(targets.into_unoptimized_plan()),
    );
    let planned = Instant::now();
    let mut stream = engine
        .ctx
        .read_table(Arc::new(table))?
        .execute_stream()
        .await?;
    if let crate::engine::EngineKind::Cluster(url) = &engine.kind {
        eprintln!("cutouts: {n_targets} targets in {n_shards} shards submitted to {url}");
    }

    let progress = Progress::over("cutouts", n_targets, "targets");
    let mut shards_done = 0u64;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let (mut summarised, mut fetched, mut kept, mut reused, mut attempts, mut bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut shards: BTreeMap<i64, String> = BTreeMap::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let targets_of = column_i64(&batch, cs::SUMMARY_TARGETS)?;
        let (fetched_of, kept_of) = (
            column_i64(&batch, cs::SUMMARY_FETCHED)?,
            column_i64(&batch, cs::SUMMARY_KEPT)?,
        );
        let (attempts_of, bytes_of) = (
            column_i64(&batch, cs::SUMMARY_ATTEMPTS)?,
            column_i64(&batch, cs::SUMMARY_BYTES)?,
        );
        let (shard_of, path_of) = (
            column_i64(&batch, cs::SUMMARY_SHARD)?,
            column_strings(&batch, cs::SUMMARY_PATH)?,
        );
        let statuses_of = column_strings(&batch, cs::SUMMARY_STATUSES)?;
        let reused_of = batch
            .column_by_name(cs::SUMMARY_REUSED_SHARD)
            .ok_or_else(|| Error::Other("cutout summary lacks reused_shard".into()))?
            .as_boolean()
            .clone();
        for row in 0..batch.num_rows() {
            let count = |column: &[Option<i64>]| column[row].unwrap_or(0) as u64;
            let targets = count(&targets_of);
            summarised += targets;
            fetched += count(&fetched_of);
            kept += count(&kept_of);
            attempts += count(&attempts_of);
            bytes += count(&bytes_of);
            if reused_of.value(row) {
                reused += 1;
            }
            let counts: BTreeMap<String, u64> =
                serde_json::from_str(statuses_of[row].as_deref().unwrap_or("{}"))
                    .map_err(|e| Error::Other(format!("cutout summary statuses: {e}")))?;
            for (status, n) in counts {
                *statuses.entry(status).or_default() += n;
            }
            let shard = shard_of[row].unwrap_or(-1);
            if shards
                .insert(shard, path_of[row].clone().unwrap_or_default())
                .is_some()
            {
                return Err(Error::Conservation(format!(
                    "cutout shard {shard} was summarised twice"
                )));
            }
            shards_done += 1;
            progress.advance(targets, &format!("{shards_done} shards"));
        }
    }

    progress.finish();

    // Conservation: every target is in exactly one shard, with one status.
    let with_status: u64 = statuses.values().sum();
    let stray = shards.keys().find(|&&s| !(0..n_shards).contains(&s));
    if summarised != n_targets || with_status != n_targets || stray.is_some() {
        return Err(Error::Conservation(format!(
            "{n_targets} targets in shards 0..{n_shards}, but {} shards summarised {summarised} targets with {with_status} statuses{}",
            shards.len(),
            stray.map(|s| format!(" (and shard {s} is out of range)")).unwrap_or_default()
        )));
    }
    remove_other_shards(&folder, &shards.keys().copied().collect()).await?;
    let manifest = json!({
        "shards": shards.values().collect::<Vec<_>>(),
        "rows": n_targets,
        "size": spec.size,
        "bands": spec.bands,
        "pixscale": spec.pixscale,
        "source": spec.source_label(),
        "resampling": spec.resampling().as_str(),
    });
    folder
        .child("_manifest.json")
        .put_bytes(serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Other(e.to_string()))?)
        .await?;

    let seconds = started.elapsed().as_secs_f64();
    let section = Section::Cutouts(CutoutsSection {
        targets: n_targets,
        targets_input: targets_url,
        shards: shards.len(),
        shards_reused_whole: reused,
        rows_kept_from_previous_runs: kept,
        rows_made: fetched,
        attempts,
        status: statuses,
        source: spec.source_label(),
        resampling: spec.resampling().as_str().to_string(),
        size: spec.size,
        bands: spec.bands.clone(),
        pixscale: spec.pixscale,
        output: folder.url.clone(),
        bytes_written: bytes,
        timings_s: Timings {
            plan: Some(planned.duration_since(started).as_secs_f64()),
            checks: None,
            total: seconds,
        },
        cutouts_per_s: fetched as f64 / seconds.max(1e-9),
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
}
