//! One engine for every stage: DataFusion in-process (the default) or a
//! Ballista cluster, with the same plans, functions and tables either way.

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use lenspipe_sweeps::{find_bad_file, OnBadFile, SweepsOptions, SweepsTable};

use crate::config::{Config, EngineSettings};
use crate::error::{Error, Result};
use crate::sink::Location;

/// Where plans run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineKind {
    Embedded,
    /// A Ballista scheduler, `df://host:port`.
    Cluster(String),
}

impl EngineKind {
    pub fn from_flag(scheduler: Option<&str>) -> Self {
        match scheduler {
            Some(url) => Self::Cluster(url.to_string()),
            None => Self::Embedded,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "embedded".into(),
            Self::Cluster(url) => url.clone(),
        }
    }
}

/// The task slots of a cluster: the sum of its executors' vcores, from the
/// scheduler's REST API (served on its gRPC port). Plans on a cluster take
/// one partition per slot, so each stage's tasks run in one wave. Ballista's
/// default is 16 partitions whatever the cluster, and every task beyond the
/// free slots waits for an executor's next poll (about 50 ms each): on two
/// executors of two cores that was most of a small job's time. `None` (and
/// Ballista's default) when the scheduler does not answer or has no
/// executors yet.
async fn cluster_task_slots(url: &str) -> Option<usize> {
    let address = url.strip_prefix("df://")?;
    let answer = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok()?
        .get(format!("http://{address}/api/executors"))
        .send()
        .await
        .ok()?;
    let executors: Vec<serde_json::Value> =
        serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
    let slots: u64 = executors
        .iter()
        .filter_map(|e| e.pointer("/specification/vcores")?.as_u64())
        .sum();
    tracing::debug!(slots, executors = executors.len(), "cluster task slots");
    (slots > 0).then_some(slots as usize)
}

pub struct Engine {
    pub kind: EngineKind,
    pub ctx: SessionContext,
}

impl Engine {
    pub async fn connect(kind: EngineKind) -> Result<Self> {
        Self::connect_with(kind, &EngineSettings::default()).await
    }

