//! The physical scan: a DataFusion `FileSource` reading FITS rows by byte range.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use futures::StreamExt;
use lenspipe_fits::{BinTableLayout, RowDecoder};
use memmap2::{Mmap, MmapOptions};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::listing::{read_layout, SweepFile};
use crate::location::ObjectUrl;
use crate::schema::ROW_INDEX_COLUMN;

/// Range requests kept in flight per partition while the previous one decodes.
const PREFETCH: usize = 2;

/// Rows `start..end` of file number `file` of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanChunk {
    pub file: usize,
    pub start: u64,
    pub end: u64,
}

/// Splits every file into chunks of about `target_bytes` of row data.
pub(crate) fn plan_chunks(files: &[SweepFile], target_bytes: u64) -> Vec<ScanChunk> {
    let mut chunks = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let rows_per_chunk = (target_bytes / f.row_len.max(1)).max(1);
        let mut start = 0;
        while start < f.nrows {
            let end = (start + rows_per_chunk).min(f.nrows);
            chunks.push(ScanChunk {
                file: i,
                start,
                end,
            });
            start = end;
        }
    }
    chunks
}

/// The `FileSource` of FITS tables: DataFusion's file scan machinery (file
/// groups, byte ranges, projection, partition columns) drives it, so every
/// engine that understands a file scan (Ballista slicing file groups per
/// task among them) runs it correctly.
///
/// A `PartitionedFile` range is a byte range of the file; the opener reads
/// the rows that *start* inside it, so adjacent ranges never share a row.
#[derive(Clone)]
pub struct FitsSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    metrics: ExecutionPlanMetricsSet,
    batch_rows: usize,
    /// Map `file://` files instead of reading them through the store.
    map_local: bool,
}

impl FitsSource {
    /// `table_schema`: the unified file schema (with `row_index`) and the
    /// `sweep_file` partition column.
    pub fn new(table_schema: TableSchema, batch_rows: usize) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            metrics: ExecutionPlanMetricsSet::new(),
            batch_rows: batch_rows.max(1),
            map_local: true,
        }
    }

    /// Whether `file://` files are memory-mapped (the default) or read
    /// through the object store like remote ones.
    pub fn with_local_mapping(mut self, map_local: bool) -> Self {
        self.map_local = map_local;
        self
    }

    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// The projection as column indices of the table schema, when it is a
    /// plain column selection (the only kind this source accepts).
    pub fn projection_indices(&self) -> Option<Vec<usize>> {
        self.projection
            .source
            .iter()
            .map(|p| p.expr.downcast_ref::<Column>().map(|c| c.index()))
            .collect()
    }
}

impl fmt::Debug for FitsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitsSource")
            .field("batch_rows", &self.batch_rows)
            .finish()
    }
}

