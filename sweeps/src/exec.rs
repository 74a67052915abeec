//! The physical scan: one partition per row range of one file.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use lenspipe_fits::{BinTableLayout, RowDecoder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::listing::{read_layout, SweepFile};
use crate::schema::{ROW_INDEX_COLUMN, SWEEP_FILE_COLUMN};

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
            chunks.push(ScanChunk { file: i, start, end });
            start = end;
        }
    }
    chunks
}

/// Reads FITS rows by byte range and decodes only the projected columns.
#[derive(Debug, Clone)]
pub struct FitsScanExec {
    files: Arc<Vec<SweepFile>>,
    chunks: Vec<ScanChunk>,
    /// The table schema the projection indexes into.
    table_schema: SchemaRef,
    projection: Vec<usize>,
    projected_schema: SchemaRef,
    batch_rows: usize,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl FitsScanExec {
    pub fn try_new(
        files: Arc<Vec<SweepFile>>,
        chunks: Vec<ScanChunk>,
        table_schema: SchemaRef,
        projection: Vec<usize>,
        batch_rows: usize,
        limit: Option<usize>,
    ) -> Result<Self> {
        if let Some(bad) = chunks.iter().find(|c| c.file >= files.len() || c.start > c.end) {
            return Err(DataFusionError::Internal(format!("invalid scan chunk {bad:?}")));
        }
        let projected_schema = Arc::new(table_schema.project(&projection)?);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&projected_schema)),
            Partitioning::UnknownPartitioning(chunks.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            files,
            chunks,
            table_schema,
            projection,
            projected_schema,
            batch_rows: batch_rows.max(1),
            limit,
            properties,
        })
    }

    pub fn files(&self) -> &[SweepFile] {
        &self.files
    }
    pub fn chunks(&self) -> &[ScanChunk] {
        &self.chunks
    }
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table_schema
    }
    pub fn projection(&self) -> &[usize] {
        &self.projection
    }
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }
}

impl DisplayAs for FitsScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .projected_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "FitsScanExec: files={}, chunks={}, projection=[{}]",
            self.files.len(),
            self.chunks.len(),
            names.join(", ")
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for FitsScanExec {
    fn name(&self) -> &str {
        "FitsScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("FitsScanExec has no children".into()))
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.projected_schema);
        let Some(chunk) = self.chunks.get(partition).copied() else {
            // A scan over zero rows still has one (empty) partition.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::empty())));
        };
        let file = self.files[chunk.file].clone();
        let url = url::Url::parse(&file.url)
            .map_err(|e| DataFusionError::External(format!("{}: {e}", file.url).into()))?;
        let store_url = ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()))?;
        let store = context.runtime_env().object_store(&store_url)?;
        let path = Path::from_url_path(url.path())
            .map_err(|e| DataFusionError::External(format!("{}: {e}", file.url).into()))?;
        let end = match self.limit {
            Some(limit) => chunk.end.min(chunk.start.saturating_add(limit as u64)),
            None => chunk.end,
        };
        let job = ChunkReader {
            store,
            path,
            file,
            schema: Arc::clone(&schema),
            start: chunk.start,
            end,
            batch_rows: self.batch_rows as u64,
        };
        let stream = futures::stream::once(job.open()).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Where each output column of a batch comes from.
#[derive(Debug, Clone)]
enum OutputColumn {
    Decoded { index: usize, target: DataType },
    SweepFile,
    RowIndex,
}

/// Turns row bytes of one file into batches of the scan's schema.
#[derive(Debug)]
struct FileDecoder {
    decoder: Option<RowDecoder>,
    outputs: Vec<OutputColumn>,
    schema: SchemaRef,
    file_name: String,
}

