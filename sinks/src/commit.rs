//! Versioned outputs, made visible by one atomic put.
//!
//! A stage writes version `v-<run id>/` of its output folder; nothing reads
//! it until the client, having checked the partitions' summaries, writes
//! the folder's `_SUCCESS`: a small JSON manifest naming the version and
//! exactly the shards that belong to it. Readers (the next stage among
//! them) follow `_SUCCESS`, never a listing. At every instant the folder
//! therefore holds one complete version that readers see:
//!
//! 1. shards being written or a crash before step 3: `_SUCCESS` still names
//!    the previous version, which is untouched;
//! 2. shards that no summary names (an attempt the cluster ran again) are
//!    removed before the manifest is written;
//! 3. `_SUCCESS` is replaced in one put (the commit point);
//! 4. everything else in the folder (older versions, crashed runs' shards)
//!    is removed. A crash here leaves only extra files nobody reads, and
//!    the next commit removes them.
//!
//! One run writes a given output folder at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lenspipe_sweeps::Location;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::summary::ShardSummary;

/// The manifest's name in an output folder.
pub const SUCCESS: &str = "_SUCCESS";
/// The file a version with no rows holds, so that it still has a schema.
const EMPTY_SHARD: &str = "part-empty.parquet";
const FORMAT: &str = "lenspipe.output.v1";

/// The test hook that stands for killing the process: with
/// `LENSPIPE_CRASH_AT=<step>` the process aborts when it reaches `step`.
/// Only debug builds (the ones the tests run) have it: a release binary
/// never aborts because of an environment variable.
pub fn crash_point(step: &str) {
    if cfg!(debug_assertions) && std::env::var("LENSPIPE_CRASH_AT").as_deref() == Ok(step) {
        eprintln!("lenspipe: LENSPIPE_CRASH_AT={step}: aborting here");
        std::process::abort();
    }
}

/// A file of a committed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    /// Relative to the output folder: `v-<run id>/part-….parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// The content of `_SUCCESS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub format: String,
    pub version: String,
    pub rows: u64,
    pub files: Vec<CommittedFile>,
    pub committed_at: String,
}

impl Committed {
    /// The files' URLs, in the manifest's order.
    pub fn file_urls(&self, dir: &Location) -> Vec<String> {
        self.files.iter().map(|f| dir.child(&f.path).url).collect()
    }
}

/// The committed version of the output folder `dir`, if any.
pub async fn committed(dir: &Location) -> Result<Option<Committed>> {
    let marker = dir.child(SUCCESS);
    let Some(bytes) = marker
        .get_bytes()
        .await
        .map_err(|e| DataFusionError::Execution(format!("{}: {e}", marker.url)))?
    else {
        return Ok(None);
    };
    let manifest: Committed = serde_json::from_slice(&bytes).map_err(|e| {
        DataFusionError::Execution(format!("{} is not a manifest: {e}", marker.url))
    })?;
    if manifest.format != FORMAT {
        return Err(DataFusionError::Execution(format!(
            "{} has format '{}', this lenspipe reads '{FORMAT}'",
            marker.url, manifest.format
        )));
    }
    Ok(Some(manifest))
}

/// Registers the committed version of `dir` as table `name`.
pub async fn register_committed(
    ctx: &SessionContext,
    name: &str,
    dir: &Location,
) -> Result<Committed> {
    let manifest = committed(dir).await?.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{} holds no committed output (no {SUCCESS}); run the stage that writes it first",
            dir.url
        ))
    })?;
    register_files(ctx, name, &manifest.file_urls(dir)).await?;
    Ok(manifest)
}

/// Registers exactly the Parquet files `urls` as table `name` (replacing
/// any table of that name): a stage reading what it has just staged.
pub async fn register_files(ctx: &SessionContext, name: &str, urls: &[String]) -> Result<()> {
    let urls = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A version being written.
#[derive(Debug)]
pub struct Staged {
    dir: Location,
    version: String,
    folder: Location,
}

/// Every object below `prefix`.
async fn list(location: &Location) -> Result<Vec<object_store::ObjectMeta>> {
    location
        .store
        .list(Some(&location.path))
        .try_collect()
        .await
        .map_err(|e| DataFusionError::Execution(format!("listing {}: {e}", location.url)))
}

async fn delete(location: &Location, path: &Path) -> Result<()> {
    match location.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(DataFusionError::Execution(format!(
            "removing {path} from {}: {e}",
            location.url
        ))),
    }
}

