//! The per-cutout checks of the validation stage, as a shard job
//! ([`ChecksWork`] on lenspipe-cutouts' `ShardExec`): each shard's cutouts
//! are measured and checked where the shard is read, one record batch at a
//! time, and only the small per-cutout rows (statistics, failed checks, no
//! pixels) are written, into the staged version of
//! `<output>/validation/checks/`. [`CHECKS_NODES`] carries the job in plans.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int64Array, ListBuilder,
    PrimitiveArray, RecordBatch, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float32Type, Int32Type, Schema, SchemaRef,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use futures::stream::BoxStream;
use futures::StreamExt;
use lenspipe_cutouts::codec::ShardNodes;
use lenspipe_cutouts::exec::{encode_parquet, Output};
use lenspipe_cutouts::{schema, ShardWork};
use lenspipe_sinks::{Counts, ShardSummary};
use serde::{Deserialize, Serialize};

use crate::checks::{failed_checks, low_invvar_at_centre, masked_at_centre, Check, Thresholds};
use crate::stats::{StatsComputer, StatsParams, EXPECTED_SHAPE, IMAGE_FEATURES};

pub const PASSED: &str = "passed";
pub const FAILURES: &str = "failures";
pub const IMAGE_HASH: &str = "image_hash";

/// What the checks need, carried in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksSpec {
    /// The staged version folder of `<output>/validation/checks`.
    pub output_url: String,
    /// Input columns copied to each row (identity and catalogue features).
    pub carry: Vec<String>,
    /// Pixel hashes shared by several targets: every row with one fails `duplicate_image`.
    pub duplicate_hashes: Vec<i64>,
    pub thresholds: Thresholds,
    pub stats: StatsParams,
    /// Mask bits whose presence at the centre fails `masked_centre`.
    #[serde(default)]
    pub exclude_maskbits: i64,
}

/// What a checks shard's summary counts besides rows: the rows that passed,
/// and failures by check.
pub const COUNT_PASSED: &str = "passed";
pub const COUNT_FAILED_CHECK: &str = "failed_check";

