//! Parquet output under one URL, made visible all at once.
//!
//! Parts are written to `<dir>/_staging-<run id>/` and moved into `<dir>/`
//! only when the whole stage succeeded, replacing the previous output. A
//! crashed run leaves only a `_staging-*` folder, which readers skip (leading
//! underscore) and the next run removes.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, TryStreamExt};
use lenspipe_sweeps::ObjectUrl;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::error::{Error, Result};

/// Where outputs go: the one location type of the workspace.
pub use lenspipe_sweeps::Location;

/// `file://` or `s3://` URL of a location string; plain paths become absolute
/// file URLs, with `.` and `..` resolved (see [`ObjectUrl`]).
pub fn to_url(location: &str) -> Result<Url> {
    Ok(ObjectUrl::parse(location)?.to_url())
}

/// A directory of Parquet parts committed as a whole.
pub struct ParquetDir {
    dir: Location,
    staging: Location,
    properties: WriterProperties,
}

impl ParquetDir {
    /// Prepares `<dir>/_staging-<run_id>/`, removing staging left by crashed runs.
    pub async fn create(dir: Location, run_id: &str) -> Result<Self> {
        let stale: Vec<Path> = dir
            .store
            .list(Some(&dir.path))
            .map_ok(|m| m.location)
            .try_filter(|p| futures::future::ready(is_staging(&dir.path, p)))
            .try_collect()
            .await?;
        for p in stale {
            dir.store.delete(&p).await?;
        }
        remove_stale_local_staging(&dir);
        let staging = dir.child(&format!("_staging-{run_id}"));
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        Ok(Self {
            dir,
            staging,
            properties,
        })
    }

    pub fn url(&self) -> &str {
        &self.dir.url
    }

    /// A writer for part `index` in the staging area.
    pub fn part_writer(
        &self,
        index: usize,
        schema: SchemaRef,
    ) -> Result<AsyncArrowWriter<BufWriter>> {
        let part = self.staging.child(&format!("part-{index:05}.parquet"));
        let object = BufWriter::new(Arc::clone(&self.staging.store), part.path);
        Ok(AsyncArrowWriter::try_new(
            object,
            schema,
            Some(self.properties.clone()),
        )?)
    }

    /// Replaces the directory's Parquet files by the staged parts.
    pub async fn commit(self) -> Result<Vec<String>> {
        let store = &self.dir.store;
        let old: Vec<Path> = store
            .list_with_delimiter(Some(&self.dir.path))
            .await?
            .objects
            .into_iter()
            .map(|m| m.location)
            .filter(|p| p.filename().is_some_and(|f| f.ends_with(".parquet")))
            .collect();
        for p in old {
            store.delete(&p).await?;
        }
        let staged: Vec<Path> = store
            .list(Some(&self.staging.path))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        let mut committed = Vec::new();
        for from in staged {
            let to = self.dir.child(from.filename().unwrap_or_default());
            store.rename(&from, &to.path).await?;
            committed.push(to.url);
        }
        committed.sort();
        remove_local_dir(&self.staging);
        Ok(committed)
    }
}

