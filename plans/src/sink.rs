//! Parquet output under one URL, made visible all at once.
//!
//! Parts are written to `<dir>/_staging-<run id>/` and moved into `<dir>/`
//! only when the whole stage succeeded, replacing the previous output. A
//! crashed run leaves only a `_staging-*` folder, which readers skip (leading
//! underscore) and the next run removes.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::error::{Error, Result};

/// An object store location: the store and a path inside it.
#[derive(Debug, Clone)]
pub struct Location {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
}

impl Location {
    /// Resolves a `file://`, `s3://` URL or a plain path (made absolute).
    pub fn resolve(runtime: &RuntimeEnv, location: &str) -> Result<Self> {
        let url = to_url(location)?;
        let store_url = ObjectStoreUrl::parse(format!(
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ))?;
        let store = runtime.object_store(&store_url)?;
        let path = Path::from_url_path(url.path())
            .map_err(|e| Error::Config(format!("location '{location}': {e}")))?;
        Ok(Self {
            url: url.to_string().trim_end_matches('/').to_string(),
            store,
            path,
        })
    }

    pub fn child(&self, name: &str) -> Self {
        Self {
            url: format!("{}/{name}", self.url),
            store: Arc::clone(&self.store),
            path: self.path.clone().join(name),
        }
    }

    pub async fn put_bytes(&self, bytes: Vec<u8>) -> Result<()> {
        self.store.put(&self.path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    pub async fn get_bytes(&self) -> Result<Option<bytes::Bytes>> {
        match self.store.get(&self.path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `file://` or `s3://` URL of a location string; plain paths become absolute
/// file URLs, with `.` and `..` resolved.
pub fn to_url(location: &str) -> Result<Url> {
    if location.contains("://") {
        return Url::parse(location)
            .map_err(|e| Error::Config(format!("'{location}' is not a URL: {e}")));
    }
    let absolute =
        std::path::absolute(location).map_err(|e| Error::Config(format!("'{location}': {e}")))?;
    let mut path = std::path::PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                path.pop();
            }
            std::path::Component::CurDir => {}
            other => path.push(other),
        }
    }
    let as_dir = location.ends_with('/') || path.is_dir();
    let url = if as_dir {
        Url::from_directory_path(&path)
    } else {
        Url::from_file_path(&path)
    };
    url.map_err(|_| Error::Config(format!("'{location}' is not a usable path")))
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
        let path = self
            .staging
            .path
            .clone()
            .join(format!("part-{index:05}.parquet").as_str());
        let object = BufWriter::new(Arc::clone(&self.staging.store), path);
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
            let name = from.filename().unwrap_or_default().to_string();
            let to = self.dir.path.clone().join(name.as_str());
            store.rename(&from, &to).await?;
            committed.push(format!("{}/{name}", self.dir.url));
        }
        committed.sort();
        remove_local_dir(&self.staging);
        Ok(committed)
    }
}

/// Object stores have no directories, but a local file system keeps the
/// emptied staging folder; remove it so nothing stale stays visible.
fn remove_local_dir(location: &Location) {
    if let Ok(path) = Url::parse(&location.url)
        .and_then(|u| u.to_file_path().map_err(|_| url::ParseError::EmptyHost))
    {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn remove_stale_local_staging(dir: &Location) {
    let Ok(Ok(path)) = Url::parse(&dir.url).map(|u| u.to_file_path()) else {
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
    let dir = Arc::new(dir);
    let keep = Arc::new(keep);
    let mut tasks = Vec::with_capacity(streams.len());
    for (index, mut stream) in streams.into_iter().enumerate() {
        let (dir, keep) = (Arc::clone(&dir), Arc::clone(&keep));
        tasks.push(tokio::spawn(async move {
            let mut state = S::default();
            let mut sink = PartSink::new(&dir, index);
            while let Some(batch) = stream.next().await {
                let kept = keep(&batch?, &mut state)?;
                sink.write(&kept).await?;
            }
            sink.finish().await?;
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
    let dir = Arc::try_unwrap(dir).map_err(|_| Error::Other("output still in use".into()))?;
    Ok((states, dir))
}