/// The checks rows' schema: the carried columns, then the verdict, then
/// one Float64 column per image statistic.
pub fn output_schema(input: &Schema, spec: &ChecksSpec) -> Result<SchemaRef> {
    let mut fields = Vec::new();
    for name in &spec.carry {
        let field = input
            .field_with_name(name)
            .map_err(|_| DataFusionError::Plan(format!("the cutouts lack the column '{name}'")))?;
        fields.push(field.clone().with_nullable(true));
    }
    fields.push(Field::new(PASSED, DataType::Boolean, false));
    fields.push(Field::new(
        FAILURES,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        false,
    ));
    fields.push(Field::new(IMAGE_HASH, DataType::Int64, true));
    for name in IMAGE_FEATURES {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The pixel values of row `i`, if any (List or FixedSizeList of Float32).
pub fn pixels(images: &ArrayRef, i: usize) -> Result<Option<Float32Array>> {
    list_row::<Float32Type>(images, i, schema::IMAGE)
}

/// Row `i` of a list column of `T` (List, LargeList or FixedSizeList),
/// `None` when null; `what` names the column in errors.
fn list_row<T: ArrowPrimitiveType>(
    column: &ArrayRef,
    i: usize,
    what: &str,
) -> Result<Option<PrimitiveArray<T>>> {
    if column.is_null(i) {
        return Ok(None);
    }
    let values = match column.data_type() {
        DataType::FixedSizeList(_, _) => column.as_fixed_size_list().value(i),
        DataType::List(_) => column.as_list::<i32>().value(i),
        DataType::LargeList(_) => column.as_list::<i64>().value(i),
        dt => {
            return Err(DataFusionError::Plan(format!(
                "the {what} column is {dt}, not a list of {}",
                T::DATA_TYPE
            )))
        }
    };
    match values.as_primitive_opt::<T>() {
        Some(v) => Ok(Some(v.clone())),
        None => Err(DataFusionError::Plan(format!(
            "{what} values are {}, not {}",
            values.data_type(),
            T::DATA_TYPE
        ))),
    }
}

struct Checker {
    spec: ChecksSpec,
    duplicates: HashSet<i64>,
    computer: StatsComputer,
    schema: SchemaRef,
    failures: BTreeMap<String, u64>,
    rows: u64,
    passed: u64,
    id_hash: u64,
}

impl Checker {
    fn batch(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let images = batch
            .column_by_name(schema::IMAGE)
            .ok_or_else(|| DataFusionError::Plan("the cutouts lack the image column".into()))?;
        let invvars = batch.column_by_name(schema::INVVAR);
        let maskbits = batch.column_by_name(schema::MASKBITS);
        let statuses = match batch.column_by_name(schema::STATUS) {
            Some(s) => Some(cast(s, &DataType::Utf8)?.as_string::<i32>().clone()),
            None => None,
        };
        let ids = cast(
            batch
                .column_by_name(schema::GALAXY_ID)
                .ok_or_else(|| DataFusionError::Plan("the cutouts lack galaxy_id".into()))?,
            &DataType::Utf8,
        )?;
        let ids = ids.as_string::<i32>();
        let n = batch.num_rows();
        let mut passed = Vec::with_capacity(n);
        let mut failures = ListBuilder::new(StringBuilder::new());
        let mut hashes = Vec::with_capacity(n);
        let mut features: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n); IMAGE_FEATURES.len()];
        for i in 0..n {
            if ids.is_valid(i) {
                self.id_hash = lenspipe_udfs::stable_hash_unit::fnv1a64_update(
                    self.id_hash,
                    ids.value(i).as_bytes(),
                );
            }
            let status =
                statuses
                    .as_ref()
                    .map_or("ok", |s| if s.is_valid(i) { s.value(i) } else { "" });
            let image = pixels(images, i)?;
            let (failed, stats, hash) = match &image {
                None => {
                    // No pixels at all: the status says why when it is not ok.
                    let check = if status == crate::checks::STATUS_OK {
                        Check::WrongShape
                    } else {
                        Check::NotOkStatus
                    };
                    (vec![check], None, None)
                }
                Some(values) => {
                    let values = values.values();
                    let hash = lenspipe_udfs::image_hash_values(values);
                    let shape: Vec<usize> =
                        if values.len() == EXPECTED_SHAPE.iter().product::<usize>() {
                            EXPECTED_SHAPE.to_vec()
                        } else {
                            vec![values.len()]
                        };
                    let stats = if shape == EXPECTED_SHAPE {
                        self.computer.compute(values).ok()
                    } else {
                        None
                    };
                    let mut failed = failed_checks(
                        values,
                        &shape,
                        status,
                        stats.as_ref(),
                        &self.spec.thresholds,
                    );
                    if self.duplicates.contains(&hash) {
                        failed.push(Check::DuplicateImage);
                    }
                    let (bands, size) = (EXPECTED_SHAPE[0], EXPECTED_SHAPE[1]);
                    if let Some(invvar) = invvars.map(|c| pixels(c, i)).transpose()?.flatten() {
                        if low_invvar_at_centre(invvar.values(), bands, size) {
                            failed.push(Check::LowInvvar);
                        }
                    }
                    if let Some(bits) = maskbits
                        .map(|c| list_row::<Int32Type>(c, i, schema::MASKBITS))
                        .transpose()?
                        .flatten()
                    {
                        if masked_at_centre(bits.values(), size, self.spec.exclude_maskbits) {
                            failed.push(Check::MaskedCentre);
                        }
                    }
                    failed.sort_by_key(|c| Check::ALL.iter().position(|a| a == c));
                    (failed, stats, Some(hash))
                }
            };
            for (column, name) in features.iter_mut().zip(IMAGE_FEATURES) {
                column.push(stats.as_ref().and_then(|s| s.feature(name)));
            }
            hashes.push(hash);
            passed.push(failed.is_empty());
            if failed.is_empty() {
                self.passed += 1;
            }
            for check in &failed {
                *self.failures.entry(check.as_str().to_string()).or_default() += 1;
                failures.values().append_value(check.as_str());
            }
            failures.append(true);
        }
        self.rows += n as u64;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for name in &self.spec.carry {
            let column = batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Plan(format!("the cutouts lack the column '{name}'"))
            })?;
            columns.push(Arc::clone(column));
        }
        columns.push(Arc::new(BooleanArray::from(passed)));
        columns.push(Arc::new(failures.finish()));
        columns.push(Arc::new(Int64Array::from(hashes)));
        for column in features {
            columns.push(Arc::new(Float64Array::from(column)));
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// Shards read at once per process: a shard's images are decoded a row group
/// at a time (up to `cutouts.shard_rows` images), so memory is bounded by
/// this, not by the number of shards.
fn shard_turns() -> Arc<tokio::sync::Semaphore> {
    static TURNS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::clone(TURNS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(cores))))
}

