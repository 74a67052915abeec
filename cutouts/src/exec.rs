//! `ShardExec`: the operator that does a stage's work where it runs (an
//! executor on a cluster), one input file (shard) at a time, writes the
//! result there, and passes on only one small summary row per shard. The
//! work is a [`ShardJob`]: making cutouts, or checking them.
//!
//! Cutouts:
//! A shard is written with a single `put` of the whole Parquet object, so it
//! is either there complete or not at all. A shard already written is read
//! back first: its `ok` rows made the same way are kept and only the rest is
//! fetched again, and a shard that is complete is not written again. That
//! makes the stage resumable after a kill, and makes a task that the cluster
//! runs twice (after losing an executor) write the same object twice rather
//! than two objects.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, Float64Array, Int32Array,
    Int64Array, PrimitiveArray, RecordBatch, StringArray, UInt32Array,
};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{
    ArrowNativeType, ArrowPrimitiveType, DataType, Field, FieldRef, Float32Type, Int32Type,
    Int64Type, SchemaRef,
};
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::TryStreamExt;
use lenspipe_sweeps::Location;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::schema::{self, output_schema, shard_file_name, summary_schema};
use crate::source::{source_for, Cutout, Target};
use crate::spec::CutoutSpec;
use lenspipe_viewer::CutoutStatus;

/// The work a [`ShardExec`] does on each shard; it travels in the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum ShardJob {
    Cutouts(CutoutSpec),
    Checks(crate::checks::ChecksSpec),
}

impl ShardJob {
    /// The summary rows' schema.
    pub fn summary_schema(&self) -> SchemaRef {
        match self {
            Self::Cutouts(_) => summary_schema(),
            Self::Checks(_) => crate::checks::summary_schema(),
        }
    }
}

/// Runs a [`ShardJob`] on each partition of its input.
#[derive(Debug)]
pub struct ShardExec {
    input: Arc<dyn ExecutionPlan>,
    job: ShardJob,
    properties: Arc<PlanProperties>,
}

impl ShardExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, job: ShardJob) -> Self {
        let partitions = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(job.summary_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            job,
            properties: Arc::new(properties),
        }
    }

    pub fn job(&self) -> &ShardJob {
        &self.job
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for ShardExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.job {
            ShardJob::Cutouts(spec) => {
                write!(
                    f,
                    "ShardExec: cutouts from {}, size={}, bands={}",
                    spec.source_label(),
                    spec.size,
                    spec.bands
                )
            }
            ShardJob::Checks(spec) => write!(f, "ShardExec: checks into {}", spec.output_url),
        }
    }
}

impl ExecutionPlan for ShardExec {
    fn name(&self) -> &str {
        "ShardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// One target file is one shard: splitting or merging the input's
    /// partitions would change what a shard holds.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "ShardExec takes one input, got {}",
                children.len()
            )));
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.job.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.job.summary_schema();
        match self.job.clone() {
            ShardJob::Cutouts(spec) => {
                let input = self.input.execute(partition, Arc::clone(&context))?;
                let work = async move { run_partition(input, spec, context).await };
                Ok(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(work),
                )))
            }
            ShardJob::Checks(spec) => {
                // The scan starts only when the shard's turn comes (see checks::run_partition).
                let input = Arc::clone(&self.input);
                let work = async move {
                    crate::checks::run_partition(input, partition, spec, context).await
                };
                Ok(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(work),
                )))
            }
        }
    }
}

/// Where shards are written.
pub(crate) struct Output {
    pub(crate) folder: Location,
}

impl Output {
    pub(crate) fn resolve(output_url: &str, context: &TaskContext) -> Result<Self> {
        let folder = Location::resolve(context.runtime_env().as_ref(), output_url)?;
        Ok(Self { folder })
    }

    /// Writes one whole object: it is there complete, or not at all.
    pub(crate) async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let file = self.folder.child(name);
        file.put_bytes(bytes).await?;
        Ok(file.url)
    }
}

