//! One engine for every stage: DataFusion in-process (the default) or a
//! Ballista cluster, with the same plans, functions and tables either way.

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use lenspipe_sweeps::{SweepsOptions, SweepsTable};

use crate::config::Config;
use crate::error::Result;
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

pub struct Engine {
    pub kind: EngineKind,
    pub ctx: SessionContext,
}

impl Engine {
    pub async fn connect(kind: EngineKind) -> Result<Self> {
        let ctx = match &kind {
            EngineKind::Embedded => {
                let config =
                    lenspipe_extensions::tune(SessionConfig::new().with_information_schema(true));
                SessionContext::new_with_state(lenspipe_extensions::session_state(config)?)
            }
            EngineKind::Cluster(url) => {
                let state = lenspipe_extensions::session_state(
                    lenspipe_extensions::cluster_session_config(),
                )?;
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
    pub async fn register_sweeps(&self, config: &Config) -> Result<Arc<SweepsTable>> {
        let options = SweepsOptions {
            target_partition_bytes: config.scan.target_partition_mib.max(1) * 1024 * 1024,
            batch_rows: config.scan.batch_rows.max(1),
        };
        let table =
            Arc::new(SweepsTable::open(&self.runtime(), &config.inputs.sweeps, options).await?);
        self.ctx.deregister_table("sweeps")?;
        self.ctx.register_table("sweeps", table.clone())?;
        Ok(table)
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