async fn run_partition(
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    spec: ChecksSpec,
    context: Arc<TaskContext>,
) -> Result<RecordBatch> {
    let _turn = shard_turns()
        .acquire_owned()
        .await
        .map_err(|e| DataFusionError::Internal(e.to_string()))?;
    let started = std::time::Instant::now();
    let mut input = input.execute(partition, Arc::clone(&context))?;
    let output = Output::resolve(&spec.output_url, &context)?;
    let schema = output_schema(input.schema().as_ref(), &spec)?;
    let (height, width) = (EXPECTED_SHAPE[1], EXPECTED_SHAPE[2]);
    let mut checker = Checker {
        duplicates: spec.duplicate_hashes.iter().copied().collect(),
        computer: StatsComputer::new(height, width, spec.stats.clone()),
        schema: Arc::clone(&schema),
        spec,
        failures: BTreeMap::new(),
        rows: 0,
        passed: 0,
        id_hash: lenspipe_udfs::stable_hash_unit::FNV_OFFSET_BASIS,
    };
    let mut out = Vec::new();
    while let Some(batch) = input.next().await {
        out.push(checker.batch(&batch?)?);
    }
    let (mut shard, mut bytes) = (None, 0);
    if checker.rows > 0 {
        let rows = arrow::compute::concat_batches(&schema, &out)?;
        // Named by the shard's targets: a task run twice writes the same object.
        let name = format!("part-{:016x}.parquet", checker.id_hash);
        let encoded = encode_parquet(&rows)?;
        bytes = encoded.len() as u64;
        output.put(&name, encoded).await?;
        shard = Some(name);
    }
    tracing::info!(rows = checker.rows, passed = checker.passed, shard = ?shard, "checks shard written");
    let mut counts = Counts::default();
    counts.add(COUNT_PASSED, vec![], checker.passed);
    for (check, n) in &checker.failures {
        counts.add(COUNT_FAILED_CHECK, vec![Some(check.clone())], *n);
    }
    ShardSummary {
        shard,
        bytes,
        rows_in: checker.rows,
        rows_written: checker.rows,
        counts,
        attempt: context.task_id(),
        seconds: started.elapsed().as_secs_f64(),
    }
    .to_batch()
}

/// Checking cutouts: the validation's shard job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksWork(pub ChecksSpec);

impl ShardWork for ChecksWork {
    fn describe(&self) -> String {
        format!("checks into {}", self.0.output_url)
    }