    /// Connects with the configuration's engine settings: in-process, a
    /// memory limit (`engine.memory_limit_mib`); a cluster's executors take
    /// theirs from their own command line (`--memory-pool-size`).
    pub async fn connect_with(kind: EngineKind, settings: &EngineSettings) -> Result<Self> {
        let memory_limit = settings
            .memory_limit_mib
            .map(|mib| usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX));
        let ctx = match &kind {
            EngineKind::Embedded => {
                let config =
                    lenspipe_extensions::tune(SessionConfig::new().with_information_schema(true));
                SessionContext::new_with_state(
                    lenspipe_extensions::session_state_with_memory_limit(config, memory_limit)?,
                )
            }
            EngineKind::Cluster(url) => {
                let mut config = lenspipe_extensions::cluster_session_config();
                if let Some(slots) = cluster_task_slots(url).await {
                    config = config.with_target_partitions(slots);
                }
                let state = lenspipe_extensions::session_state(config)?;
                let ctx = SessionContext::remote_with_state(url, state).await?;
                // Ballista's upgrade of the state resets the scalar functions
                // to its defaults; ours are registered again on top.
                for udf in lenspipe_udfs::all() {
                    ctx.register_udf(udf.as_ref().clone());
                }
                ctx
            }
        };
        Ok(Self { kind, ctx })
    }

    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.ctx.runtime_env()
    }

    /// Registers the sweep files of the configuration as table `sweeps`.
    /// Under `scan.on_bad_file: skip` the files that cannot be read are left
    /// out and listed in the table's `skipped()`.
    pub async fn register_sweeps(&self, config: &Config) -> Result<Arc<SweepsTable>> {
        let options = SweepsOptions {
            target_partition_bytes: config.scan.target_partition_mib.max(1) * 1024 * 1024,
            batch_rows: config.scan.batch_rows.max(1),
        };
        let table = SweepsTable::open_with(
            &self.runtime(),
            &config.inputs.sweeps,
            options,
            config.scan.on_bad_file,
        )
        .await
        .map_err(|e| with_skip_hint(e.into(), config))?;
        for skipped in table.skipped() {
            tracing::warn!(file = %skipped.file, error = %skipped.error, "sweep file left out (scan.on_bad_file: skip)");
        }
        self.use_sweeps(Arc::new(table))
    }

    fn use_sweeps(&self, table: Arc<SweepsTable>) -> Result<Arc<SweepsTable>> {
        self.ctx.deregister_table("sweeps")?;
        self.ctx.register_table("sweeps", table.clone())?;
        Ok(table)
    }

    /// After a job over `table` failed with `error`: under `scan.on_bad_file:
    /// skip`, when the error names a sweep file of the table (one that passed
    /// the header checks but failed while scanned), registers the table
    /// without it and returns it, for the job to run again from the start, so
    /// that no row of the file is half counted. Otherwise the error, with
    /// what to do.
    pub fn without_bad_file(
        &self,
        table: &SweepsTable,
        error: Error,
        config: &Config,
    ) -> Result<Arc<SweepsTable>> {
        if config.scan.on_bad_file != OnBadFile::Skip {
            return Err(with_skip_hint(error, config));
        }
        let Some(bad) = find_bad_file(&error.to_string()) else {
            return Err(error);
        };
        let (file, cause) = (bad.file.clone(), bad.error.clone());
        match table.without(bad)? {
            Some(next) => {
                tracing::warn!(file = %file, error = %cause, "sweep file left out while scanning (scan.on_bad_file: skip); running the stage again without it");
                self.use_sweeps(Arc::new(next))
            }
            None => Err(error),
        }
    }

    /// Checks that the output location takes a write, so that a run over a
    /// survey does not find out at its end.
    pub async fn check_writable(&self, output: &Location) -> Result<()> {
        let probe = output.child(".lenspipe-write-check");
        let outcome = match probe.put_bytes(Vec::new()).await {
            Ok(()) => object_store::ObjectStoreExt::delete(probe.store.as_ref(), &probe.path)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        outcome.map_err(|e| {
            Error::Input(format!(
                "output '{}' is not writable ({}); set output to a folder or bucket prefix \
                 this process can write (--set output=...)",
                output.url,
                one_line(&e.to_string())
            ))
        })
    }

    /// `error` of a job, explained when it is the memory limit's.
    pub fn explain(&self, error: Error, config: &Config) -> Error {
        let text = error.to_string();
        match (config.engine.memory_limit_mib, &self.kind) {
            (Some(mib), EngineKind::Embedded) if text.contains("Resources exhausted") => {
                Error::Other(format!(
                    "the job needs more memory than engine.memory_limit_mib = {mib} MiB allows: \
                     raise it, or lower scan.batch_rows ({})",
                    one_line(&text)
                ))
            }
            _ => error,
        }
    }

    /// Registers a small table that every process must be able to read:
    /// written as Parquet under `location` (executors cannot see this
    /// process's memory) and read back from there.
    pub async fn register_shared_batch(
        &self,
        name: &str,
        batch: RecordBatch,
        location: &Location,
    ) -> Result<()> {
        let file = location.child(&format!("{name}.parquet"));
        let mut buffer = Vec::new();
        {
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None)?;
            writer.write(&batch)?;
            writer.close()?;
        }
        file.put_bytes(buffer).await?;
        self.ctx.deregister_table(name)?;
        match self.kind {
            // In-process there is no need to read the file back.
            EngineKind::Embedded => {
                let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                self.ctx.register_table(name, Arc::new(table))?;
            }
            EngineKind::Cluster(_) => {
                self.ctx
                    .register_parquet(name, &file.url, ParquetReadOptions::default())
                    .await?;
            }
        }
        Ok(())
    }
}

/// The first line of `text`.
fn one_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// A bad sweep file's error under `scan.on_bad_file: fail`, with the way out.
fn with_skip_hint(error: Error, config: &Config) -> Error {
    match find_bad_file(&error.to_string()) {
        Some(bad) if config.scan.on_bad_file == OnBadFile::Fail => Error::Input(format!(
            "{}; to leave unreadable sweep files out and list them in run.json, \
             set scan.on_bad_file=skip",
            lenspipe_sweeps::bad_file_message(&bad.file, &bad.error)
        )),
        _ => error,
    }
}
