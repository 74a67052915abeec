//! `PartitionWriterExec`: writes each partition of its input as one Parquet
//! shard where the partition runs, and yields one summary row per partition.
//!
//! A cluster hands each task its own slice of the scan, so a task cannot
//! know which partition of the whole stage it runs. Shards are therefore
//! named per attempt (from the engine's task id), never by a guessed
//! global index, and the client commits exactly the shards named in the
//! summaries it collected: a task re-run after losing an executor leaves at
//! most an orphan shard that no summary names, which the commit removes.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::{cast, filter_record_batch, is_null};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use lenspipe_sweeps::{single_input, Location};
use object_store::buffered::BufWriter;
use object_store::ObjectStoreExt;
use parquet::arrow::async_writer::AsyncArrowWriter;

use crate::spec::{CounterRows, WriteSpec};
use crate::summary::{summary_schema, Counts, ShardSummary, SummaryMetrics};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};

/// Writes its input's partitions; see the module documentation.
#[derive(Debug)]
pub struct PartitionWriterExec {
    input: Arc<dyn ExecutionPlan>,
    spec: WriteSpec,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl PartitionWriterExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> Self {
        let partitions = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(summary_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            spec,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn spec(&self) -> &WriteSpec {
        &self.spec
    }
}

impl DisplayAs for PartitionWriterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PartitionWriterExec: {} columns into {}",
            self.spec.columns.len(),
            self.spec.folder_url
        )?;
        if let Some(column) = &self.spec.keep_where_null {
            write!(f, " where {column} IS NULL")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for PartitionWriterExec {
    fn name(&self) -> &str {
        "PartitionWriterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // Repartitioning the input would only add shards and a shuffle.
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
        let input = single_input("PartitionWriterExec", &children)?;
        Ok(Arc::new(Self::new(Arc::clone(input), self.spec.clone())))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let spec = self.spec.clone();
        let metrics = SummaryMetrics::new(&self.metrics, partition);
        let work = async move {
            let summary = write_partition(input, &spec, partition, &context).await?;
            metrics.record(&summary);
            summary.to_batch()
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            summary_schema(),
            futures::stream::once(work),
        )))
    }
}

/// The shard's file name: by partition index alone in one process (where
/// the index is the stage's own), and by task attempt on a cluster.
fn shard_name(partition: usize, task_id: Option<&str>) -> String {
    match task_id {
        None => format!("part-{partition:05}.parquet"),
        Some(task) => {
            let mut hasher = std::hash::DefaultHasher::new();
            task.hash(&mut hasher);
            format!("part-{:016x}-{partition:03}.parquet", hasher.finish())
        }
    }
}

async fn write_partition(
    mut input: SendableRecordBatchStream,
    spec: &WriteSpec,
    partition: usize,
    context: &TaskContext,
) -> Result<ShardSummary> {
    let started = Instant::now();
    let folder = Location::resolve(&context.runtime_env(), &spec.folder_url)
        .map_err(|e| DataFusionError::Execution(format!("output {}: {e}", spec.folder_url)))?;
    let name = shard_name(partition, context.task_id().as_deref());
    let shard = folder.child(&name);
    let fail = |what: &str, e: &dyn fmt::Display| {
        DataFusionError::Execution(format!("writing shard {}: {what}: {e}", shard.url))
    };

    let mut writer: Option<AsyncArrowWriter<BufWriter>> = None;
    let mut tally = Tally::new(spec);
    let (mut rows_in, mut rows_written) = (0u64, 0u64);
    while let Some(batch) = input.next().await {
        let batch = batch?;
        rows_in += batch.num_rows() as u64;
        tally.count(&batch, CounterRows::All)?;
        let kept = keep_rows(&batch, spec)?;
        if kept.num_rows() == 0 {
            continue;
        }
        tally.count(&kept, CounterRows::Written)?;
        let written = project(&kept, &spec.columns)?;
        if writer.is_none() {
            let object = BufWriter::new(Arc::clone(&shard.store), shard.path.clone());
            writer = Some(
                AsyncArrowWriter::try_new(
                    object,
                    written.schema(),
                    Some(properties(&written.schema())),
                )
                .map_err(|e| fail("creating", &e))?,
            );
        }
        if let Some(w) = writer.as_mut() {
            w.write(&written).await.map_err(|e| fail("writing", &e))?;
        }
        rows_written += written.num_rows() as u64;
    }
    let (shard_name, bytes) = match writer {
        Some(w) => {
            w.close().await.map_err(|e| fail("closing", &e))?;
            crate::commit::crash_point("shard-written");
            let meta = shard
                .store
                .head(&shard.path)
                .await
                .map_err(|e| fail("checking", &e))?;
            (Some(name), meta.size)
        }
        None => (None, 0),
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        output = %spec.folder_url,
        partition,
        rows_in,
        rows_written,
        seconds,
        "partition written"
    );
    Ok(ShardSummary {
        shard: shard_name,
        bytes,
        rows_in,
        rows_written,
        counts: tally.counts,
        attempt: context.task_id(),
        seconds,
    })
}