    fn run(
        &self,
        input: Arc<dyn ExecutionPlan>,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        // The scan starts only when the shard's turn comes (see run_partition).
        let spec = self.0.clone();
        let work = async move { run_partition(input, partition, spec, context).await };
        Ok(futures::stream::once(work).boxed())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The checks job's nodes in plans.
pub const CHECKS_NODES: ShardNodes<ChecksWork> =
    ShardNodes::new(b"lenspipe.checks.table.v1\n", b"lenspipe.checks.exec.v1\n");

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{FixedSizeListArray, Int64Array, StringArray};
    use datafusion::prelude::SessionContext;
    use lenspipe_cutouts::{ShardInput, ShardTable, TargetFile};

    const LEN: usize = 3 * 101 * 101;

    /// A faint round galaxy at the centre of every band.
    fn galaxy() -> Vec<f32> {
        let mut out = Vec::with_capacity(LEN);
        for _band in 0..3 {
            for y in 0..101 {
                for x in 0..101 {
                    let r2 = ((x as f32 - 50.0).powi(2) + (y as f32 - 50.0).powi(2)) / 9.0;
                    out.push(0.5 * (-0.5 * r2).exp() + 0.001 * ((x * 7 + y * 13) % 5) as f32);
                }
            }
        }
        out
    }

    /// One shard file of four cutouts: a galaxy, NaN pixels, the galaxy's
    /// pixels again under another id, and no pixels (status no_coverage).
    fn shard(dir: &std::path::Path) -> (TargetFile, SchemaRef) {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new(schema::GALAXY_ID, DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
            Field::new(schema::STATUS, DataType::Utf8, false),
            Field::new(
                schema::IMAGE,
                DataType::FixedSizeList(Arc::clone(&item), LEN as i32),
                true,
            ),
        ]));
        let mut values = galaxy();
        values.extend(std::iter::repeat_n(f32::NAN, LEN));
        values.extend(galaxy());
        values.extend(std::iter::repeat_n(0.0, LEN));
        let images = FixedSizeListArray::try_new(
            item,
            LEN as i32,
            Arc::new(Float32Array::from(values)),
            Some(vec![true, true, true, false].into()),
        )
        .unwrap();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Int64Array::from(vec![1, 0, 0, 0])),
                Arc::new(StringArray::from(vec!["ok", "ok", "ok", "no_coverage"])),
                Arc::new(images),
            ],
        )
        .unwrap();
        let path = dir.join("shard-000000.parquet");
        std::fs::write(&path, encode_parquet(&batch).unwrap()).unwrap();
        let file = TargetFile {
            path: path
                .display()
                .to_string()
                .trim_start_matches('/')
                .to_string(),
            size: std::fs::metadata(&path).unwrap().len(),
        };
        (file, schema)
    }

    /// Runs the checks job over the shard; its summaries and the rows it
    /// wrote, by galaxy_id: (failures, image_hash).
    async fn check(
        dir: &std::path::Path,
        duplicate_hashes: Vec<i64>,
    ) -> (
        Vec<ShardSummary>,
        BTreeMap<String, (Vec<String>, Option<i64>)>,
    ) {
        let (file, input_schema) = shard(dir);
        let out = dir.join(format!("checks-{}", duplicate_hashes.len()));
        let spec = ChecksSpec {
            output_url: format!("file://{}", out.display()),
            carry: vec![schema::GALAXY_ID.into(), "label".into()],
            duplicate_hashes,
            thresholds: Thresholds::default(),
            stats: StatsParams::default(),
            exclude_maskbits: 0,
        };
        let table = ShardTable::new(
            Arc::new(ChecksWork(spec)),
            ShardInput::Files {
                store_url: "file://".into(),
                files: vec![file],
                schema: input_schema,
            },
        );
        let ctx = SessionContext::new();
        let batches = ctx
            .read_table(Arc::new(table))
            .unwrap()
            .collect()
            .await
            .unwrap();
        let summaries: Vec<ShardSummary> = batches
            .iter()
            .flat_map(|b| ShardSummary::from_batch(b).unwrap())
            .collect();
        let written = ctx
            .read_parquet(
                format!("{}/", out.display()),
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut rows = BTreeMap::new();
        for b in &written {
            let ids = cast(
                b.column_by_name(schema::GALAXY_ID).unwrap(),
                &DataType::Utf8,
            )
            .unwrap();
            let ids = ids.as_string::<i32>();
            let failures = b.column_by_name(FAILURES).unwrap().as_list::<i32>();
            let hashes = b
                .column_by_name(IMAGE_HASH)
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                let failed = failures.value(i);
                let failed: Vec<String> = failed
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect();
                let hash = hashes.is_valid(i).then(|| hashes.value(i));
                rows.insert(ids.value(i).to_string(), (failed, hash));
            }
        }
        (summaries, rows)
    }

    #[tokio::test]
    async fn every_cutout_gets_its_checks_and_the_summary_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let (summaries, rows) = check(dir.path(), Vec::new()).await;
        assert_eq!(summaries.len(), 1);
        let summary = &summaries[0];
        assert_eq!((summary.rows_in, summary.rows_written), (4, 4));
        assert!(summary.shard.is_some() && summary.bytes > 0);
        assert_eq!(rows.len(), 4);
        assert!(rows["b"].0.contains(&"nan_pixels".to_string()), "{rows:?}");
        assert_eq!(rows["d"].0, ["not_ok_status"], "{rows:?}");
        assert!(!rows["a"].0.contains(&"nan_pixels".to_string()), "{rows:?}");
        // The same pixels hash the same; no pixels, no hash.
        assert_eq!(rows["a"].1, rows["c"].1);
        assert!(rows["a"].1.is_some() && rows["d"].1.is_none());
        // The summary counts exactly what the rows say.
        let passed = rows.values().filter(|(f, _)| f.is_empty()).count() as u64;
        assert_eq!(summary.counts.total(COUNT_PASSED), passed);
        let nan = summary.counts.by_value(COUNT_FAILED_CHECK);
        assert_eq!(nan.get(&Some("nan_pixels".to_string())), Some(&1));
        assert_eq!(nan.get(&Some("not_ok_status".to_string())), Some(&1));

        // Told which hashes are shared, both holders fail duplicate_image.
        let shared = rows["a"].1.unwrap();
        let (_, again) = check(dir.path(), vec![shared]).await;
        for id in ["a", "c"] {
            assert!(
                again[id].0.contains(&"duplicate_image".to_string()),
                "{again:?}"
            );
        }
        assert!(!again["b"].0.contains(&"duplicate_image".to_string()));
    }
}
