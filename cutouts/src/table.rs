//! `ShardTable`: scanning it runs a shard job (making cutouts, checking
//! them). Each row it yields is one shard's summary; the shards themselves
//! are written by the process that runs the shard (an executor on a
//! cluster).
//!
//! Its input is either a logical plan (the cutout targets, with their
//! shard column, planned by the client and never collected by it) or a
//! list of Parquet files, one shard per file (the cutout shards, for the
//! checks).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::exec::{ShardExec, ShardWork};

/// Rows per record batch when scanning a stage's input files.
pub const SCAN_BATCH_ROWS: usize = 128;

/// One target file: its object path inside the store, and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    pub path: String,
    pub size: u64,
}

/// What a shard job reads.
#[derive(Debug, Clone)]
pub enum ShardInput {
    /// Rows carrying a shard column, in any order and partitioning: the
    /// job asks the planner to bring each shard's rows together, sorted.
    Plan(LogicalPlan),
    /// Parquet files, one shard per file, each read by one task.
    Files {
        store_url: String,
        files: Vec<TargetFile>,
        schema: SchemaRef,
    },
}

/// A shard job (the cutouts, or their checks) as a table of shard summaries.
#[derive(Debug, Clone)]
pub struct ShardTable {
    work: Arc<dyn ShardWork>,
    input: ShardInput,
}

impl ShardTable {
    pub fn new(work: Arc<dyn ShardWork>, input: ShardInput) -> Self {
        Self { work, input }
    }

    pub fn work(&self) -> &Arc<dyn ShardWork> {
        &self.work
    }

    pub fn input(&self) -> &ShardInput {
        &self.input
    }
}

/// A Parquet scan of `files`, one file per partition, in small batches: a
/// batch of cutouts is 128 images (15 MB), not the default 8192 (1 GB).
fn files_scan(
    store_url: &str,
    files: &[TargetFile],
    schema: &SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    if files.is_empty() {
        return Err(DataFusionError::Plan("the stage has no input files".into()));
    }
    let groups = files
        .iter()
        .map(|f| FileGroup::new(vec![PartitionedFile::new(f.path.clone(), f.size)]))
        .collect();
    let source = Arc::new(ParquetSource::new(Arc::clone(schema)));
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(store_url)?, source)
        .with_file_groups(groups)
        .with_batch_size(Some(SCAN_BATCH_ROWS))
        .build();
    Ok(DataSourceExec::from_data_source(config))
}

#[async_trait]
impl TableProvider for ShardTable {
    fn schema(&self) -> SchemaRef {
        lenspipe_sinks::summary::summary_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = match &self.input {
            ShardInput::Plan(plan) => state.create_physical_plan(plan).await?,
            ShardInput::Files {
                store_url,
                files,
                schema,
            } => files_scan(store_url, files, schema)?,
        };
        let plan: Arc<dyn ExecutionPlan> = Arc::new(ShardExec::new(input, Arc::clone(&self.work)));
        let schema = lenspipe_sinks::summary::summary_schema();
        match projection {
            Some(columns) if *columns != (0..schema.fields().len()).collect::<Vec<_>>() => {
                let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
                    .iter()
                    .map(|&i| {
                        let name = schema.field(i).name().clone();
                        (
                            Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                            name,
                        )
                    })
                    .collect();
                Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
            }
            _ => Ok(plan),
        }
    }
}
