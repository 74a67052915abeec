//! Writing a stage's output: the client side of the partition writer.
//!
//! The stage's plan runs under [`lenspipe_sinks::PartitionWriterExec`]
//! wherever its partitions run; this process receives one summary row per
//! partition, never the rows themselves, shows progress, lets the stage
//! check the counts, and commits the version (or removes it).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::prelude::{DataFrame, ParquetReadOptions};
use lenspipe_sinks::{Staged, Summaries, WriteTable};
use lenspipe_sweeps::ObjectUrl;
use url::Url;

use crate::engine::Engine;
use crate::error::{Error, Result};

pub use lenspipe_sinks::{committed, register_committed, Committed, CounterRows, WriteSpec};
/// Where outputs go: the one location type of the workspace.
pub use lenspipe_sweeps::Location;

/// `file://` or `s3://` URL of a location string; plain paths become absolute
/// file URLs, with `.` and `..` resolved (see [`ObjectUrl`]).
pub fn to_url(location: &str) -> Result<Url> {
    Ok(ObjectUrl::parse(location)?.to_url())
}

/// A stage output written but not yet visible.
pub struct Written {
    pub summaries: Summaries,
    staged: Staged,
    schema: SchemaRef,
}

impl Written {
    /// Runs `check` on the summaries; commits the version if it passes and
    /// removes it if not. Returns the committed files' URLs.
    pub async fn commit_if(
        self,
        check: impl FnOnce(&Summaries) -> Result<()>,
    ) -> Result<Vec<String>> {
        if let Err(e) = self
            .summaries
            .check()
            .map_err(Error::from)
            .and_then(|_| check(&self.summaries))
        {
            self.staged.abort().await?;
            return Err(e);
        }
        let dir = self.staged.dir().clone();
        let manifest = self
            .staged
            .commit(&self.summaries.shards, &self.schema)
            .await?;
        Ok(manifest.file_urls(&dir))
    }
}

/// A stage's output as a DataFrame: the files its `_SUCCESS` names, or,
/// for a folder or file lenspipe did not write, its Parquet as found.
pub async fn read_output(engine: &Engine, url: &str) -> Result<DataFrame> {
    let location = Location::resolve(&engine.runtime(), url)?;
    let manifest = match url.ends_with(".parquet") {
        true => None,
        false => committed(&location).await?,
    };
    if let Some(manifest) = manifest {
        return read_committed(engine, &location, &manifest).await;
    }
    let url = if url.ends_with('/') || url.ends_with(".parquet") {
        url.to_string()
    } else {
        format!("{}/", location.url)
    };
    Ok(engine
        .ctx
        .read_parquet(url, ParquetReadOptions::default())
        .await?)
}

/// The files of the committed version `manifest` of the output folder `dir`.
pub async fn read_committed(
    engine: &Engine,
    dir: &Location,
    manifest: &Committed,
) -> Result<DataFrame> {
    Ok(engine
        .ctx
        .read_parquet(manifest.file_urls(dir), ParquetReadOptions::default())
        .await?)
}

/// The names of a plan's output columns, for a writer that writes them all.
pub fn column_names(df: &DataFrame) -> Vec<String> {
    df.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// Writes `df` into a new version (`v-<run_id>`) of the output folder
/// `dir`: `spec` gets the version folder's URL and says which columns go
/// out and what is counted.
pub async fn write(
    engine: &Engine,
    df: DataFrame,
    dir: Location,
    run_id: &str,
    spec: impl FnOnce(&str) -> WriteSpec,
) -> Result<Written> {
    let staged = Staged::start(dir, run_id).await?;
    let spec = spec(staged.folder_url());
    let table = WriteTable::try_new(df.into_unoptimized_plan(), spec)?;
    let schema = table.written_schema()?;
    let label = staged
        .dir()
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let plan = engine
        .ctx
        .read_table(Arc::new(table))?
        .create_physical_plan()
        .await?;
    // On a cluster the plan is one remote job and the partitions are not
    // known here; the bar then counts summaries as they come.
    let partitions = match engine.kind {
        crate::engine::EngineKind::Embedded => {
            plan.properties().output_partitioning().partition_count()
        }
        crate::engine::EngineKind::Cluster(_) => 0,
    };
    let progress = crate::progress::Progress::partitions(&label, partitions as u64);
    let stream = datafusion::physical_plan::execute_stream(plan, engine.ctx.task_ctx())?;
    let outcome = Summaries::collect(stream, |s| progress.partition_done(s.rows_in)).await;
    progress.finish();
    // Shards written before a failure are never named by a manifest; they
    // are removed here, or by the next commit if this process dies.
    let summaries = match outcome {
        Ok(summaries) => summaries,
        Err(e) => {
            if let Err(cleanup) = staged.abort().await {
                tracing::warn!(error = %cleanup, "could not remove the failed run's shards");
            }
            return Err(e.into());
        }
    };
    Ok(Written {
        summaries,
        staged,
        schema,
    })
}