async fn run_partition(
    input: SendableRecordBatchStream,
    spec: CutoutSpec,
    context: Arc<TaskContext>,
) -> Result<RecordBatch> {
    let targets_schema = input.schema();
    let batches: Vec<RecordBatch> = input.try_collect().await?;
    let targets = concat_batches(&targets_schema, &batches)?;
    let output = Output::resolve(&spec.output_url, &context)?;
    let source = source_for(&spec, &context.runtime_env())?;
    let mut summaries = Vec::new();
    for (shard, rows) in rows_by_shard(&targets)? {
        let indices = UInt32Array::from(rows);
        let columns = targets
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<arrow::error::Result<_>>()?;
        let shard_targets = RecordBatch::try_new(targets.schema(), columns)?;
        summaries.push(make_shard(shard, &shard_targets, &spec, &output, source.as_ref()).await?);
    }
    summary_batch(&summaries)
}

/// Row indices of each shard, in shard order.
fn rows_by_shard(targets: &RecordBatch) -> Result<BTreeMap<i64, Vec<u32>>> {
    let column = targets.column_by_name(schema::SHARD).ok_or_else(|| {
        DataFusionError::Plan(format!("cutout targets lack the {} column", schema::SHARD))
    })?;
    let column = cast(column, &DataType::Int64)?;
    let shards = column.as_primitive::<Int64Type>();
    let mut out: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for i in 0..shards.len() {
        if shards.is_null(i) {
            return Err(DataFusionError::Plan(format!(
                "cutout target row {i} has no shard"
            )));
        }
        out.entry(shards.value(i)).or_default().push(i as u32);
    }
    Ok(out)
}

/// What one shard did, as the client sees it.
#[derive(Debug, Default)]
struct ShardSummary {
    shard: i64,
    path: String,
    targets: usize,
    fetched: usize,
    kept: usize,
    reused_shard: bool,
    statuses: BTreeMap<String, u64>,
    attempts: u64,
    bytes: u64,
    seconds: f64,
}

/// A string column by name, whatever its string type.
fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Plan(format!("cutout rows lack the {name} column")))?;
    Ok(cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Plan(format!("cutout targets lack the {name} column")))?;
    Ok(cast(column, &DataType::Float64)?
        .as_primitive::<arrow::datatypes::Float64Type>()
        .clone())
}

/// The rows of a shard written before, by galaxy_id, that this run keeps:
/// `ok`, made from the same source and resampling, the right image length,
/// and with an invvar column when this run asks for one.
struct Previous {
    batch: RecordBatch,
    by_id: HashMap<String, usize>,
}

impl Previous {
    fn parse(bytes: Bytes, spec: &CutoutSpec) -> Result<Self> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        let schema = Arc::clone(builder.schema());
        let reader = builder.build()?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = concat_batches(&schema, &batches)?;
        let ids = strings(&batch, schema::GALAXY_ID)?;
        let statuses = strings(&batch, schema::STATUS)?;
        let sources = strings(&batch, schema::SOURCE)?;
        let resamplings = strings(&batch, schema::RESAMPLING)?;
        let images = batch
            .column_by_name(schema::IMAGE)
            .and_then(|c| c.as_fixed_size_list_opt().cloned())
            .ok_or_else(|| {
                DataFusionError::Plan("cutout shard lacks a fixed-size image column".into())
            })?;
        let (label, resampling) = (spec.source_label(), spec.resampling().as_str());
        let has = |name: &str, len: usize| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_fixed_size_list_opt())
                .is_some_and(|c| c.value_length() as usize == len)
        };
        let planes_match = (!spec.wants_invvar() || has(schema::INVVAR, spec.image_len()))
            && (!spec.wants_maskbits() || has(schema::MASKBITS, spec.maskbits_len()));
        let mut by_id = HashMap::new();
        if images.value_length() as usize == spec.image_len() && planes_match {
            for i in 0..batch.num_rows() {
                let keep = ids.is_valid(i)
                    && statuses.value(i) == "ok"
                    && sources.value(i) == label
                    && resamplings.value(i) == resampling
                    && images.is_valid(i);
                if keep {
                    by_id.insert(ids.value(i).to_string(), i);
                }
            }
        }
        Ok(Self { batch, by_id })
    }
}

