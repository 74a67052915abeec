//! The cutout stage: an image for every target of the sample.
//!
//! This process (the client) only plans: it counts the targets, gives each
//! a shard (a hash of its brick, so a brick's targets share a shard and
//! its decoded tiles) and scans a `ShardTable` doing `CutoutWork` over that plan. Whoever
//! runs a shard (this process embedded, an executor on a cluster) reads
//! its targets, makes their cutouts and writes
//! `<output>/cutouts/v-<run id>/shard-NNNNNN.parquet` in one put; the
//! client receives one summary row per shard, checks the counts and
//! commits the version (`_SUCCESS`). No target row passes through the
//! client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::{coalesce, floor};
use datafusion::logical_expr::{cast, col, lit, Expr};
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{CutoutWork, ShardInput, ShardTable};
use lenspipe_sinks::{Staged, Summaries};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, CutoutsSection, Section, Timings};
use crate::progress::Progress;
use crate::sink::{read_output, Location};
use crate::stages::Stage;

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

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Section> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child(Stage::Cutouts.folder());
    let (staged, earlier) = Staged::start_resumable(folder.clone(), run_id).await?;
    let mut spec = config.cutout_spec(staged.folder_url())?;
    spec.resume_from = earlier;
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
    let written_schema = cs::output_schema(targets.schema().as_arrow(), &spec);
    let table = ShardTable::new(
        Arc::new(CutoutWork(spec.clone())),
        ShardInput::Plan(targets.into_unoptimized_plan()),
    );
    let planned = Instant::now();
    let stream = engine
        .ctx
        .read_table(Arc::new(table))?
        .execute_stream()
        .await?;
    if let crate::engine::EngineKind::Cluster(url) = &engine.kind {
        eprintln!("cutouts: {n_targets} targets in {n_shards} shards submitted to {url}");
    }

    // A failed run keeps its shards (uncommitted): the next run finds them
    // in `earlier` and makes only what is missing.
    let progress = Progress::over("cutouts", n_targets, "targets");
    let mut shards = 0;
    let summaries = Summaries::collect(stream, |summary| {
        shards += 1;
        progress.advance(summary.rows_in, &format!("{shards} shards"));
    })
    .await?;
    progress.finish();
    summaries.check()?;

    // Conservation: every target is in exactly one shard, with one status.
    let counts = &summaries.counts;
    let statuses: BTreeMap<String, u64> = counts
        .by_value(cs::COUNT_STATUS)
        .into_iter()
        .map(|(status, n)| (status.unwrap_or_else(|| "null".into()), n))
        .collect();
    let with_status: u64 = statuses.values().sum();
    let stray = summaries
        .shards
        .iter()
        .filter_map(|s| s.shard.as_deref())
        .find(|name| cs::shard_index(name).is_none_or(|i| !(0..n_shards).contains(&i)));
    if summaries.rows_written != n_targets || with_status != n_targets || stray.is_some() {
        return Err(Error::Conservation(format!(
            "{n_targets} targets in shards 0..{n_shards}, but {} shards summarised {} targets with {with_status} statuses{}",
            summaries.shards.len(),
            summaries.rows_written,
            stray.map(|s| format!(" (and shard {s} is out of range)")).unwrap_or_default()
        )));
    }
    let bytes: u64 = summaries.shards.iter().map(|s| s.bytes).sum();
    staged.commit(&summaries.shards, &written_schema).await?;

    let seconds = started.elapsed().as_secs_f64();
    let section = Section::Cutouts(CutoutsSection {
        targets: n_targets,
        targets_input: targets_url,
        shards: summaries.shards.len(),
        shards_reused_whole: counts.total(cs::COUNT_REUSED_WHOLE),
        rows_kept_from_previous_runs: counts.total(cs::COUNT_KEPT),
        rows_made: counts.total(cs::COUNT_MADE),
        attempts: counts.total(cs::COUNT_ATTEMPTS),
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
        cutouts_per_s: counts.total(cs::COUNT_MADE) as f64 / seconds.max(1e-9),
    });
    record_stage(&output, config, &engine.kind.describe(), section.clone()).await?;
    Ok(section)
}
