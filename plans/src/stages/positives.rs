//! Positives: crossmatch the known-lens catalog to sweep sources.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{record_stage, GIT_COMMIT, PIPELINE_VERSION};
use crate::plan::{Params, POSITIVES};
use crate::sink::{Location, ParquetDir, PartSink};
use crate::stages::{count_strings, register_lenses};

pub const STATUSES: [&str; 4] = ["matched", "no_source_within_radius", "outside_footprint", "fails_selection"];

pub async fn run(engine: &Engine, config: &Config, run_id: &str) -> Result<Value> {
    let started = Instant::now();
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    engine.register_sweeps(config).await?;
    let catalog = register_lenses(engine, config, &output)
        .await?
        .ok_or_else(|| Error::Config("the positives stage needs inputs.positives (a lens catalog CSV)".into()))?;
    let params = Params::new()
        .selection(config)
        .f64("match_radius_arcsec", config.positives.match_radius_arcsec.value)
        .bool("apply_selection", config.positives.apply_selection.value)
        .str("pipeline_version", PIPELINE_VERSION)
        .str("git_commit", GIT_COMMIT)
        .str("extraction_timestamp", chrono::Utc::now().to_rfc3339());
    let df = POSITIVES.dataframe(&engine.ctx, params).await?;
    let streams = df.execute_stream_partitioned().await?;
    let dir = Arc::new(ParquetDir::create(output.child("positives"), run_id).await?);

    let mut tasks = Vec::new();
    for (index, mut stream) in streams.into_iter().enumerate() {
        let dir = Arc::clone(&dir);
        tasks.push(tokio::spawn(async move {
            let mut statuses = BTreeMap::new();
            let mut claims: Vec<(String, i64, i64)> = Vec::new();
            let mut sink = PartSink::new(&dir, index);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                count_strings(&batch, "status", &mut statuses)?;
                let ids = batch.column_by_name("lens_id").map(|a| a.as_primitive::<Int64Type>().clone());
                let files = batch.column_by_name("sweep_file").map(|a| a.as_string::<i32>().clone());
                let rows = batch.column_by_name("row_index").map(|a| a.as_primitive::<Int64Type>().clone());
                if let (Some(ids), Some(files), Some(rows)) = (ids, files, rows) {
                    for i in 0..batch.num_rows() {
                        if files.is_valid(i) && rows.is_valid(i) {
                            claims.push((files.value(i).to_string(), rows.value(i), ids.value(i)));
                        }
                    }
                }
                sink.write(&batch).await?;
            }
            sink.finish().await?;
            Ok::<_, Error>((statuses, claims))
        }));
    }
    let mut statuses: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut sources: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    for task in tasks {
        let (s, claims) = task.await.map_err(|e| Error::Other(format!("partition task failed: {e}")))??;
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
        for (file, row, lens) in claims {
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
    let dir = Arc::try_unwrap(dir).map_err(|_| Error::Other("output still in use".into()))?;
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
        .map(|s| (s.to_string(), json!(statuses.get(&Some(s.to_string())).copied().unwrap_or(0))))
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
    record_stage(&output, config, &engine.kind.describe(), "positives", section.clone()).await?;
    Ok(section)
}
