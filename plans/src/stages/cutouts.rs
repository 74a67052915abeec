//! The cutout stage: an image for every target of the sample.
//!
//! This process (the client) only plans. A first plan orders the targets by
//! brick and writes them, where it runs, in target shards of
//! `cutouts.shard_rows` under `<output>/cutouts/_targets/`; a second scans
//! a [`CutoutsTable`] over those shards. Whoever runs a shard (this process
//! embedded, an executor on a cluster) makes its cutouts and writes
//! `<output>/cutouts/v-<run id>/shard-NNNNNN.parquet` in one put; the client receives
//! one summary row per shard (the writer's), checks the counts and commits
//! the version with `_SUCCESS`. The version is resumable: a shard of the
//! same name in the committed version, or in a version a killed run left,
//! gives the rows it holds made the same way, and only the rest is made.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{col, SortExpr};
use futures::StreamExt;
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{CutoutsTable, ShardJob, TargetFile};
use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, CutoutsSection, Section, Timings};
use crate::sink::{column_names, read_output, Location, WriteSpec};
use lenspipe_sinks::{split_file_name, ShardSummary, Staged, Summaries, WriteTable};

/// The target shards: a plan reads the targets, orders them so that
/// targets of one brick share a shard, and writes them in files of
/// `shard_rows` under `folder` where it runs (an executor on a cluster).
/// This process receives one summary per file, never the targets.
async fn write_target_shards(
    engine: &Engine,
    url: &str,
    shard_rows: usize,
    folder: &Location,
) -> Result<(Vec<TargetFile>, SchemaRef, u64)> {
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
    // Columns the stage writes itself are not carried over from the input.
    let keep: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| *n != cs::SHARD && !cs::ADDED.contains(n))
        .map(col)
        .collect();
    // By brick, then across the brick in declination: neighbouring targets
    // share decoded tiles. galaxy_id breaks ties, so shards are the same
    // from run to run.
    let mut order: Vec<SortExpr> = Vec::new();
    if schema.field_with_unqualified_name(cs::BRICKNAME).is_ok() {
        order.push(col(cs::BRICKNAME).sort(true, true));
    }
    order.push(col(cs::DEC).sort(true, true));
    order.push(col(cs::RA).sort(true, true));
    order.push(col(cs::GALAXY_ID).sort(true, true));
    let df = df.select(keep)?.sort(order)?;
    let spec = WriteSpec::new(folder.url.clone(), column_names(&df))
        .split(shard_rows as u64, cs::SHARD);
    let table = WriteTable::try_new(df.into_unoptimized_plan(), spec)?;
    let targets_schema = table.written_schema()?;
    let mut summaries = Summaries::default();
    for batch in engine.ctx.read_table(Arc::new(table))?.collect().await? {
        for summary in ShardSummary::from_batch(&batch)? {
            summaries.push(summary);
        }
    }
    summaries.check()?;
    let mut files: Vec<(String, u64)> = summaries
        .shards
        .iter()
        .filter_map(|s| s.shard.clone().map(|name| (name, s.bytes)))
        .collect();
    files.sort();
    for (index, (name, _)) in files.iter().enumerate() {
        if *name != split_file_name(index as u64) {
            return Err(Error::Conservation(format!(
                "target shard {index} came back as {name}"
            )));
        }
    }
    remove_shards_from(folder, files.len() as i64).await?;
    let files = files
        .into_iter()
        .map(|(name, size)| TargetFile {
            path: folder.child(&name).path.to_string(),
            size,
        })
        .collect();
    Ok((files, targets_schema, summaries.rows_written))
}

/// Removes `shard-NNNNNN.parquet` objects numbered `first` and above: left
/// by an earlier run over more targets.
async fn remove_shards_from(folder: &Location, first: i64) -> Result<()> {
    let listed = folder.store.list_with_delimiter(Some(&folder.path)).await?;
    for object in listed.objects {
        let name = object.location.filename().unwrap_or_default();
        let index = name
            .strip_prefix("shard-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<i64>().ok());
        if index.is_some_and(|i| i >= first) {
            folder.store.delete(&object.location).await?;
        }
    }
    Ok(())
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child("cutouts");
    config
        .cutout_spec(&folder.url)?
        .validate()
        .map_err(Error::Config)?;
    let targets_url = match &config.inputs.cutout_targets {
        Some(url) => Location::resolve(&engine.runtime(), url)?.url,
        None => output.child("sample").url,
    };
    let (files, targets_schema, n_targets) = write_target_shards(
        engine,
        &targets_url,
        config.cutouts.shard_rows,
        &folder.child(cs::TARGETS_DIR),
    )
    .await?;
    if n_targets == 0 {
        return Err(Error::Input(format!("no cutout targets at {targets_url}")));
    }
    let planned = Instant::now();

    let staged = Staged::start(folder.clone(), run_id).await?;
    let resume_from = staged.resume_from().await?;
    let spec = config.cutout_spec(staged.folder_url())?;
    let store_url = {
        let url = url::Url::parse(&folder.url)
            .map_err(|e| Error::Config(format!("{}: {e}", folder.url)))?;
        format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
    };
    let output_schema = cs::output_schema(&targets_schema, &spec);
    let table = CutoutsTable::new(
        ShardJob::Cutouts {
            spec: spec.clone(),
            resume_from,
        },
        store_url,
        files.clone(),
        targets_schema,
    );
    let mut stream = engine
        .ctx
        .read_table(Arc::new(table))?
        .execute_stream()
        .await?;
    if let crate::engine::EngineKind::Cluster(url) = &engine.kind {
        eprintln!("cutouts: {} shards submitted to {url}", files.len());
    }

    let progress = crate::progress::Progress::partitions("cutouts", files.len() as u64);
    let mut summaries = Summaries::default();
    let outcome: Result<()> = async {
        while let Some(batch) = stream.next().await {
            for summary in ShardSummary::from_batch(&batch?)? {
                progress.partition_done(summary.rows_in);
                summaries.push(summary);
            }
        }
        Ok(())
    }
    .await;
    progress.finish();
    // A failed run leaves its shards for the next run to resume from.
    outcome?;
    summaries.check()?;
    let counts = &summaries.counts;
    let total = |name: &str| -> u64 { counts.counter(name).values().sum() };
    let statuses: BTreeMap<String, u64> = counts
        .by_value(cs::COUNT_STATUS)
        .into_iter()
        .map(|(status, n)| (status.unwrap_or_default(), n))
        .collect();
    let (fetched, kept, reused, attempts) = (
        total(cs::COUNT_MADE),
        total(cs::COUNT_KEPT),
        total(cs::COUNT_REUSED_SHARD),
        total(cs::COUNT_ATTEMPTS),
    );
    let bytes: u64 = summaries.shards.iter().map(|s| s.bytes).sum();
    let summarised = summaries.rows_written;

    // Conservation: every target is in exactly one shard, with one status.
    let with_status: u64 = statuses.values().sum();
    let shards = summaries.shards.len();
    if summarised != n_targets || with_status != n_targets || shards != files.len() {
        return Err(Error::Conservation(format!(
            "{n_targets} targets in {} shards, but {shards} shards summarised {summarised} targets with {with_status} statuses",
            files.len(),
        )));
    }
    staged.commit(&summaries.shards, &output_schema).await?;

    let seconds = started.elapsed().as_secs_f64();
    let section = Section::Cutouts(CutoutsSection {
        targets: n_targets,
        targets_input: targets_url,
        shards: files.len(),
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
    section.to_json()
}