impl FileDecoder {
    fn try_new(layout: Arc<BinTableLayout>, schema: &SchemaRef, file: &SweepFile) -> Result<Self> {
        let mut file_projection = Vec::new();
        let mut outputs = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name().as_str();
            let output = if name == SWEEP_FILE_COLUMN {
                OutputColumn::SweepFile
            } else if name == ROW_INDEX_COLUMN {
                OutputColumn::RowIndex
            } else {
                let column = layout.column_index(name).ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "{}: HDU {}: this file has no column '{name}', which the query needs",
                        file.url, layout.hdu
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
            Some(RowDecoder::new(layout, Some(file_projection)).map_err(|e| DataFusionError::External(Box::new(e)))?)
        };
        Ok(Self {
            decoder,
            outputs,
            schema: Arc::clone(schema),
            file_name: file.file_name().to_string(),
        })
    }

    fn needs_bytes(&self) -> bool {
        self.decoder.is_some()
    }

    fn decode(&self, bytes: &[u8], first_row: u64, rows: u64) -> Result<RecordBatch> {
        let decoded = match &self.decoder {
            Some(d) => Some(d.decode(bytes, first_row).map_err(|e| DataFusionError::External(Box::new(e)))?),
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
                OutputColumn::SweepFile => Arc::new(StringArray::from_iter_values(
                    std::iter::repeat_n(self.file_name.as_str(), n),
                )),
                OutputColumn::RowIndex => Arc::new(Int64Array::from_iter_values(
                    (first_row..first_row + rows).map(|r| r as i64),
                )),
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?)
    }
}

/// Executors see the same file in many tasks; its header is read once per process.
static LAYOUTS: LazyLock<Mutex<HashMap<(String, u64), Arc<BinTableLayout>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const LAYOUT_CACHE_ENTRIES: usize = 4096;

async fn cached_layout(store: &dyn ObjectStore, path: &Path, file: &SweepFile) -> Result<Arc<BinTableLayout>> {
    let key = (file.url.clone(), file.size);
    if let Some(layout) = LAYOUTS.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(layout);
    }
    let layout = Arc::new(read_layout(store, path, file.size, &file.url).await?);
    if layout.data_offset != file.data_offset
        || layout.row_len as u64 != file.row_len
        || layout.nrows != file.nrows
    {
        return Err(DataFusionError::Execution(format!(
            "{}: the file changed since the table was opened (header now says {} rows of {} bytes at byte {})",
            file.url, layout.nrows, layout.row_len, layout.data_offset
        )));
    }
    if let Ok(mut map) = LAYOUTS.lock() {
        if map.len() >= LAYOUT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, Arc::clone(&layout));
    }
    Ok(layout)
}

struct ChunkReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    file: SweepFile,
    schema: SchemaRef,
    start: u64,
    end: u64,
    batch_rows: u64,
}

impl ChunkReader {
    async fn open(self) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
        let layout = cached_layout(self.store.as_ref(), &self.path, &self.file).await?;
        let decoder = Arc::new(FileDecoder::try_new(layout, &self.schema, &self.file)?);
        let ranges: Vec<(u64, u64)> = (self.start..self.end)
            .step_by(self.batch_rows as usize)
            .map(|first| (first, (self.end - first).min(self.batch_rows)))
            .collect();
        let (store, path, file) = (self.store, self.path, Arc::new(self.file));
        let stream = futures::stream::iter(ranges)
            .map(move |(first, rows)| {
                let (store, path, file, decoder) =
                    (Arc::clone(&store), path.clone(), Arc::clone(&file), Arc::clone(&decoder));
                async move {
                    let bytes = if decoder.needs_bytes() {
                        let from = file.data_offset + first * file.row_len;
                        let to = from + rows * file.row_len;
                        store.get_range(&path, from..to).await.map_err(|e| {
                            DataFusionError::External(
                                format!("{}: reading bytes {from}..{to}: {e}", file.url).into(),
                            )
                        })?
                    } else {
                        bytes::Bytes::new()
                    };
                    Ok::<_, DataFusionError>((decoder, bytes, first, rows))
                }
            })
            .buffered(PREFETCH)
            .map(|r| r.and_then(|(decoder, bytes, first, rows)| decoder.decode(&bytes, first, rows)));
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(nrows: u64, row_len: u64) -> SweepFile {
        SweepFile { url: "file:///x.fits".into(), size: 0, data_offset: 5760, row_len, nrows }
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
