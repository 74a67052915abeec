//! The `sweeps` table provider.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::exec::{plan_chunks, FitsScanExec};
use crate::listing::{list_fits_files, SweepFile};
use crate::schema::unify_schemas;

/// How the scan cuts files into partitions and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepsOptions {
    /// Row bytes per partition (a range request series of one file).
    pub target_partition_bytes: u64,
    /// Rows per record batch, and so per range request.
    pub batch_rows: usize,
}

impl Default for SweepsOptions {
    fn default() -> Self {
        Self {
            target_partition_bytes: 64 * 1024 * 1024,
            batch_rows: 8192,
        }
    }
}

/// Many FITS catalog files as one table, with the virtual columns
/// `sweep_file` and `row_index` pointing every row back to its source.
#[derive(Debug, Clone)]
pub struct SweepsTable {
    location: String,
    files: Arc<Vec<SweepFile>>,
    schema: SchemaRef,
    options: SweepsOptions,
}

impl SweepsTable {
    /// Lists the files at `location`, reads their headers and unifies their schemas.
    pub async fn open(runtime: &RuntimeEnv, location: &str, options: SweepsOptions) -> Result<Self> {
        let listed = list_fits_files(runtime, location).await?;
        let schema = unify_schemas(
            listed
                .iter()
                .map(|(file, layout)| (file.url.as_str(), layout.arrow_schema())),
        )?;
        let files = listed.into_iter().map(|(file, _)| file).collect();
        Ok(Self::from_parts(location.to_string(), Arc::new(files), schema, options))
    }

    /// Rebuilds a table from what a plan carried (see the codecs).
    pub fn from_parts(
        location: String,
        files: Arc<Vec<SweepFile>>,
        schema: SchemaRef,
        options: SweepsOptions,
    ) -> Self {
        Self { location, files, schema, options }
    }

    pub fn location(&self) -> &str {
        &self.location
    }
    pub fn files(&self) -> &Arc<Vec<SweepFile>> {
        &self.files
    }
    pub fn options(&self) -> SweepsOptions {
        self.options
    }
    /// Total rows over all files, from the headers.
    pub fn total_rows(&self) -> u64 {
        self.files.iter().map(|f| f.nrows).sum()
    }
}

#[async_trait]
impl TableProvider for SweepsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let chunks = plan_chunks(&self.files, self.options.target_partition_bytes);
        Ok(Arc::new(FitsScanExec::try_new(
            Arc::clone(&self.files),
            chunks,
            Arc::clone(&self.schema),
            projection,
            self.options.batch_rows,
            limit,
        )?))
    }
}