impl Staged {
    /// Starts version `v-<run_id>` of the output folder `dir`, removing
    /// what an earlier attempt of the same run left there.
    pub async fn start(dir: Location, run_id: &str) -> Result<Self> {
        let version = format!("v-{run_id}");
        let folder = dir.child(&version);
        for object in list(&folder).await? {
            delete(&folder, &object.location).await?;
        }
        Ok(Self {
            dir,
            version,
            folder,
        })
    }

    /// Like [`Staged::start`], for an output whose shards are made the
    /// same way in every run and are worth keeping (cutouts): also returns
    /// the folders of earlier versions, committed or left by a killed run,
    /// newest first, where a writer may find a shard of the same name to
    /// keep rows from. Files directly in `dir` (a layout older than
    /// versions) come last. Nothing here is removed before the commit.
    pub async fn start_resumable(dir: Location, run_id: &str) -> Result<(Self, Vec<String>)> {
        let staged = Self::start(dir, run_id).await?;
        let mut newest: BTreeMap<String, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
        let mut loose = false;
        for object in list(&staged.dir).await? {
            let Some(relative) = object.location.prefix_match(&staged.dir.path) else {
                continue;
            };
            let parts: Vec<_> = relative.map(|p| p.as_ref().to_string()).collect();
            match parts.as_slice() {
                [file] => loose |= file.ends_with(".parquet"),
                [version, ..] if version.starts_with("v-") && *version != staged.version => {
                    let at = newest
                        .entry(version.clone())
                        .or_insert(object.last_modified);
                    *at = (*at).max(object.last_modified);
                }
                _ => {}
            }
        }
        let mut versions: Vec<_> = newest.into_iter().collect();
        versions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let mut earlier: Vec<String> = versions
            .into_iter()
            .map(|(version, _)| staged.dir.child(&version).url)
            .collect();
        if loose {
            earlier.push(staged.dir.url.clone());
        }
        Ok((staged, earlier))
    }

    /// Where the writer puts the shards.
    pub fn folder_url(&self) -> &str {
        &self.folder.url
    }

    pub fn dir(&self) -> &Location {
        &self.dir
    }

    /// Makes exactly the shards named in `summaries` the folder's current
    /// version (see the module documentation). `schema` is the shards'
    /// schema, for the empty file of a version with no rows.
    pub async fn commit(self, summaries: &[ShardSummary], schema: &SchemaRef) -> Result<Committed> {
        let named: BTreeMap<&str, &ShardSummary> = summaries
            .iter()
            .filter_map(|s| s.shard.as_deref().map(|name| (name, s)))
            .collect();
        // Orphans first: shards of attempts whose summaries never arrived.
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        for object in list(&self.folder).await? {
            let name = object.location.filename().unwrap_or_default().to_string();
            if named.contains_key(name.as_str()) {
                found.insert(name, object.size);
            } else {
                tracing::info!(orphan = %object.location, "removing a shard no summary names");
                delete(&self.folder, &object.location).await?;
            }
        }
        let mut files = Vec::with_capacity(named.len());
        for (name, summary) in &named {
            match found.get(*name) {
                Some(&size) if size == summary.bytes => {}
                Some(&size) => {
                    return Err(DataFusionError::Execution(format!(
                        "shard {}/{name} holds {size} bytes, its writer reported {}",
                        self.folder.url, summary.bytes
                    )))
                }
                None => {
                    return Err(DataFusionError::Execution(format!(
                        "shard {}/{name} was reported written but is not there",
                        self.folder.url
                    )))
                }
            }
            files.push(CommittedFile {
                path: format!("{}/{name}", self.version),
                rows: summary.rows_written,
                bytes: summary.bytes,
            });
        }
        if files.is_empty() {
            files.push(self.write_empty(schema).await?);
        }
        crash_point("before-success");

        let manifest = Committed {
            format: FORMAT.into(),
            version: self.version.clone(),
            rows: files.iter().map(|f| f.rows).sum(),
            files,
            committed_at: chrono::Utc::now().to_rfc3339(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| DataFusionError::Internal(format!("manifest: {e}")))?;
        self.dir
            .child(SUCCESS)
            .put_bytes(json)
            .await
            .map_err(|e| DataFusionError::Execution(format!("committing {}: {e}", self.dir.url)))?;
        crash_point("after-success");

        self.remove_all_but_current().await?;
        Ok(manifest)
    }

    async fn write_empty(&self, schema: &SchemaRef) -> Result<CommittedFile> {
        let mut buffer = Vec::new();
        let writer = parquet::arrow::ArrowWriter::try_new(
            &mut buffer,
            Arc::clone(schema),
            Some(crate::exec::properties(schema)),
        )?;
        writer.close()?;
        let bytes = buffer.len() as u64;
        self.folder
            .child(EMPTY_SHARD)
            .put_bytes(buffer)
            .await
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.folder.url)))?;
        Ok(CommittedFile {
            path: format!("{}/{EMPTY_SHARD}", self.version),
            rows: 0,
            bytes,
        })
    }

    /// Step 4: older versions, crashed runs' shards, files of older layouts.
    async fn remove_all_but_current(&self) -> Result<()> {
        let marker = self.dir.child(SUCCESS).path;
        let mut removed = false;
        for object in list(&self.dir).await? {
            let keep =
                object.location == marker || object.location.prefix_matches(&self.folder.path);
            if !keep {
                delete(&self.dir, &object.location).await?;
                if !removed {
                    removed = true;
                    crash_point("mid-cleanup");
                }
            }
        }
        remove_local_dirs(&self.dir, &self.version, Leftovers::Trees);
        Ok(())
    }

    /// Removes the version folder after a failed stage.
    pub async fn abort(self) -> Result<()> {
        for object in list(&self.folder).await? {
            delete(&self.folder, &object.location).await?;
        }
        if let Some(path) = self.folder.to_file_path() {
            let _ = std::fs::remove_dir_all(path);
        }
        remove_local_dirs(&self.dir, "", Leftovers::EmptyTrees);
        Ok(())
    }
}