/// The most a row group holds before it is written out, so a writer's
/// buffer does not grow with the rows its partition keeps. A writer holds
/// about three times this at its peak (the encoded pages, then the buffer
/// they are flushed into, which grows by doubling), per partition. 4 MiB
/// of zstd pages is about 29,000 negatives rows (145 bytes a row, measured),
/// a row group size readers handle well, and a negatives run's peak memory
/// stops growing once each partition has kept that much (docs/BENCHMARKS.md).
pub const ROW_GROUP_BYTES: usize = 4 * 1024 * 1024;

/// Parquet as every output is written: zstd at its default level, row
/// groups of at most [`ROW_GROUP_BYTES`], and no dictionary for floating
/// point columns. Fluxes, colours and positions are nearly all distinct: a
/// dictionary of them saves nothing, and the writer's table of the values
/// seen grew with the input (a third of the peak heap of a negatives run,
/// measured).
pub fn properties(schema: &Schema) -> parquet::file::properties::WriterProperties {
    let mut builder = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(
            parquet::basic::ZstdLevel::default(),
        ))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES));
    for field in schema.fields() {
        if field.data_type().is_floating() {
            builder = builder.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                false,
            );
        }
    }
    builder.build()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| {
        DataFusionError::Execution(format!("the plan feeding the writer lacks column '{name}'"))
    })
}

fn keep_rows(batch: &RecordBatch, spec: &WriteSpec) -> Result<RecordBatch> {
    match &spec.keep_where_null {
        None => Ok(batch.clone()),
        Some(name) => Ok(filter_record_batch(batch, &is_null(column(batch, name)?)?)?),
    }
}

