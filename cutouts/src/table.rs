//! `CutoutsTable`: scanning it runs a shard job (making cutouts, checking
//! them). Each row it yields is one shard's summary; the shards themselves
//! are written by the process that scans the shard (an executor on a
//! cluster).
//!
//! The plan is a Parquet scan of the input files, one file per partition,
//! under [`ShardExec`]. A cluster gives each task its own slice of
//! the scan's file groups, so each shard is made by one task.

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
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::exec::{ShardExec, ShardJob};

/// Rows per record batch when scanning a stage's input files.
pub const SCAN_BATCH_ROWS: usize = 128;

/// One target file: its object path inside the store, and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    pub path: String,
    pub size: u64,
}

/// The cutout stage as a table of shard summaries.
#[derive(Debug, Clone)]
pub struct CutoutsTable {
    job: ShardJob,
    store_url: String,
    files: Vec<TargetFile>,
    targets_schema: SchemaRef,
}

impl CutoutsTable {
    pub fn new(
        job: ShardJob,
        store_url: String,
        files: Vec<TargetFile>,
        targets_schema: SchemaRef,
    ) -> Self {
        Self {
            job,
            store_url,
            files,
            targets_schema,
        }
    }

    pub fn job(&self) -> &ShardJob {
        &self.job
    }
    pub fn store_url(&self) -> &str {
        &self.store_url
    }
    pub fn files(&self) -> &[TargetFile] {
        &self.files
    }
    pub fn targets_schema(&self) -> &SchemaRef {
        &self.targets_schema
    }
}

#[async_trait]
impl TableProvider for CutoutsTable {
    fn schema(&self) -> SchemaRef {
        self.job.summary_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            return Err(DataFusionError::Plan("the stage has no input files".into()));
        }
        let groups = self
            .files
            .iter()
            .map(|f| FileGroup::new(vec![PartitionedFile::new(f.path.clone(), f.size)]))
            .collect();
        let source = Arc::new(ParquetSource::new(Arc::clone(&self.targets_schema)));
        // Batches of 128 rows: a batch of cutouts is 128 images (15 MB), not
        // the default 8192 (1 GB).
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.store_url)?, source)
            .with_file_groups(groups)
            .with_batch_size(Some(SCAN_BATCH_ROWS))
            .build();
        let plan: Arc<dyn ExecutionPlan> = Arc::new(ShardExec::new(
            DataSourceExec::from_data_source(config),
            self.job.clone(),
        ));
        let schema = self.job.summary_schema();
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