async fn read_previous(
    output: &Output,
    path: &Path,
    spec: &CutoutSpec,
) -> Result<Option<Previous>> {
    let bytes = match output.folder.store.get(path).await {
        Ok(found) => found.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match Previous::parse(bytes, spec) {
        Ok(previous) => Ok(Some(previous)),
        Err(e) => {
            // Not ours or damaged: made again from scratch.
            tracing::warn!(path = %path, error = %e, "unreadable cutout shard is made again");
            Ok(None)
        }
    }
}

async fn make_shard(
    shard: i64,
    targets: &RecordBatch,
    spec: &CutoutSpec,
    output: &Output,
    source: &dyn crate::source::PixelSource,
) -> Result<ShardSummary> {
    let started = Instant::now();
    let name = shard_file_name(shard);
    let file = output.folder.child(&name);
    let path = file.path;
    let ids = strings(targets, schema::GALAXY_ID)?;
    let previous = read_previous(output, &path, spec).await?;
    let n = targets.num_rows();
    let mut summary = ShardSummary {
        shard,
        path: file.url,
        targets: n,
        ..Default::default()
    };

    // Each row either keeps a previous ok row or is made now.
    let mut kept_row: Vec<Option<usize>> = vec![None; n];
    if let Some(prev) = &previous {
        for (i, slot) in kept_row.iter_mut().enumerate() {
            if ids.is_valid(i) {
                *slot = prev.by_id.get(ids.value(i)).copied();
            }
        }
    }
    let to_make: Vec<usize> = (0..n).filter(|i| kept_row[*i].is_none()).collect();
    summary.kept = n - to_make.len();
    summary.fetched = to_make.len();
    let complete = to_make.is_empty() && previous.as_ref().is_some_and(|p| p.batch.num_rows() == n);
    if complete {
        summary.reused_shard = true;
        *summary.statuses.entry("ok".into()).or_default() += n as u64;
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    let (ra, dec) = (floats(targets, schema::RA)?, floats(targets, schema::DEC)?);
    let bricks = targets
        .column_by_name(schema::BRICKNAME)
        .map(|_| strings(targets, schema::BRICKNAME))
        .transpose()?;
    let wanted: Vec<Target> = to_make
        .iter()
        .map(|&i| Target {
            ra: if ra.is_valid(i) {
                ra.value(i)
            } else {
                f64::NAN
            },
            dec: if dec.is_valid(i) {
                dec.value(i)
            } else {
                f64::NAN
            },
            brickname: bricks
                .as_ref()
                .filter(|b| b.is_valid(i))
                .map(|b| b.value(i).to_string()),
        })
        .collect();
    let made = source.cutouts(&wanted).await?;
    if made.len() != wanted.len() {
        return Err(DataFusionError::Internal(format!(
            "cutout source answered {} of {} targets",
            made.len(),
            wanted.len()
        )));
    }
    let mut made_row: Vec<Option<&Cutout>> = vec![None; n];
    for (&i, cutout) in to_make.iter().zip(&made) {
        made_row[i] = Some(cutout);
        summary.attempts += cutout.attempts as u64;
    }

    let batch = assemble(targets, spec, previous.as_ref(), &kept_row, &made_row)?;
    for status in strings(&batch, schema::STATUS)?.iter().flatten() {
        *summary.statuses.entry(status.to_string()).or_default() += 1;
    }
    let bytes = encode_parquet(&batch)?;
    summary.bytes = bytes.len() as u64;
    output
        .folder
        .store
        .put(&path, PutPayload::from(bytes))
        .await?;
    summary.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        shard,
        targets = n,
        fetched = summary.fetched,
        kept = summary.kept,
        "cutout shard written"
    );
    Ok(summary)
}

/// The output rows: the target's columns, then status, image, source,
/// resampling and attempts, from the previous shard or from this run.
fn assemble(
    targets: &RecordBatch,
    spec: &CutoutSpec,
    previous: Option<&Previous>,
    kept_row: &[Option<usize>],
    made_row: &[Option<&Cutout>],
) -> Result<RecordBatch> {
    let schema: SchemaRef = output_schema(targets.schema().as_ref(), spec);
    let n = targets.num_rows();
    let image_len = spec.image_len();
    let written = |name: &str| {
        previous
            .and_then(|p| p.batch.column_by_name(name))
            .and_then(|c| c.as_fixed_size_list_opt())
    };
    let (prev_images, prev_invvar, prev_maskbits) = (
        written(schema::IMAGE),
        written(schema::INVVAR),
        written(schema::MASKBITS),
    );
    let prev_attempts = previous
        .and_then(|p| p.batch.column_by_name(schema::ATTEMPTS))
        .map(|c| cast(c, &DataType::Int32))
        .transpose()?;

    let mut status = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut image = PlaneColumn::<f32>::new(n, image_len);
    let mut invvar = PlaneColumn::<f32>::new(if spec.wants_invvar() { n } else { 0 }, image_len);
    let mut maskbits = PlaneColumn::<i32>::new(
        if spec.wants_maskbits() { n } else { 0 },
        spec.maskbits_len(),
    );
    for i in 0..n {
        match (kept_row[i], made_row[i]) {
            (Some(row), _) => {
                // Kept rows have their image (see `Previous`).
                let images = prev_images
                    .ok_or_else(|| DataFusionError::Internal("kept row without image".into()))?;
                image.push_written(Some(images), row);
                if spec.wants_invvar() {
                    invvar.push_written(prev_invvar, row);
                }
                if spec.wants_maskbits() {
                    maskbits.push_written(prev_maskbits, row);
                }
                status.push(CutoutStatus::Ok.to_string());
                attempts.push(
                    prev_attempts
                        .as_ref()
                        .map_or(0, |a| a.as_primitive::<Int32Type>().value(row)),
                );
            }
            (None, Some(cutout)) => {
                let (pixels, made_status) = match &cutout.image {
                    Some(pixels) if pixels.len() == image_len => {
                        (Some(pixels.as_slice()), cutout.status)
                    }
                    Some(_) => (None, CutoutStatus::BadResponse),
                    None => (None, cutout.status),
                };
                image.push(pixels);
                status.push(made_status.to_string());
                if spec.wants_invvar() {
                    let made = cutout.invvar.as_deref().filter(|v| v.len() == image_len);
                    invvar.push(made.filter(|_| cutout.image.is_some()));
                }
                if spec.wants_maskbits() {
                    let made = cutout
                        .maskbits
                        .as_deref()
                        .filter(|v| v.len() == spec.maskbits_len());
                    maskbits.push(made.filter(|_| cutout.image.is_some()));
                }
                attempts.push(cutout.attempts as i32);
            }
            (None, None) => {
                return Err(DataFusionError::Internal(format!(
                    "cutout row {i} was neither kept nor made"
                )))
            }
        }
    }
    let item = match schema::image_field(spec).data_type() {
        DataType::FixedSizeList(item, _) => Arc::clone(item),
        _ => {
            return Err(DataFusionError::Internal(
                "image field is not a fixed-size list".into(),
            ))
        }
    };
    let image = image.finish(Arc::clone(&item))?;
    let invvar = invvar.finish(Arc::clone(&item))?;
    let maskbits = maskbits.finish(Arc::new(Field::new("item", DataType::Int32, false)))?;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column: ArrayRef = match field.name().as_str() {
            schema::STATUS => Arc::new(StringArray::from(status.clone())),
            schema::IMAGE => Arc::new(image.clone()),
            schema::INVVAR => Arc::new(invvar.clone()),
            schema::MASKBITS => Arc::new(maskbits.clone()),
            schema::SOURCE => Arc::new(StringArray::from(vec![spec.source_label(); n])),
            schema::RESAMPLING => Arc::new(StringArray::from(vec![spec.resampling().as_str(); n])),
            schema::ATTEMPTS => Arc::new(Int32Array::from(attempts.clone())),
            name => Arc::clone(targets.column_by_name(name).ok_or_else(|| {
                DataFusionError::Internal(format!("target column {name} vanished"))
            })?),
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A fixed-size plane column (float32 image and invvar, int32 maskbits)
/// built row by row, null where a row has no plane.
struct PlaneColumn<T> {
    values: Vec<T>,
    valid: Vec<bool>,
    len: usize,
}

impl<T: PlaneValue + ArrowNativeType> PlaneColumn<T> {
    fn new(rows: usize, len: usize) -> Self {
        Self {
            values: Vec::with_capacity(rows * len),
            valid: Vec::with_capacity(rows),
            len,
        }
    }

    fn push(&mut self, plane: Option<&[T]>) {
        match plane {
            Some(p) => self.values.extend_from_slice(p),
            None => self
                .values
                .extend(std::iter::repeat_n(T::default(), self.len)),
        }
        self.valid.push(plane.is_some());
    }

    /// Row `row` of the same column in a shard written before; null where
    /// it was null or the shard has no such column.
    fn push_written(&mut self, column: Option<&FixedSizeListArray>, row: usize) {
        let kept = column.filter(|c| c.is_valid(row)).map(|c| c.value(row));
        self.push(
            kept.as_ref()
                .map(|v| v.as_primitive::<T::Arrow>().values().as_ref()),
        );
    }

    fn finish(self, item: FieldRef) -> Result<FixedSizeListArray> {
        Ok(FixedSizeListArray::try_new(
            item,
            self.len as i32,
            Arc::new(PrimitiveArray::<T::Arrow>::new(self.values.into(), None)),
            Some(self.valid.into()),
        )?)
    }
}

/// The Arrow type of a plane's values.
trait PlaneValue: Sized {
    type Arrow: ArrowPrimitiveType<Native = Self>;
}

impl PlaneValue for f32 {
    type Arrow = Float32Type;
}

impl PlaneValue for i32 {
    type Arrow = Int32Type;
}

pub(crate) fn encode_parquet(batch: &RecordBatch) -> Result<Vec<u8>> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        // Row groups of 128 images (15 MB): readers decode a shard a slice at a time.
        .set_max_row_group_row_count(Some(128))
        // Images do not compress with dictionaries; plain pages are smaller and faster.
        .set_column_dictionary_enabled(format!("{}.list.item", schema::IMAGE).into(), false)
        .set_column_dictionary_enabled(format!("{}.list.item", schema::INVVAR).into(), false)
        .set_column_dictionary_enabled(format!("{}.list.item", schema::MASKBITS).into(), false)
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(buffer)
}

fn summary_batch(summaries: &[ShardSummary]) -> Result<RecordBatch> {
    let statuses: Vec<String> = summaries
        .iter()
        .map(|s| {
            serde_json::to_string(&s.statuses).map_err(|e| DataFusionError::Internal(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.shard),
        )),
        Arc::new(StringArray::from_iter_values(
            summaries.iter().map(|s| s.path.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.targets as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.fetched as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.kept as i64),
        )),
        Arc::new(BooleanArray::from(
            summaries.iter().map(|s| s.reused_shard).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(statuses)),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.attempts as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.bytes as i64),
        )),
        Arc::new(Float64Array::from_iter_values(
            summaries.iter().map(|s| s.seconds),
        )),
    ];
    Ok(RecordBatch::try_new(summary_schema(), columns)?)
}