/// The written columns, in the spec's order.
pub fn project(batch: &RecordBatch, columns: &[String]) -> Result<RecordBatch> {
    let schema = batch.schema();
    let indices = columns
        .iter()
        .map(|name| {
            schema.index_of(name).map_err(|_| {
                DataFusionError::Execution(format!(
                    "the plan feeding the writer lacks column '{name}'"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(batch.project(&indices)?)
}

/// The written schema of a plan schema.
pub fn project_schema(schema: &SchemaRef, columns: &[String]) -> Result<SchemaRef> {
    let indices = columns
        .iter()
        .map(|name| Ok(schema.index_of(name)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(schema.project(&indices)?))
}

/// The partition's counters.
struct Tally<'a> {
    spec: &'a WriteSpec,
    counts: Counts,
}

impl<'a> Tally<'a> {
    fn new(spec: &'a WriteSpec) -> Self {
        Self {
            spec,
            counts: Counts::default(),
        }
    }

    fn count(&mut self, batch: &RecordBatch, rows: CounterRows) -> Result<()> {
        for counter in self.spec.counters.iter().filter(|c| c.rows == rows) {
            let arrays = counter
                .columns
                .iter()
                .map(|name| Ok(cast(column(batch, name)?, &DataType::Utf8)?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let strings: Vec<&StringArray> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
            for (key, n) in distinct_counts(&strings, batch.num_rows()) {
                self.counts.add(&counter.name, key, n);
            }
        }
        Ok(())
    }
}

/// Counts the distinct value tuples of some columns. Counted columns hold a
/// handful of values, so a row usually repeats the previous row's tuple.
fn distinct_counts(columns: &[&StringArray], rows: usize) -> Vec<(Vec<Option<String>>, u64)> {
    fn value(c: &StringArray, i: usize) -> Option<&str> {
        c.is_valid(i).then(|| c.value(i))
    }
    let mut index: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
    let mut tally: Vec<(Vec<Option<&str>>, u64)> = Vec::new();
    let mut last: Option<usize> = None;
    let mut key: Vec<Option<&str>> = Vec::with_capacity(columns.len());
    for i in 0..rows {
        if let Some(j) = last {
            let same = columns
                .iter()
                .zip(&tally[j].0)
                .all(|(c, v)| value(c, i) == *v);
            if same {
                tally[j].1 += 1;
                continue;
            }
        }
        key.clear();
        key.extend(columns.iter().map(|c| value(c, i)));
        let j = match index.get(key.as_slice()) {
            Some(&j) => j,
            None => {
                tally.push((key.clone(), 0));
                index.insert(key.clone(), tally.len() - 1);
                tally.len() - 1
            }
        };
        tally[j].1 += 1;
        last = Some(j);
    }
    tally
        .into_iter()
        .map(|(k, n)| (k.into_iter().map(|v| v.map(str::to_string)).collect(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_count_every_row_once() {
        let a = StringArray::from(vec![Some("x"), Some("x"), None, Some("y"), Some("x"), None]);
        let b = StringArray::from(vec![Some("1"), Some("2"), None, Some("1"), Some("1"), None]);
        let mut counts = distinct_counts(&[&a, &b], a.len());
        counts.sort();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            counts,
            vec![
                (vec![None, None], 2),
                (vec![s("x"), s("1")], 2),
                (vec![s("x"), s("2")], 1),
                (vec![s("y"), s("1")], 1),
            ]
        );
    }

    #[test]
    fn row_groups_end_at_a_bounded_size_well_before_parquets_row_limit() {
        use arrow::datatypes::{Field, Schema};
        // Strings of 400 characters from a 64-letter alphabet, pseudo-random:
        // 80 MB that neither dictionaries nor zstd shrink much.
        let rows = 200_000;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                .chars()
                .collect();
        let values: Vec<String> = (0..rows)
            .map(|_| {
                (0..400)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(state >> 58) as usize]
                    })
                    .collect()
            })
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            Vec::new(),
            Arc::clone(&schema),
            Some(properties(&schema)),
        )
        .unwrap();
        for chunk in values.chunks(8192) {
            let column = Arc::new(StringArray::from(chunk.to_vec()));
            writer
                .write(&RecordBatch::try_new(Arc::clone(&schema), vec![column]).unwrap())
                .unwrap();
        }
        let metadata = writer.close().unwrap();
        let groups = metadata.row_groups();
        assert!(groups.len() >= 2, "one row group of {} rows", rows);
        let counted: i64 = groups.iter().map(|g| g.num_rows()).sum();
        assert_eq!(counted, rows as i64);
        for group in groups {
            assert!(group.num_rows() < rows as i64);
            assert!(
                group.total_byte_size() as usize <= 2 * ROW_GROUP_BYTES,
                "row group of {} bytes",
                group.total_byte_size()
            );
        }
    }

    #[test]
    fn floating_point_columns_are_written_without_a_dictionary() {
        use arrow::array::Float64Array;
        use arrow::datatypes::Field;
        let schema = Arc::new(Schema::new(vec![
            Field::new("flux_g", DataType::Float64, false),
            Field::new("type", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Float64Array::from_iter_values(
                    (0..1000).map(|i| i as f64 * 0.1),
                )),
                Arc::new(StringArray::from_iter_values(
                    (0..1000).map(|i| ["DEV", "REX"][i % 2]),
                )),
            ],
        )
        .unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            Vec::new(),
            Arc::clone(&schema),
            Some(properties(&schema)),
        )
        .unwrap();
        writer.write(&batch).unwrap();
        let metadata = writer.close().unwrap();
        let columns = metadata.row_group(0).columns();
        assert!(columns[0].dictionary_page_offset().is_none());
        assert!(columns[1].dictionary_page_offset().is_some());
    }

    #[test]
    fn shard_names_differ_by_attempt_and_are_stable_in_one_process() {
        assert_eq!(shard_name(3, None), "part-00003.parquet");
        let a = shard_name(3, Some("TID j/1.0/4.0"));
        let b = shard_name(3, Some("TID j/1.0/4.1"));
        assert_ne!(a, b);
        assert_eq!(a, shard_name(3, Some("TID j/1.0/4.0")));
    }
}
