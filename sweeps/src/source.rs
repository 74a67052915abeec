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
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::StreamExt;
use lenspipe_fits::{BinTableLayout, RowDecoder};
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
        }
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
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let projected = Arc::new(file_schema.project(&self.projection.file_indices)?);
        let opener = Arc::new(FitsOpener {
            store: object_store,
            store_url: base_config.object_store_url.clone(),
            schema: projected,
            batch_rows: self.batch_rows as u64,
            limit: base_config.limit,
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
        let decoder = if file_projection.is_empty() {
            None
        } else {
            Some(
                RowDecoder::new(layout, Some(file_projection))
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
            )
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
    store_url: ObjectStoreUrl,
    /// The projected file schema (FITS columns and `row_index`).
    schema: SchemaRef,
    batch_rows: u64,
    limit: Option<usize>,
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

impl FileOpener for FitsOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let schema = Arc::clone(&self.schema);
        let (batch_rows, limit) = (self.batch_rows, self.limit);
        let path = file.object_meta.location.clone();
        let size = file.object_meta.size;
        let url = ObjectUrl::from_store_path(&self.store_url, &path).to_string();
        let range = file
            .range
            .as_ref()
            .map(|r| (r.start.max(0) as u64, r.end.max(0) as u64));
        Ok(Box::pin(async move {
            let layout = cached_layout(store.as_ref(), &path, size, &url).await?;
            let (start, mut end) = rows_in_range(&layout, range);
            if let Some(limit) = limit {
                end = end.min(start.saturating_add(limit as u64));
            }
            let (data_offset, row_len) = (layout.data_offset, layout.row_len as u64);
            let decoder = Arc::new(FileDecoder::try_new(layout, &schema, &url)?);
            let ranges: Vec<(u64, u64)> = (start..end)
                .step_by(batch_rows.max(1) as usize)
                .map(|first| (first, (end - first).min(batch_rows)))
                .collect();
            let url = Arc::new(url);
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
                .map(|r| {
                    r.and_then(|(decoder, bytes, first, rows)| decoder.decode(&bytes, first, rows))
                });
            Ok(stream.boxed())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