impl FileSource for FitsSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let projected = Arc::new(file_schema.project(&self.projection.file_indices)?);
        // `file://` is DataFusion's local file system store, rooted at `/`.
        let local = self.map_local && base_config.object_store_url.as_str().starts_with("file:");
        let opener = Arc::new(FitsOpener {
            store: object_store,
            local,
            store_url: base_config.object_store_url.clone(),
            schema: projected,
            batch_rows: self.batch_rows as u64,
            limit: base_config.limit,
            bytes_scanned: MetricBuilder::new(&self.metrics).counter("bytes_scanned", partition),
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, _batch_size: usize) -> Arc<dyn FileSource> {
        // Batches follow the range requests (`scan.batch_rows`), not the session batch size.
        Arc::new(self.clone())
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "fits"
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        // Only plain column selections: anything computed stays in a
        // ProjectionExec above, so the plan codec carries column indices only.
        if projection
            .iter()
            .any(|p| p.expr.downcast_ref::<Column>().is_none())
        {
            return Ok(None);
        }
        let mut source = self.clone();
        source.projection = SplitProjection::new(
            self.table_schema.file_schema(),
            &source.projection.source.try_merge(projection)?,
        );
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}
/// Where each output column of a batch comes from.
#[derive(Debug, Clone)]
enum OutputColumn {
    Decoded { index: usize, target: DataType },
    RowIndex,
}

/// Turns row bytes of one file into batches of the scan's schema.
#[derive(Debug)]
struct FileDecoder {
    decoder: Option<RowDecoder>,
    outputs: Vec<OutputColumn>,
    schema: SchemaRef,
}

impl FileDecoder {
    fn try_new(layout: Arc<BinTableLayout>, schema: &SchemaRef, url: &str) -> Result<Self> {
        let mut file_projection = Vec::new();
        let mut outputs = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name().as_str();
            let output = if name == ROW_INDEX_COLUMN {
                OutputColumn::RowIndex
            } else {
                let column = layout.column_index(name).ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "{url}: HDU {}: this file has no column '{name}', which the query needs",
                        layout.hdu
                    ))
                })?;
                file_projection.push(column);
                OutputColumn::Decoded {
                    index: file_projection.len() - 1,
                    target: field.data_type().clone(),
                }
            };
            outputs.push(output);
        }
        let views = schema
            .fields()
            .iter()
            .any(|f| f.data_type() == &DataType::Utf8View);
        let decoder = if file_projection.is_empty() {
            None
        } else {
            let decoder = RowDecoder::new(layout, Some(file_projection))
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Some(if views {
                decoder.with_string_views()
            } else {
                decoder
            })
        };
        Ok(Self {
            decoder,
            outputs,
            schema: Arc::clone(schema),
        })
    }

    fn needs_bytes(&self) -> bool {
        self.decoder.is_some()
    }

    fn decode(&self, bytes: &[u8], first_row: u64, rows: u64) -> Result<RecordBatch> {
        let decoded = match &self.decoder {
            Some(d) => Some(
                d.decode(bytes, first_row)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
            ),
            None => None,
        };
        let n = rows as usize;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.outputs.len());
        for output in &self.outputs {
            columns.push(match output {
                OutputColumn::Decoded { index, target } => {
                    let array = decoded
                        .as_ref()
                        .map(|b| Arc::clone(b.column(*index)))
                        .ok_or_else(|| DataFusionError::Internal("decoder missing".into()))?;
                    if array.data_type() == target {
                        array
                    } else {
                        cast(&array, target)?
                    }
                }
                OutputColumn::RowIndex => Arc::new(Int64Array::from_iter_values(
                    (first_row..first_row + rows).map(|r| r as i64),
                )),
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }
}

/// Executors see the same file in many tasks; its header is read once per process.
type LayoutCache = HashMap<(String, u64), Arc<BinTableLayout>>;
static LAYOUTS: LazyLock<Mutex<LayoutCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));
const LAYOUT_CACHE_ENTRIES: usize = 4096;

async fn cached_layout(
    store: &dyn ObjectStore,
    path: &Path,
    size: u64,
    url: &str,
) -> Result<Arc<BinTableLayout>> {
    let key = (url.to_string(), size);
    if let Some(layout) = LAYOUTS.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(layout);
    }
    let layout = Arc::new(read_layout(store, path, size, url).await?);
    if let Ok(mut map) = LAYOUTS.lock() {
        if map.len() >= LAYOUT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, Arc::clone(&layout));
    }
    Ok(layout)
}

/// Opens one byte range of one FITS file as a stream of batches.
struct FitsOpener {
    store: Arc<dyn ObjectStore>,
    /// The store is the local file system: map files rather than read them.
    local: bool,
    store_url: ObjectStoreUrl,
    /// The projected file schema (FITS columns and `row_index`).
    schema: SchemaRef,
    batch_rows: u64,
    limit: Option<usize>,
    /// Row bytes read (mapped or fetched), shown with the scan's metrics.
    bytes_scanned: Count,
}

/// The rows whose first byte lies in `range` (all rows without one).
fn rows_in_range(layout: &BinTableLayout, range: Option<(u64, u64)>) -> (u64, u64) {
    let Some((start, end)) = range else {
        return (0, layout.nrows);
    };
    let row_len = layout.row_len.max(1) as u64;
    let first_at = |byte: u64| {
        byte.saturating_sub(layout.data_offset)
            .div_ceil(row_len)
            .min(layout.nrows)
    };
    (first_at(start), first_at(end))
}

/// A local file whose rows are memory-mapped one batch at a time and
/// decoded straight from the page cache, with no read buffer to fill (or
/// zero) first. Mapping a batch, not the whole range, keeps the pages a
/// partition holds mapped (and counted in its RSS) to one batch.
struct LocalRows {
    file: std::fs::File,
    layout: Arc<BinTableLayout>,
    url: Arc<String>,
}

