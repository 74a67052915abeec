//! The `sweeps` table provider.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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

use crate::bad_files::{OnBadFile, SkippedFile};
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
    /// Files at the location left out because they could not be read.
    skipped: Arc<Vec<SkippedFile>>,
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
    /// Lists the files at `location`, reads their headers and unifies their
    /// schemas; a file that cannot be read is an error.
    pub async fn open(
        runtime: &RuntimeEnv,
        location: &str,
        options: SweepsOptions,
    ) -> Result<Self> {
        Self::open_with(runtime, location, options, OnBadFile::Fail).await
    }

    /// As [`open`](Self::open), with `on_bad_file` deciding what a file
    /// whose header cannot be read, or whose columns cannot join the
    /// others', does to the table: fail, or be left out and listed in
    /// [`skipped`](Self::skipped).
    pub async fn open_with(
        runtime: &RuntimeEnv,
        location: &str,
        options: SweepsOptions,
        on_bad_file: OnBadFile,
    ) -> Result<Self> {
        let listed = list_fits_files(runtime, location).await?;
        let mut skipped = listed.bad;
        if on_bad_file == OnBadFile::Fail {
            if let Some(first) = skipped.first() {
                let more = match skipped.len() {
                    1 => String::new(),
                    n => format!(" (and {} more unreadable files)", n - 1),
                };
                return Err(DataFusionError::External(
                    format!(
                        "{}{more}",
                        crate::bad_file_message(&first.file, &first.error)
                    )
                    .into(),
                ));
            }
            let file_schema = unify_schemas(
                listed
                    .files
                    .iter()
                    .map(|(file, layout)| (file.url.as_str(), scan_schema(layout))),
            )?;
            let files = listed.files.into_iter().map(|(file, _)| file).collect();
            return Ok(Self::from_parts(
                location.to_string(),
                Arc::new(files),
                file_schema,
                options,
            ));
        }
        // One file at a time against the union so far: a file whose columns
        // cannot join it is left out, not the files before it.
        let mut unified: Option<SchemaRef> = None;
        let mut files = Vec::with_capacity(listed.files.len());
        for (file, layout) in listed.files {
            let schema = scan_schema(&layout);
            let next = match &unified {
                None => unify_schemas([(file.url.as_str(), schema)]),
                Some(so_far) => {
                    let without_row_index = Arc::new(Schema::new(
                        so_far.fields()[..so_far.fields().len() - 1].to_vec(),
                    ));
                    unify_schemas([
                        ("the files before it", without_row_index),
                        (file.url.as_str(), schema),
                    ])
                }
            };
            match next {
                Ok(schema) => {
                    unified = Some(schema);
                    files.push(file);
                }
                Err(e) => skipped.push(SkippedFile {
                    file: file.url.clone(),
                    error: e.to_string(),
                }),
            }
        }
        let Some(file_schema) = unified else {
            let first = skipped
                .first()
                .map(|s| crate::bad_file_message(&s.file, &s.error));
            return Err(DataFusionError::Plan(format!(
                "none of the {} FITS files at sweeps location '{location}' can be read; the first: {}",
                skipped.len(),
                first.unwrap_or_default()
            )));
        };
        skipped.sort_by(|a, b| a.file.cmp(&b.file));
        let mut table =
            Self::from_parts(location.to_string(), Arc::new(files), file_schema, options);
        table.skipped = Arc::new(skipped);
        Ok(table)
    }

    /// The table without the file `bad` names (found unreadable while
    /// scanning), which joins the skipped files. `None` if the table has no
    /// such file; an error if no file would be left.
    pub fn without(&self, bad: SkippedFile) -> Result<Option<Self>> {
        if !self.files.iter().any(|f| f.url == bad.file) {
            return Ok(None);
        }
        let files: Vec<SweepFile> = self
            .files
            .iter()
            .filter(|f| f.url != bad.file)
            .cloned()
            .collect();
        if files.is_empty() {
            return Err(DataFusionError::Plan(format!(
                "no readable sweep files left at '{}': the last one, {}",
                self.location,
                crate::bad_file_message(&bad.file, &bad.error)
            )));
        }
        let mut skipped = self.skipped.as_ref().clone();
        skipped.push(bad);
        skipped.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Some(Self {
            files: Arc::new(files),
            skipped: Arc::new(skipped),
            ..self.clone()
        }))
    }

    /// The files left out of the table, each with its error.
    pub fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
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
            skipped: Arc::new(Vec::new()),
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
