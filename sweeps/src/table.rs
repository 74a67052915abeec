//! The `sweeps` table provider.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::listing::{list_fits_files, SweepFile};
use crate::location::ObjectUrl;
use crate::schema::SWEEP_FILE_COLUMN;
use crate::schema::{scan_schema, unify_schemas};
use crate::source::{plan_chunks, FitsSource};

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
/// `row_index` and `sweep_file` pointing every row back to its source.
#[derive(Debug, Clone)]
pub struct SweepsTable {
    location: String,
    files: Arc<Vec<SweepFile>>,
    /// The files' unified columns and `row_index`, then `sweep_file`.
    table_schema: TableSchema,
    options: SweepsOptions,
}

/// The table schema of a scan over files with the given file schema.
pub fn sweeps_table_schema(file_schema: SchemaRef) -> TableSchema {
    TableSchema::builder(file_schema)
        .with_table_partition_cols(vec![Arc::new(Field::new(
            SWEEP_FILE_COLUMN,
            DataType::Utf8,
            false,
        ))])
        .build()
}

/// Splits a file's URL into its store and object path.
pub(crate) fn split_url(url: &str) -> Result<(ObjectStoreUrl, Path)> {
    let at = ObjectUrl::parse(url)?;
    Ok((at.store_url(), at.path().clone()))
}

/// A byte range of the object at `path`, kept as it is: building it from a
/// string would escape `#`, `%`, `?` and `*` in the name a second time.
pub(crate) fn file_range(path: Path, size: u64, range: Option<(i64, i64)>) -> PartitionedFile {
    let mut file = match range {
        Some((start, end)) => PartitionedFile::new_with_range(String::new(), size, start, end),
        None => PartitionedFile::new(String::new(), size),
    };
    file.object_meta.location = path;
    file
}

impl SweepsTable {
    /// Lists the files at `location`, reads their headers and unifies their schemas.
    pub async fn open(
        runtime: &RuntimeEnv,
        location: &str,
        options: SweepsOptions,
    ) -> Result<Self> {
        let listed = list_fits_files(runtime, location).await?;
        let file_schema = unify_schemas(
            listed
                .iter()
                .map(|(file, layout)| (file.url.as_str(), scan_schema(layout))),
        )?;
        let files = listed.into_iter().map(|(file, _)| file).collect();
        Ok(Self::from_parts(
            location.to_string(),
            Arc::new(files),
            file_schema,
            options,
        ))
    }

    /// Rebuilds a table from what a plan carried (see the codecs).
    pub fn from_parts(
        location: String,
        files: Arc<Vec<SweepFile>>,
        file_schema: SchemaRef,
        options: SweepsOptions,
    ) -> Self {
        Self {
            location,
            files,
            table_schema: sweeps_table_schema(file_schema),
            options,
        }
    }

    /// The schema of the files (with `row_index`), without `sweep_file`.
    pub fn file_schema(&self) -> &SchemaRef {
        self.table_schema.file_schema()
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
        Arc::clone(self.table_schema.table_schema())
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
        let Some(first) = self.files.first() else {
            return Err(DataFusionError::Plan(format!(
                "no files at '{}'",
                self.location
            )));
        };
        let (store_url, _) = split_url(&first.url)?;
        let mut groups = Vec::new();
        for chunk in plan_chunks(&self.files, self.options.target_partition_bytes) {
            let file = &self.files[chunk.file];
            let (file_store, path) = split_url(&file.url)?;
            if file_store != store_url {
                return Err(DataFusionError::Plan(format!(
                    "sweeps files must share one store: {} and {}",
                    first.url, file.url
                )));
            }
            let start = file.data_offset + chunk.start * file.row_len;
            let end = file.data_offset + chunk.end * file.row_len;
            let mut part = file_range(path, file.size, Some((start as i64, end as i64)));
            part.partition_values = vec![ScalarValue::Utf8(Some(file.file_name()))];
            groups.push(FileGroup::new(vec![part]));
        }
        let source = Arc::new(FitsSource::new(
            self.table_schema.clone(),
            self.options.batch_rows,
        ));
        let config = FileScanConfigBuilder::new(store_url, source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
