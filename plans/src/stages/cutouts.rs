//! The cutout stage: an image for every target of the sample.
//!
//! This process (the client) only plans: it orders the targets by brick,
//! cuts them into shards of `cutouts.shard_rows`, writes each shard's target
//! list under `<output>/cutouts/_targets/`, and scans a [`CutoutsTable`]
//! over those lists. Whoever runs a shard (this process embedded, an
//! executor on a cluster) makes its cutouts and writes
//! `<output>/cutouts/shard-NNNNNN.parquet` in one put; the client receives
//! one summary row per shard, checks the counts and writes the manifest.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::{col, SortExpr};
use futures::StreamExt;
use lenspipe_cutouts::schema as cs;
use lenspipe_cutouts::{CutoutsTable, ShardJob, TargetFile};
use object_store::ObjectStoreExt;
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, CutoutsSection, Section, Timings};
use crate::sink::{read_output, Location};
use crate::stages::{column_i64, column_strings};

/// The targets, ordered so that targets of one brick share a shard.
async fn read_targets(engine: &Engine, url: &str) -> Result<RecordBatch> {
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
    let out_schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok(concat_batches(&out_schema, &batches)?)
}

/// Writes one Parquet object per shard of `shard_rows` targets and returns
/// them as the table's files.
async fn write_target_shards(
    targets: &RecordBatch,
    shard_rows: usize,
    folder: &Location,
) -> Result<(Vec<TargetFile>, Arc<Schema>)> {
    let mut fields: Vec<Field> = targets
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(cs::SHARD, DataType::Int64, false));
    let schema = Arc::new(Schema::new(fields));
    let mut files = Vec::new();
    let shards = targets.num_rows().div_ceil(shard_rows);
    for shard in 0..shards {
        let start = shard * shard_rows;
        let len = shard_rows.min(targets.num_rows() - start);
        let slice = targets.slice(start, len);
        let mut columns = slice.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(vec![shard as i64; len])));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let mut buffer = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut buffer, Arc::clone(&schema), None)?;
        writer.write(&batch)?;
        writer.close()?;
        let file = folder.child(&cs::shard_file_name(shard as i64));
        let size = buffer.len() as u64;
        file.put_bytes(buffer).await?;
        files.push(TargetFile {
            path: file.path.to_string(),
            size,
        });
    }
    remove_shards_from(folder, shards as i64).await?;
    Ok((files, schema))
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

/// Shows shards done out of all, the rate and the time left, on a terminal only.
struct Progress {
    total: usize,
    done: usize,
    targets: u64,
    started: Instant,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            targets: 0,
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn shard_done(&mut self, targets: u64) {
        self.done += 1;
        self.targets += targets;
        if !self.tty {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.targets as f64 / seconds;
        let left = (self.total - self.done) as f64 * seconds / self.done as f64;
        eprint!(
            "\rcutouts: {}/{} shards, {} targets, {rate:.1} targets/s, about {left:.0} s left   ",
            self.done, self.total, self.targets
        );
        if self.done == self.total {
            eprintln!();
        }
    }
}

pub async fn run(engine: &Engine, config: &Config, _run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    let folder = output.child("cutouts");
    let spec = config.cutout_spec(&folder.url)?;
    spec.validate().map_err(Error::Config)?;
    let targets_url = match &config.inputs.cutout_targets {
        Some(url) => Location::resolve(&engine.runtime(), url)?.url,
        None => output.child("sample").url,
    };
    let targets = read_targets(engine, &targets_url).await?;
    let n_targets = targets.num_rows() as u64;
    if n_targets == 0 {
        return Err(Error::Input(format!("no cutout targets at {targets_url}")));
    }
    let (files, targets_schema) = write_target_shards(
        &targets,
        config.cutouts.shard_rows,
        &folder.child(cs::TARGETS_DIR),
    )
    .await?;
    let planned = Instant::now();

    let store_url = {
        let url = url::Url::parse(&folder.url)
            .map_err(|e| Error::Config(format!("{}: {e}", folder.url)))?;
        format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
    };
    let table = CutoutsTable::new(
        ShardJob::Cutouts(spec.clone()),
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

    let mut progress = Progress::new(files.len());
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
            progress.shard_done(targets);
        }
    }

    // Conservation: every target is in exactly one shard, with one status.
    let with_status: u64 = statuses.values().sum();
    if summarised != n_targets || with_status != n_targets || shards.len() != files.len() {
        return Err(Error::Conservation(format!(
            "{n_targets} targets in {} shards, but {} shards summarised {summarised} targets with {with_status} statuses",
            files.len(),
            shards.len()
        )));
    }
    remove_shards_from(&folder, files.len() as i64).await?;
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
