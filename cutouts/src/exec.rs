//! `ShardExec`: the operator that does a stage's work where it runs (an
//! executor on a cluster), one shard at a time, writes the result there,
//! and passes on only one small summary row per shard. The work is a
//! [`ShardWork`]: making cutouts ([`CutoutWork`], here), or checking them
//! (in lenspipe-validate).
//!
//! Cutouts: the input is any plan of targets with a shard column. The
//! operator asks the planner for every shard's rows in one partition,
//! sorted by shard, brick, declination, right ascension and galaxy_id, so
//! it holds one shard at a time and a shard's neighbours on the sky share
//! decoded tiles.
//!
//! A shard is written with a single `put` of the whole Parquet object into
//! the run's version folder, so it is either there complete or not at all,
//! and the client commits the version (`lenspipe_sinks::Staged`). The same
//! shard of an earlier version (committed, or left by a killed run) is read
//! first: its `ok` rows made the same way are kept and only the rest is
//! fetched again, and a shard that was complete is copied, not made. That
//! makes the stage resumable after a kill, and a task that the cluster runs
//! twice (after losing an executor) writes the same object twice rather
//! than two objects.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float64Array, Int32Array, PrimitiveArray,
    RecordBatch, StringArray,
};
use arrow::compute::{cast, concat_batches, SortOptions};
use arrow::datatypes::{
    ArrowNativeType, ArrowPrimitiveType, DataType, Field, FieldRef, Float32Type, Int32Type,
    Int64Type, SchemaRef,
};
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::col as column_expr;
use datafusion::physical_expr::{
    Distribution, EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, Partitioning,
    PlanProperties,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use lenspipe_sweeps::{single_input, Location};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::schema::{self, output_schema, shard_file_name};
use crate::source::{source_for, Cutout, Target};
use crate::spec::CutoutSpec;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use lenspipe_sinks::summary::summary_schema;
use lenspipe_sinks::{Counts, ShardSummary, SummaryMetrics};
use lenspipe_viewer::CutoutStatus;

/// What a [`ShardExec`] does on each partition of its input. It reports
/// one [`ShardSummary`] row per file it writes. Each crate brings its own
/// work with a node codec that carries it in plans.
pub trait ShardWork: fmt::Debug + Send + Sync + 'static {
    /// One line for `EXPLAIN`.
    fn describe(&self) -> String;

    /// How the input must arrive: each shard's rows in one partition, in
    /// this order. `None` takes the partitions as they are (one file each).
    fn input_layout(&self, _input: &SchemaRef) -> Option<(Distribution, OrderingRequirements)> {
        None
    }

    /// The summary rows of partition `partition` of `input`, doing the work.
    fn run(
        &self,
        input: Arc<dyn ExecutionPlan>,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>>;

    fn as_any(&self) -> &dyn Any;
}

/// Making cutouts: the pixel job.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CutoutWork(pub CutoutSpec);

impl ShardWork for CutoutWork {
    fn describe(&self) -> String {
        let spec = &self.0;
        format!(
            "cutouts from {}, size={}, bands={}",
            spec.source_label(),
            spec.size,
            spec.bands
        )
    }

    fn input_layout(&self, input: &SchemaRef) -> Option<(Distribution, OrderingRequirements)> {
        shard_layout(input)
    }

    fn run(
        &self,
        input: Arc<dyn ExecutionPlan>,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let input = input.execute(partition, Arc::clone(&context))?;
        Ok(shard_summaries(input, self.0.clone(), context).boxed())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Runs a [`ShardWork`] on each partition of its input.
#[derive(Debug)]
pub struct ShardExec {
    input: Arc<dyn ExecutionPlan>,
    work: Arc<dyn ShardWork>,
    properties: Arc<PlanProperties>,
    /// What the work asks of its input's partitions and order.
    shard_layout: Option<(Distribution, OrderingRequirements)>,
    metrics: ExecutionPlanMetricsSet,
}

impl ShardExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, work: Arc<dyn ShardWork>) -> Self {
        let partitions = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(summary_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        let shard_layout = work.input_layout(&input.schema());
        Self {
            input,
            work,
            properties: Arc::new(properties),
            shard_layout,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn work(&self) -> &Arc<dyn ShardWork> {
        &self.work
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for ShardExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ShardExec: {}", self.work.describe())
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

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        let distribution = match &self.shard_layout {
            Some((distribution, _)) => distribution.clone(),
            None => Distribution::UnspecifiedDistribution,
        };
        InputDistributionRequirements::new(vec![distribution])
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.shard_layout.as_ref().map(|(_, order)| order.clone())]
    }

    /// Work without a layout reads one shard file per partition: splitting
    /// or merging the input's partitions would change what a shard holds.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![self.shard_layout.is_some()]
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
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = single_input("ShardExec", &children)?;
        Ok(Arc::new(Self::new(
            Arc::clone(input),
            Arc::clone(&self.work),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let metrics = SummaryMetrics::new(&self.metrics, partition);
        let summaries = self.work.run(Arc::clone(&self.input), partition, context)?;
        let recorded = summaries.map(move |batch| {
            let batch = batch?;
            metrics.record_batch(&batch)?;
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            summary_schema(),
            recorded,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Where a shard job writes its files.
pub struct Output {
    pub folder: Location,
}

impl Output {
    pub fn resolve(output_url: &str, context: &TaskContext) -> Result<Self> {
        let folder = Location::resolve(context.runtime_env().as_ref(), output_url)?;
        Ok(Self { folder })
    }

    /// Writes one whole object: it is there complete, or not at all.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let file = self.folder.child(name);
        file.put_bytes(bytes).await?;
        Ok(file.url)
    }
}

/// The shard column, then brick (when the targets have one), declination,
/// right ascension and galaxy_id, nulls first: the order shards are cut
/// and made in. `None` when the input has no shard column (an error at
/// execution, which names it).
fn shard_layout(input: &SchemaRef) -> Option<(Distribution, OrderingRequirements)> {
    let shard = column_expr(schema::SHARD, input).ok()?;
    let mut keys = vec![Arc::clone(&shard)];
    if input.column_with_name(schema::BRICKNAME).is_some() {
        keys.push(column_expr(schema::BRICKNAME, input).ok()?);
    }
    for name in [schema::DEC, schema::RA, schema::GALAXY_ID] {
        keys.push(column_expr(name, input).ok()?);
    }
    let ascending = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let order = LexRequirement::new(
        keys.into_iter()
            .map(|k| PhysicalSortRequirement::new(k, Some(ascending))),
    )?;
    Some((
        Distribution::KeyPartitioned(vec![shard]),
        OrderingRequirements::new(order),
    ))
}

/// Makes each shard of a partition as soon as its last row has arrived,
/// and yields one summary row per shard.
fn shard_summaries(
    input: SendableRecordBatchStream,
    spec: CutoutSpec,
    context: Arc<TaskContext>,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
    let shards = ShardsOf::new(input);
    futures::stream::try_unfold(
        (shards, None::<Maker>, spec, context),
        |(mut shards, mut maker, spec, context)| async move {
            let Some((shard, targets)) = shards.next_shard().await? else {
                return Ok(None);
            };
            if maker.is_none() {
                let runtime = context.runtime_env();
                maker = Some(Maker {
                    output: Output::resolve(&spec.output_url, &context)?,
                    earlier: spec
                        .resume_from
                        .iter()
                        .map(|url| Location::resolve(runtime.as_ref(), url))
                        .collect::<Result<_>>()?,
                    source: source_for(&spec, &runtime)?,
                });
            }
            let m = maker.as_ref().expect("set above");
            let mut summary = make_shard(shard, &targets, &spec, m).await?;
            summary.attempt = context.task_id();
            let batch = summary.to_batch()?;
            Ok(Some((batch, (shards, maker, spec, context))))
        },
    )
}

/// Where this partition's shards go and where their pixels come from;
/// made with the first shard, so an empty partition opens nothing.
struct Maker {
    output: Output,
    /// Earlier versions' folders, newest first.
    earlier: Vec<Location>,
    source: Arc<dyn crate::source::PixelSource>,
}

/// Cuts a stream of targets sorted by shard into whole shards, across
/// batch boundaries, holding one shard at a time.
struct ShardsOf {
    input: SendableRecordBatchStream,
    /// Rows of the shard being gathered.
    pending: Vec<RecordBatch>,
    pending_shard: Option<i64>,
    /// The rest of the last batch read, not yet gathered.
    rest: Option<RecordBatch>,
    finished: HashSet<i64>,
    done: bool,
}

impl ShardsOf {
    fn new(input: SendableRecordBatchStream) -> Self {
        Self {
            input,
            pending: Vec::new(),
            pending_shard: None,
            rest: None,
            finished: HashSet::new(),
            done: false,
        }
    }

    /// The next whole shard and its rows, or `None` after the last.
    async fn next_shard(&mut self) -> Result<Option<(i64, RecordBatch)>> {
        loop {
            let batch = match self.rest.take() {
                Some(batch) => batch,
                None if self.done => return self.flush(),
                None => match self.input.next().await.transpose()? {
                    Some(batch) => batch,
                    None => {
                        self.done = true;
                        return self.flush();
                    }
                },
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let shards = shard_column(&batch)?;
            let first = shards.value(0);
            // Rows of the first shard run up to the first row of another.
            let run = (1..shards.len())
                .find(|&i| shards.value(i) != first)
                .unwrap_or(shards.len());
            if run < batch.num_rows() {
                self.rest = Some(batch.slice(run, batch.num_rows() - run));
            }
            let rows = batch.slice(0, run);
            match self.pending_shard {
                Some(shard) if shard == first => self.pending.push(rows),
                Some(_) => {
                    let done = self.flush()?;
                    self.start(first, rows)?;
                    return Ok(done);
                }
                None => self.start(first, rows)?,
            }
        }
    }

    fn start(&mut self, shard: i64, rows: RecordBatch) -> Result<()> {
        if self.finished.contains(&shard) {
            return Err(DataFusionError::Execution(format!(
                "cutout targets are not sorted by shard: shard {shard} came back after others"
            )));
        }
        self.pending_shard = Some(shard);
        self.pending.push(rows);
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<(i64, RecordBatch)>> {
        let Some(shard) = self.pending_shard.take() else {
            return Ok(None);
        };
        let batches = std::mem::take(&mut self.pending);
        let rows = concat_batches(&batches[0].schema(), &batches)?;
        self.finished.insert(shard);
        Ok(Some((shard, rows)))
    }
}

/// The shard of every row of `batch`; an error if the column is missing or
/// a row has none.
fn shard_column(batch: &RecordBatch) -> Result<PrimitiveArray<Int64Type>> {
    let column = batch.column_by_name(schema::SHARD).ok_or_else(|| {
        DataFusionError::Plan(format!("cutout targets lack the {} column", schema::SHARD))
    })?;
    let column = cast(column, &DataType::Int64)?;
    if let Some(row) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(DataFusionError::Execution(format!(
            "cutout target row {row} of a batch has no shard"
        )));
    }
    Ok(column.as_primitive::<Int64Type>().clone())
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
/// `ok`, made from the same source and resampling on the same grid (size,
/// bands, pixel scale), and with the planes this run asks for.
struct Previous {
    /// Where it is and its size, to copy it whole.
    path: Path,
    bytes: u64,
    batch: RecordBatch,
    by_id: HashMap<String, usize>,
}

impl Previous {
    fn parse(path: Path, bytes: Bytes, spec: &CutoutSpec) -> Result<Self> {
        let size = bytes.len() as u64;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        let schema = Arc::clone(builder.schema());
        let meta = schema.metadata();
        let same_grid = meta.get(schema::META_SIZE) == Some(&spec.size.to_string())
            && meta.get(schema::META_BANDS) == Some(&spec.bands)
            && meta.get(schema::META_PIXSCALE) == Some(&spec.pixscale.to_string());
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
        if same_grid && images.value_length() as usize == spec.image_len() && planes_match {
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
        Ok(Self {
            path,
            bytes: size,
            batch,
            by_id,
        })
    }
}

/// The shard `name` of the newest earlier version that has rows to keep.
async fn read_previous(
    earlier: &[Location],
    name: &str,
    spec: &CutoutSpec,
) -> Result<Option<Previous>> {
    for folder in earlier {
        let path = folder.child(name).path;
        let bytes = match folder.store.get(&path).await {
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match Previous::parse(path.clone(), bytes, spec) {
            Ok(previous) if !previous.by_id.is_empty() => return Ok(Some(previous)),
            Ok(_) => {}
            // Not ours or damaged: its targets are made again.
            Err(e) => tracing::warn!(path = %path, error = %e, "unreadable earlier cutout shard"),
        }
    }
    Ok(None)
}

async fn make_shard(
    shard: i64,
    targets: &RecordBatch,
    spec: &CutoutSpec,
    maker: &Maker,
) -> Result<ShardSummary> {
    let started = Instant::now();
    let (output, source) = (&maker.output, maker.source.as_ref());
    let name = shard_file_name(shard);
    let path = output.folder.child(&name).path;
    let ids = strings(targets, schema::GALAXY_ID)?;
    let previous = read_previous(&maker.earlier, &name, spec).await?;
    let n = targets.num_rows();
    let mut counts = Counts::default();
    let mut summary = ShardSummary {
        shard: Some(name),
        bytes: 0,
        rows_in: n as u64,
        rows_written: n as u64,
        counts: Counts::default(),
        attempt: None,
        seconds: 0.0,
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
    counts.add(schema::COUNT_KEPT, vec![], (n - to_make.len()) as u64);
    counts.add(schema::COUNT_MADE, vec![], to_make.len() as u64);
    if let Some(prev) = previous
        .as_ref()
        .filter(|p| to_make.is_empty() && p.batch.num_rows() == n)
    {
        // The same shard, complete: the object itself is taken over.
        output.folder.store.copy(&prev.path, &path).await?;
        counts.add(schema::COUNT_REUSED_WHOLE, vec![], 1);
        counts.add(schema::COUNT_STATUS, vec![Some("ok".into())], n as u64);
        summary.bytes = prev.bytes;
        summary.counts = counts;
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
        counts.add(schema::COUNT_ATTEMPTS, vec![], cutout.attempts as u64);
    }

    let batch = assemble(targets, spec, previous.as_ref(), &kept_row, &made_row)?;
    for status in strings(&batch, schema::STATUS)?.iter() {
        counts.add(schema::COUNT_STATUS, vec![status.map(String::from)], 1);
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
        made = to_make.len(),
        kept = n - to_make.len(),
        "cutout shard written"
    );
    summary.counts = counts;
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

/// A shard's rows as one Parquet object.
pub fn encode_parquet(batch: &RecordBatch) -> Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::Schema;
    use datafusion::catalog::TableProvider;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use datafusion_proto::logical_plan::LogicalExtensionCodec;

    use crate::codec::CUTOUTS_NODES;
    use crate::spec::{Resampling, SourceSpec};
    use crate::table::{ShardInput, ShardTable};
    use lenspipe_sweeps::PlanCodec;

    fn targets_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(schema::GALAXY_ID, DataType::Utf8, false),
            Field::new(schema::RA, DataType::Float64, false),
            Field::new(schema::DEC, DataType::Float64, false),
            Field::new(schema::BRICKNAME, DataType::Utf8, false),
            Field::new(schema::SHARD, DataType::Int64, true),
        ]))
    }

    /// Targets as (galaxy_id, dec, shard), all in brick 1800p000.
    fn targets(rows: &[(&str, f64, Option<i64>)]) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from(vec![180.0; rows.len()])),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from(vec!["1800p000"; rows.len()])),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
        ];
        RecordBatch::try_new(targets_schema(), columns).unwrap()
    }

    fn stream_of(batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            targets_schema(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }

    async fn all_shards(batches: Vec<RecordBatch>) -> Result<Vec<(i64, Vec<String>)>> {
        let mut shards = ShardsOf::new(stream_of(batches));
        let mut out = Vec::new();
        while let Some((shard, rows)) = shards.next_shard().await? {
            let ids = strings(&rows, schema::GALAXY_ID)?;
            out.push((shard, ids.iter().flatten().map(String::from).collect()));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn shards_are_cut_whole_across_batch_boundaries() {
        let shards = all_shards(vec![
            targets(&[("a", 0.0, Some(0)), ("b", 0.1, Some(0))]),
            targets(&[]),
            targets(&[
                ("c", 0.2, Some(0)),
                ("d", 0.0, Some(4)),
                ("e", 0.1, Some(4)),
            ]),
            targets(&[("f", 0.0, Some(7))]),
        ])
        .await
        .unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shards,
            vec![
                (0, ids(&["a", "b", "c"])),
                (4, ids(&["d", "e"])),
                (7, ids(&["f"]))
            ]
        );
    }

    #[tokio::test]
    async fn a_shard_that_comes_back_is_refused() {
        let error = all_shards(vec![
            targets(&[("a", 0.0, Some(1)), ("b", 0.1, Some(2))]),
            targets(&[("c", 0.2, Some(1))]),
        ])
        .await
        .unwrap_err();
        assert!(error.to_string().contains("not sorted by shard"), "{error}");
    }

    #[tokio::test]
    async fn a_target_without_a_shard_is_an_error_not_a_guess() {
        let error = all_shards(vec![targets(&[("a", 0.0, None)])])
            .await
            .unwrap_err();
        assert!(error.to_string().contains("has no shard"), "{error}");
    }

    /// Two target files, each holding rows of several shards out of
    /// order: the plan, carried through the codec as a cluster carries it,
    /// brings each shard's rows together and sorts them, and every shard is
    /// made (and summarised) exactly once.
    #[tokio::test]
    async fn the_planned_job_makes_each_shard_once_from_unsorted_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("targets");
        std::fs::create_dir_all(&input).unwrap();
        let files = [
            targets(&[
                ("d", 0.3, Some(0)),
                ("x", 0.0, Some(2)),
                ("a", 0.1, Some(0)),
            ]),
            targets(&[
                ("y", 0.1, Some(2)),
                ("b", 0.2, Some(0)),
                ("z", 0.0, Some(1)),
            ]),
        ];
        for (i, batch) in files.iter().enumerate() {
            let file = std::fs::File::create(input.join(format!("part-{i}.parquet"))).unwrap();
            let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
            writer.write(batch).unwrap();
            writer.close().unwrap();
        }
        let empty_root = dir.path().join("coadds");
        std::fs::create_dir_all(&empty_root).unwrap();
        let out = dir.path().join("cutouts");
        std::fs::create_dir_all(&out).unwrap();
        let spec = CutoutSpec {
            output_url: format!("file://{}", out.display()),
            resume_from: Vec::new(),
            source: SourceSpec::Bricks {
                coadds_url: format!("file://{}", empty_root.display()),
                resampling: Resampling::Native,
            },
            size: 5,
            pixscale: 0.262,
            bands: "grz".into(),
            planes: vec![crate::spec::Plane::Image],
        };

        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let targets_plan = ctx
            .read_parquet(
                format!("{}/", input.display()),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap()
            .into_unoptimized_plan();
        let table = Arc::new(ShardTable::new(
            Arc::new(CutoutWork(spec)),
            ShardInput::Plan(targets_plan),
        ));
        let codec = PlanCodec::with_defaults(vec![Arc::new(CUTOUTS_NODES)]);
        let mut bytes = Vec::new();
        let name = datafusion::common::TableReference::bare("cutouts");
        codec
            .try_encode_table_provider(&name, table.clone(), &mut bytes)
            .unwrap();
        let decoded = codec
            .try_decode_table_provider(&bytes, &name, table.schema(), &ctx.task_ctx())
            .unwrap();

        let summaries = ctx.read_table(decoded).unwrap().collect().await.unwrap();
        let mut made: Vec<(i64, u64)> = summaries
            .iter()
            .flat_map(|b| ShardSummary::from_batch(b).unwrap())
            .map(|s| {
                let index = schema::shard_index(s.shard.as_deref().unwrap()).unwrap();
                (index, s.rows_written)
            })
            .collect();
        made.sort();
        assert_eq!(made, vec![(0, 3), (1, 1), (2, 2)]);

        // Shard 0 is written in brick, then declination order.
        let written = std::fs::read(out.join(shard_file_name(0))).unwrap();
        let rows = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(written))
            .unwrap()
            .build()
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let column = |name: &str| -> Vec<String> {
            rows.iter()
                .flat_map(|b| {
                    strings(b, name)
                        .unwrap()
                        .iter()
                        .flatten()
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(column(schema::GALAXY_ID), vec!["a", "b", "d"]);
        let statuses = column(schema::STATUS);
        assert_eq!(statuses, vec!["missing_brick"; 3]);
    }
}