impl LocalRows {
    /// Opens the local file at `path`, after checking that it holds every
    /// row its header promises: a short file is an error naming it, never a
    /// SIGBUS. A file truncated by another process while it is mapped is
    /// outside what this guards.
    fn open(path: &Path, layout: Arc<BinTableLayout>, url: Arc<String>) -> Result<Self> {
        let fail = |what: String| DataFusionError::External(format!("{url}: {what}").into());
        let local = LocalFileSystem::new()
            .path_to_filesystem(path)
            .map_err(|e| fail(e.to_string()))?;
        let file = std::fs::File::open(&local).map_err(|e| fail(format!("opening: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| fail(format!("reading its size: {e}")))?
            .len();
        // The header was checked against the size listed when the table was
        // opened; the file may have shrunk since.
        layout
            .check_file_size(size)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Self { file, layout, url })
    }

    /// Maps `rows` rows from row `first` (which `open` checked are in the file).
    fn map(&self, first: u64, rows: u64) -> Result<Mmap> {
        let bytes = self
            .layout
            .row_byte_range(first..first.saturating_add(rows))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let fail = |what: String| DataFusionError::External(format!("{}: {what}", self.url).into());
        let len = usize::try_from(bytes.end - bytes.start)
            .map_err(|_| fail(format!("rows {first}.. do not fit in memory")))?;
        let mut options = MmapOptions::new();
        options.offset(bytes.start).len(len);
        // SAFETY: the mapping is read-only and the file holds these bytes
        // (checked in `open`). Another process truncating or rewriting the
        // file while it is mapped could still fault or change rows under us;
        // sweep files are written once, and that case is not guarded.
        unsafe { options.map(&self.file) }
            .map_err(|e| fail(format!("mapping bytes {}..{}: {e}", bytes.start, bytes.end)))
    }
}

impl FileOpener for FitsOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let local = self.local;
        let schema = Arc::clone(&self.schema);
        let (batch_rows, limit) = (self.batch_rows, self.limit);
        let path = file.object_meta.location.clone();
        let size = file.object_meta.size;
        let url = ObjectUrl::from_store_path(&self.store_url, &path).to_string();
        let range = file
            .range
            .as_ref()
            .map(|r| (r.start.max(0) as u64, r.end.max(0) as u64));
        // Every error of the file carries its URL in the one form a client
        // finds it by, to leave the file out of a retry (`scan.on_bad_file`).
        let mark_url = Arc::new(url.clone());
        let opened = open_range(
            store,
            local,
            schema,
            batch_rows,
            limit,
            path,
            size,
            url,
            range,
            self.bytes_scanned.clone(),
        );
        Ok(Box::pin(async move {
            let stream = opened.await.map_err(|e| mark(&mark_url, e))?;
            Ok(stream
                .map(move |batch| batch.map_err(|e| mark(&mark_url, e)))
                .boxed())
        }))
    }
}

/// `e`, marked as an error of the file at `url` unless it already is.
fn mark(url: &str, e: DataFusionError) -> DataFusionError {
    if crate::find_bad_file(&e.to_string()).is_some() {
        e
    } else {
        crate::bad_file_error(url, e)
    }
}

