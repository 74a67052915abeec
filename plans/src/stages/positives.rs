//! Positives: crossmatch the known-lens catalog to sweep sources.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, GIT_COMMIT, PIPELINE_VERSION};
use crate::plan::{Params, POSITIVES};
use crate::sink::{write_partitions, Location, ParquetDir};
use crate::stages::{count_strings, register_lenses};

pub const STATUSES: [&str; 4] = [
    "matched",
    "no_source_within_radius",
    "outside_footprint",
    "fails_selection",
];

/// What one partition of the crossmatch saw.
#[derive(Default)]
struct Claims {
    statuses: BTreeMap<Option<String>, u64>,
    /// (sweep_file, row_index, lens_id) of every matched source.
    claims: Vec<(String, i64, i64)>,
}

fn count_statuses(batch: &RecordBatch, part: &mut Claims) -> Result<RecordBatch> {
    count_strings(batch, "status", &mut part.statuses)?;
    let ids = batch
        .column_by_name("lens_id")
        .and_then(|a| a.as_primitive_opt::<Int64Type>());
    let files = batch
        .column_by_name("sweep_file")
        .and_then(|a| a.as_string_opt::<i32>());
    let rows = batch
        .column_by_name("row_index")
        .and_then(|a| a.as_primitive_opt::<Int64Type>());
    if let (Some(ids), Some(files), Some(rows)) = (ids, files, rows) {
        for i in 0..batch.num_rows() {
            if files.is_valid(i) && rows.is_valid(i) {
                part.claims
                    .push((files.value(i).to_string(), rows.value(i), ids.value(i)));
            }
        }
    }
    Ok(batch.clone())
}

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    engine.register_sweeps(config).await?;
    let catalog = register_lenses(engine, config, &output)
        .await?
        .ok_or_else(|| {
            Error::Config("the positives stage needs inputs.positives (a lens catalog CSV)".into())
        })?;
    let params = Params::new()
        .selection(config)
        .f64(
            "match_radius_arcsec",
            config.positives.match_radius_arcsec.value,
        )
        .bool("apply_selection", config.positives.apply_selection.value)
        .str("pipeline_version", PIPELINE_VERSION)
        .str("git_commit", GIT_COMMIT)
        .str("extraction_timestamp", chrono::Utc::now().to_rfc3339());
    let df = POSITIVES.dataframe(&engine.ctx, params).await?;
    let streams = df.execute_stream_partitioned().await?;
    let dir = ParquetDir::create(output.child("positives"), run_id).await?;
    let (parts, dir) = write_partitions(dir, streams, count_statuses).await?;
    let mut statuses: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut sources: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    for part in parts {
        for (k, v) in part.statuses {
            *statuses.entry(k).or_default() += v;
        }
        for (file, row, lens) in part.claims {
            sources.entry((file, row)).or_default().push(lens);
        }
    }
    let counted: u64 = statuses.values().sum();
    if counted != catalog.batch.num_rows() as u64 {
        return Err(Error::Conservation(format!(
            "{} lenses went in but {counted} came out of the crossmatch",
            catalog.batch.num_rows()
        )));
    }
    let files = dir.commit().await?;

    let mut shared: Vec<Value> = sources
        .into_iter()
        .filter(|(_, lenses)| lenses.len() > 1)
        .map(|((file, row), mut lenses)| {
            lenses.sort();
            json!({"sweep_file": file, "row_index": row, "lens_ids": lenses})
        })
        .collect();
    shared.sort_by_key(|v| v.to_string());
    let status_counts: serde_json::Map<String, Value> = STATUSES
        .iter()
        .map(|s| {
            (
                s.to_string(),
                json!(statuses.get(&Some(s.to_string())).copied().unwrap_or(0)),
            )
        })
        .collect();
    let section = json!({
        "catalog": config.inputs.positives,
        "catalog_lines": catalog.data_lines,
        "catalog_rejected_lines": catalog.rejected,
        "lenses": catalog.batch.num_rows(),
        "status": status_counts,
        "sources_claimed_by_several_lenses": shared,
        "match_radius_arcsec": config.positives.match_radius_arcsec.value,
        "output": output.child("positives").url,
        "output_files": files,
        "timings_s": {"total": started.elapsed().as_secs_f64()},
    });
    record_stage(
        &output,
        config,
        &engine.kind.describe(),
        "positives",
        section.clone(),
    )
    .await?;
    Ok(section)
}