/// Object stores have no directories, but a local file system keeps the
/// emptied staging folder; remove it so nothing stale stays visible.
fn remove_local_dir(location: &Location) {
    if let Some(path) = location.to_file_path() {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn remove_stale_local_staging(dir: &Location) {
    let Some(path) = dir.to_file_path() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("_staging-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn is_staging(dir: &Path, p: &Path) -> bool {
    p.prefix_match(dir)
        .and_then(|mut parts| parts.next())
        .is_some_and(|first| first.as_ref().starts_with("_staging-"))
}

/// Writes one record-batch stream into a part, creating the file only if rows arrive.
pub struct PartSink<'a> {
    dir: &'a ParquetDir,
    index: usize,
    writer: Option<AsyncArrowWriter<BufWriter>>,
    pub rows: u64,
}

impl<'a> PartSink<'a> {
    pub fn new(dir: &'a ParquetDir, index: usize) -> Self {
        Self {
            dir,
            index,
            writer: None,
            rows: 0,
        }
    }

    pub async fn write(&mut self, batch: &arrow::array::RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(self.dir.part_writer(self.index, batch.schema())?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(batch).await?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub async fn finish(self) -> Result<u64> {
        if let Some(w) = self.writer {
            w.close().await?;
        }
        Ok(self.rows)
    }
}

/// Writes every partition stream to its own staged part, one task per
/// partition so they run on every core. `keep` sees each batch first (to
/// count it into the partition's state) and returns the rows to write.
///
/// Returns each partition's state and the directory, still staged: the
/// caller commits it once its own checks pass.
pub async fn write_partitions<S, F>(
    dir: ParquetDir,
    streams: Vec<SendableRecordBatchStream>,
    keep: F,
) -> Result<(Vec<S>, ParquetDir)>
where
    S: Default + Send + 'static,
    F: Fn(&RecordBatch, &mut S) -> Result<RecordBatch> + Send + Sync + 'static,
{
    let label = dir.url().rsplit('/').next().unwrap_or_default().to_string();
    let progress = crate::progress::Progress::partitions(&label, streams.len() as u64);
    let dir = Arc::new(dir);
    let keep = Arc::new(keep);
    let mut tasks = Vec::with_capacity(streams.len());
    for (index, mut stream) in streams.into_iter().enumerate() {
        let (dir, keep, progress) = (Arc::clone(&dir), Arc::clone(&keep), progress.clone());
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut state = S::default();
            let mut sink = PartSink::new(&dir, index);
            let mut rows_in = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows_in += batch.num_rows() as u64;
                let kept = keep(&batch, &mut state)?;
                sink.write(&kept).await?;
            }
            let written = sink.finish().await?;
            progress.partition_done(rows_in);
            tracing::info!(
                output = %dir.url(),
                partition = index,
                rows_in,
                rows_written = written,
                seconds = started.elapsed().as_secs_f64(),
                "partition written"
            );
            Ok::<_, Error>(state)
        }));
    }
    let mut states = Vec::with_capacity(tasks.len());
    for task in tasks {
        states.push(
            task.await
                .map_err(|e| Error::Other(format!("partition task failed: {e}")))??,
        );
    }
    progress.finish();
    let dir = Arc::try_unwrap(dir).map_err(|_| Error::Other("output still in use".into()))?;
    Ok((states, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array, StringArray};
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    use lenspipe_sweeps::{SweepsOptions, SweepsTable};

    async fn query(ctx: &SessionContext, sql: &str) -> RecordBatch {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    fn column<T: 'static>(batch: &RecordBatch, i: usize) -> &T {
        batch.column(i).as_any().downcast_ref::<T>().unwrap()
    }

    /// A sweep in a folder whose names hold a space, `#`, `%` and `?` is
    /// listed, read, written out and read back by DataFusion from the printed URL.
    #[tokio::test]
    async fn awkward_local_names_list_read_and_write() {
        let root = tempfile::tempdir().unwrap();
        let mut synth = lenspipe_synth::SynthOptions::new(root.path().join("made"));
        (synth.rows_per_file, synth.threads) = (40, 1);
        let made = lenspipe_synth::run(&synth).unwrap();
        let input = root.path().join("in #1 50% ü");
        std::fs::create_dir(&input).unwrap();
        std::fs::rename(&made.files[0].path, input.join("sweep #a b.fits")).unwrap();

        let ctx = SessionContext::new();
        let runtime = ctx.runtime_env();
        let sweeps = format!("{}/", input.display());
        let table = SweepsTable::open(&runtime, &sweeps, SweepsOptions::default())
            .await
            .unwrap();
        assert_eq!(table.files()[0].file_name(), "sweep #a b.fits");
        ctx.register_table("sweeps", Arc::new(table)).unwrap();
        let sql = "SELECT count(*) AS n, sum(ra) AS ra, min(sweep_file) AS f FROM";
        let read = query(&ctx, &format!("{sql} sweeps")).await;
        let streams = ctx
            .sql("SELECT ra, sweep_file FROM sweeps")
            .await
            .unwrap()
            .execute_stream_partitioned()
            .await
            .unwrap();

        let out = format!("{}/out #2 ?/", root.path().display());
        let out = Location::resolve(&runtime, &out).unwrap().child("rows");
        let dir = ParquetDir::create(out.clone(), "test").await.unwrap();
        let (_, dir) = write_partitions(dir, streams, |b, _: &mut ()| Ok(b.clone()))
            .await
            .unwrap();
        let parts = dir.commit().await.unwrap();
        assert!(!parts.is_empty());
        for part in &parts {
            let path = ObjectUrl::parse(part).unwrap().to_file_path().unwrap();
            assert!(
                path.starts_with(root.path().join("out #2 ?/rows")),
                "{part}"
            );
            assert!(path.is_file(), "{part}");
        }

        let options = ParquetReadOptions::default();
        ctx.register_parquet("back", &format!("{}/", out.url), options)
            .await
            .unwrap();
        let back = query(&ctx, &format!("{sql} back")).await;
        assert_eq!(read.column(0), back.column(0));
        assert_eq!(column::<arrow::array::Int64Array>(&back, 0).value(0), 40);
        let ra = |b: &RecordBatch| column::<Float64Array>(b, 1).value(0);
        assert!((ra(&read) - ra(&back)).abs() < 1e-6);
        let name = arrow::compute::cast(back.column(2), &arrow::datatypes::DataType::Utf8).unwrap();
        let name = name.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(name.value(0), "sweep #a b.fits");
        assert_eq!(name.len(), 1);
    }
}