/// The batches of the rows of one file starting in `range`.
#[allow(clippy::too_many_arguments)]
async fn open_range(
    store: Arc<dyn ObjectStore>,
    local: bool,
    schema: SchemaRef,
    batch_rows: u64,
    limit: Option<usize>,
    path: Path,
    size: u64,
    url: String,
    range: Option<(u64, u64)>,
    bytes_scanned: Count,
) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
    let layout = cached_layout(store.as_ref(), &path, size, &url).await?;
    let (start, mut end) = rows_in_range(&layout, range);
    if let Some(limit) = limit {
        end = end.min(start.saturating_add(limit as u64));
    }
    let (data_offset, row_len) = (layout.data_offset, layout.row_len as u64);
    let decoder = Arc::new(FileDecoder::try_new(Arc::clone(&layout), &schema, &url)?);
    let ranges: Vec<(u64, u64)> = (start..end)
        .step_by(batch_rows.max(1) as usize)
        .map(|first| (first, (end - first).min(batch_rows)))
        .collect();
    let url = Arc::new(url);
    if local && decoder.needs_bytes() && start < end {
        let file = LocalRows::open(&path, layout, url)?;
        let stream = futures::stream::iter(ranges).map(move |(first, rows)| {
            let mapped = file.map(first, rows)?;
            bytes_scanned.add(mapped.len());
            decoder.decode(&mapped, first, rows)
        });
        return Ok(stream.boxed());
    }
    let stream = futures::stream::iter(ranges)
        .map(move |(first, rows)| {
            let (store, path, url, decoder) = (
                Arc::clone(&store),
                path.clone(),
                Arc::clone(&url),
                Arc::clone(&decoder),
            );
            async move {
                let bytes = if decoder.needs_bytes() {
                    let from = data_offset + first * row_len;
                    let to = from + rows * row_len;
                    store.get_range(&path, from..to).await.map_err(|e| {
                        DataFusionError::External(
                            format!("{url}: reading bytes {from}..{to}: {e}").into(),
                        )
                    })?
                } else {
                    bytes::Bytes::new()
                };
                Ok::<_, DataFusionError>((decoder, bytes, first, rows))
            }
        })
        .buffered(PREFETCH)
        .map(move |r| {
            r.and_then(|(decoder, bytes, first, rows)| {
                bytes_scanned.add(bytes.len());
                decoder.decode(&bytes, first, rows)
            })
        });
    Ok(stream.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::compute::concat_batches;
    use datafusion::common::ScalarValue;
    use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;
    use lenspipe_fits::{BinTableWriter, ColumnSpec};

    use crate::schema::scan_schema;
    use crate::table::{file_range, split_url, sweeps_table_schema, SweepsOptions, SweepsTable};

    const TYPES: [&[u8; 4]; 5] = [b"PSF ", b"REX\0", b"DEV ", b"EXP\0", b"    "];

    /// A sweep of `nrows` rows: TYPE (4A, padded), DEC (D), OBJID (J).
    fn write_sweep(path: &std::path::Path, nrows: u64) {
        let columns = vec![
            ColumnSpec::new("TYPE", "4A"),
            ColumnSpec::new("DEC", "D"),
            ColumnSpec::new("OBJID", "J"),
        ];
        let file = std::fs::File::create(path).unwrap();
        let mut w = BinTableWriter::new(file, columns, nrows, &[]).unwrap();
        let mut rows = Vec::new();
        for i in 0..nrows {
            rows.extend_from_slice(TYPES[i as usize % TYPES.len()]);
            rows.extend_from_slice(&(i as f64 - nrows as f64 / 2.0).to_be_bytes());
            rows.extend_from_slice(&(i as i32).to_be_bytes());
        }
        w.write_rows(&rows).unwrap();
        w.finish().unwrap();
    }

    async fn open_table(dir: &std::path::Path, batch_rows: usize) -> SweepsTable {
        let ctx = SessionContext::new();
        let options = SweepsOptions {
            target_partition_bytes: 64 << 20,
            batch_rows,
        };
        let location = format!("{}/", dir.display());
        SweepsTable::open(&ctx.runtime_env(), &location, options)
            .await
            .unwrap()
    }

    /// Scans every file of `table` in the byte ranges `cuts` gives each
    /// (fractions of the file), mapped or through the object store.
    async fn scan(table: &SweepsTable, map_local: bool, cuts: &[f64]) -> Result<RecordBatch> {
        let mut groups = Vec::new();
        let mut store_url = None;
        for file in table.files().iter() {
            let (url, path) = split_url(&file.url)?;
            store_url = Some(url);
            let mut bounds: Vec<i64> = cuts.iter().map(|c| (c * file.size as f64) as i64).collect();
            bounds.insert(0, 0);
            bounds.push(file.size as i64);
            for w in bounds.windows(2) {
                let mut part = file_range(path.clone(), file.size, Some((w[0], w[1])));
                part.partition_values = vec![ScalarValue::Utf8(Some(file.file_name()))];
                groups.push(FileGroup::new(vec![part]));
            }
        }
        let source = FitsSource::new(
            sweeps_table_schema(Arc::clone(table.file_schema())),
            table.options().batch_rows,
        )
        .with_local_mapping(map_local);
        let config = FileScanConfigBuilder::new(store_url.unwrap(), Arc::new(source))
            .with_file_groups(groups)
            .build();
        let exec = DataSourceExec::from_data_source(config);
        let ctx = SessionContext::new();
        // In partition order, so that two scans compare row for row.
        let partitions =
            datafusion::physical_plan::collect_partitioned(exec.clone(), ctx.task_ctx()).await?;
        Ok(concat_batches(&exec.schema(), partitions.iter().flatten())?)
    }

    #[tokio::test]
    async fn mapped_and_store_reads_give_identical_batches() {
        let dir = tempfile::tempdir().unwrap();
        write_sweep(&dir.path().join("a.fits"), 1000);
        write_sweep(&dir.path().join("b.fits"), 37);
        let table = open_table(dir.path(), 64).await;
        assert_eq!(
            table
                .file_schema()
                .field_with_name("type")
                .unwrap()
                .data_type(),
            &DataType::Utf8View
        );
        // Cuts that fall inside rows: each row is read once, by the range it starts in.
        let cuts = [0.1234, 0.5, 0.77];
        let mapped = scan(&table, true, &cuts).await.unwrap();
        let stored = scan(&table, false, &cuts).await.unwrap();
        assert_eq!(mapped.num_rows(), 1037);
        assert_eq!(mapped, stored);
        let whole = scan(&table, true, &[]).await.unwrap();
        assert_eq!(whole, mapped);
        let row_index = mapped.column_by_name(ROW_INDEX_COLUMN).unwrap();
        let row_index = row_index.as_primitive::<arrow::datatypes::Int64Type>();
        let objid = mapped.column_by_name("objid").unwrap();
        let objid = objid.as_primitive::<arrow::datatypes::Int32Type>();
        for i in 0..mapped.num_rows() {
            assert_eq!(row_index.value(i), i64::from(objid.value(i)));
        }
        let types = mapped.column_by_name("type").unwrap().as_string_view();
        assert_eq!(types.value(0), "PSF");
        assert_eq!(types.value(1), "REX");
        assert_eq!(types.value(4), "");
    }

    #[tokio::test]
    async fn sql_filters_and_reads_the_string_view_column() {
        let dir = tempfile::tempdir().unwrap();
        write_sweep(&dir.path().join("a.fits"), 500);
        let table = open_table(dir.path(), 33).await;
        let ctx = SessionContext::new();
        ctx.register_table("sweeps", Arc::new(table)).unwrap();
        let count = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                batches[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(0)
            }
        };
        // Rows 1, 6, 11, ... are REX; DEC > 0 from row 251 on.
        assert_eq!(
            count("SELECT count(*) FROM sweeps WHERE type = 'REX'").await,
            100
        );
        assert_eq!(
            count("SELECT count(*) FROM sweeps WHERE dec > 0 AND type = 'REX'").await,
            50
        );
        assert_eq!(
            count("SELECT count(*) FROM sweeps WHERE type = ''").await,
            100
        );
        assert_eq!(
            count("SELECT count(*) FROM sweeps WHERE type IN ('PSF', 'EXP')").await,
            200
        );
        let batches = ctx
            .sql("SELECT arrow_cast(type, 'Utf8') AS t, length(type) AS n FROM sweeps WHERE objid < 5 ORDER BY objid")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let t: Vec<&str> = batches[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(t, ["PSF", "REX", "DEV", "EXP", ""]);
    }

    #[tokio::test]
    async fn a_file_truncated_after_listing_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.fits");
        // Over 64 KiB, so that the header is read before the cut.
        write_sweep(&path, 10_000);
        let table = open_table(dir.path(), 64).await;
        let full = std::fs::metadata(&path).unwrap().len();
        // Cut the file inside its rows: the header still promises 10,000.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 5000).unwrap();
        drop(file);
        for map_local in [true, false] {
            let err = scan(&table, map_local, &[0.3])
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("short.fits"), "mapped {map_local}: {err}");
        }
        let err = scan(&table, true, &[]).await.unwrap_err().to_string();
        assert!(err.contains("10000 rows"), "{err}");
    }

    #[test]
    fn scan_schema_makes_strings_views() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.fits");
        write_sweep(&path, 3);
        let bytes = std::fs::read(&path).unwrap();
        let lenspipe_fits::HeaderScan::Complete(layout) =
            lenspipe_fits::scan_headers(&bytes, "a.fits").unwrap()
        else {
            panic!("header incomplete");
        };
        let schema = scan_schema(&layout);
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8View);
        assert_eq!(schema.field(1).data_type(), &DataType::Float64);
    }

    fn file(nrows: u64, row_len: u64) -> SweepFile {
        SweepFile {
            url: "file:///x.fits".into(),
            size: 0,
            data_offset: 5760,
            row_len,
            nrows,
        }
    }

    #[test]
    fn chunks_cover_every_row_once() {
        let files = vec![file(1000, 100), file(0, 100), file(7, 100)];
        let chunks = plan_chunks(&files, 25_000);
        let covered: u64 = chunks.iter().map(|c| c.end - c.start).sum();
        assert_eq!(covered, 1007);
        assert_eq!(chunks.iter().filter(|c| c.file == 0).count(), 4);
        assert!(chunks.iter().all(|c| c.file != 1));
        for w in chunks.windows(2) {
            if w[0].file == w[1].file {
                assert_eq!(w[0].end, w[1].start);
            }
        }
    }
}