/// Which local folders [`remove_local_dirs`] removes.
#[derive(Clone, Copy, PartialEq)]
enum Leftovers {
    /// Whole trees: once every object but the current version's is
    /// deleted, what remains are emptied folders and the staging files
    /// (`name#N`) object_store leaves when a process is killed mid-write,
    /// which listings do not show.
    Trees,
    /// Empty trees only.
    EmptyTrees,
}

/// On a local file system, removes the folders of `dir` other than `keep`
/// (which a local file system keeps after their objects are deleted), so
/// the folder shows only what readers see.
fn remove_local_dirs(dir: &Location, keep: &str, leftovers: Leftovers) {
    let Some(path) = dir.to_file_path() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && entry.file_name().to_string_lossy() != keep {
            match leftovers {
                Leftovers::Trees => {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                // remove_dir fails on anything with files.
                Leftovers::EmptyTrees => remove_empty_tree(&entry.path()),
            }
        }
    }
}

fn remove_empty_tree(path: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::runtime_env::RuntimeEnv;

    use crate::summary::Counts;

    fn folder(root: &std::path::Path) -> Location {
        let runtime = RuntimeEnv::default();
        Location::resolve(&runtime, &format!("{}/", root.display()))
            .unwrap()
            .child("out")
    }

    fn summary(shard: &str, bytes: u64, rows: u64) -> ShardSummary {
        ShardSummary {
            shard: Some(shard.into()),
            bytes,
            rows_in: rows,
            rows_written: rows,
            counts: Counts::default(),
            attempt: None,
            seconds: 0.0,
        }
    }

    /// Writes `len` bytes at `path` below `dir`.
    async fn put(dir: &Location, path: &str, len: usize) {
        dir.child(path).put_bytes(vec![1; len]).await.unwrap();
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]))
    }

    /// A shard of an attempt whose summary never arrived (the cluster ran
    /// the task again) is not committed, and is removed.
    #[tokio::test]
    async fn the_commit_takes_exactly_the_summarised_shards() {
        let root = tempfile::tempdir().unwrap();
        let dir = folder(root.path());
        let staged = Staged::start(dir.clone(), "r1").await.unwrap();
        let version = dir.child("v-r1");
        version
            .child("part-a.parquet")
            .put_bytes(vec![1; 5])
            .await
            .unwrap();
        version
            .child("part-b.parquet")
            .put_bytes(vec![1; 7])
            .await
            .unwrap();
        let manifest = staged
            .commit(&[summary("part-a.parquet", 5, 3)], &schema())
            .await
            .unwrap();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].path, "v-r1/part-a.parquet");
        assert_eq!(manifest.rows, 3);
        assert!(root.path().join("out/v-r1/part-a.parquet").is_file());
        assert!(!root.path().join("out/v-r1/part-b.parquet").exists());
        assert_eq!(committed(&dir).await.unwrap(), Some(manifest));
    }

    /// A new version replaces the old one only at the manifest; a version
    /// whose shard is short is refused and the old one stays current.
    #[tokio::test]
    async fn a_failed_commit_keeps_the_previous_version() {
        let root = tempfile::tempdir().unwrap();
        let dir = folder(root.path());
        let first = Staged::start(dir.clone(), "r1").await.unwrap();
        put(&dir, "v-r1/part-a.parquet", 5).await;
        let old = first
            .commit(&[summary("part-a.parquet", 5, 3)], &schema())
            .await
            .unwrap();

        let second = Staged::start(dir.clone(), "r2").await.unwrap();
        put(&dir, "v-r2/part-a.parquet", 4).await;
        let err = second
            .commit(&[summary("part-a.parquet", 5, 3)], &schema())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("v-r2/part-a.parquet") && err.contains("4 bytes"),
            "{err}"
        );
        assert_eq!(committed(&dir).await.unwrap(), Some(old));

        let third = Staged::start(dir.clone(), "r3").await.unwrap();
        let empty = third.commit(&[], &schema()).await.unwrap();
        assert_eq!(empty.rows, 0);
        assert_eq!(empty.files[0].path, "v-r3/part-empty.parquet");
        let mut left: Vec<String> = std::fs::read_dir(root.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["_SUCCESS", "v-r3"]);
    }

    /// A run killed mid-write leaves object_store's staging file, which no
    /// listing shows; the next commit still removes that run's folder, and
    /// an aborted stage removes its own.
    #[tokio::test]
    async fn staging_files_of_a_killed_run_go_with_the_next_commit() {
        let root = tempfile::tempdir().unwrap();
        let dir = folder(root.path());
        let killed = root.path().join("out/v-r1");
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::write(killed.join("part-a.parquet#1"), [1; 3]).unwrap();
        let staged = Staged::start(dir.clone(), "r2").await.unwrap();
        put(&dir, "v-r2/part-a.parquet", 5).await;
        staged
            .commit(&[summary("part-a.parquet", 5, 3)], &schema())
            .await
            .unwrap();
        assert!(!killed.exists(), "the killed run's folder is left");

        let aborted = Staged::start(dir.clone(), "r3").await.unwrap();
        let own = root.path().join("out/v-r3");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("part-b.parquet#2"), [1; 3]).unwrap();
        aborted.abort().await.unwrap();
        assert!(!own.exists(), "the aborted run's folder is left");
        assert!(root.path().join("out/v-r2/part-a.parquet").is_file());
    }

    /// A resumable start names every earlier version, committed or left by
    /// a killed run, newest first, then loose files of an older layout; it
    /// removes none of them, and the commit removes them all.
    #[tokio::test]
    async fn a_resumable_start_lists_earlier_versions_newest_first() {
        let root = tempfile::tempdir().unwrap();
        let dir = folder(root.path());
        let staged = Staged::start(dir.clone(), "r1").await.unwrap();
        put(&dir, "v-r1/shard-000000.parquet", 5).await;
        staged
            .commit(&[summary("shard-000000.parquet", 5, 1)], &schema())
            .await
            .unwrap();
        // Files written later have later modification times.
        std::thread::sleep(std::time::Duration::from_millis(20));
        put(&dir, "v-r2/shard-000001.parquet", 3).await;
        put(&dir, "shard-000002.parquet", 2).await;

        let (staged, earlier) = Staged::start_resumable(dir.clone(), "r3").await.unwrap();
        let names: Vec<&str> = earlier
            .iter()
            .map(|url| url.trim_end_matches('/').rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, ["v-r2", "v-r1", "out"]);
        assert!(root.path().join("out/v-r1/shard-000000.parquet").is_file());

        put(&dir, "v-r3/shard-000000.parquet", 4).await;
        staged
            .commit(&[summary("shard-000000.parquet", 4, 1)], &schema())
            .await
            .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(root.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["_SUCCESS", "v-r3"]);
    }
}
