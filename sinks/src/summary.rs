//! The one row each written partition reports, and what the client makes
//! of them. Rows of data never travel this way: only these counts.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub const SHARD: &str = "shard";
pub const BYTES: &str = "bytes";
pub const ROWS_IN: &str = "rows_in";
pub const ROWS_WRITTEN: &str = "rows_written";
pub const COUNTS: &str = "counts";
pub const ATTEMPT: &str = "attempt";
pub const SECONDS: &str = "seconds";

/// The summary rows' schema.
pub fn summary_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            // The shard's file name inside the version folder; NULL when the
            // partition wrote no rows.
            Field::new(SHARD, DataType::Utf8, true),
            Field::new(BYTES, DataType::UInt64, false),
            Field::new(ROWS_IN, DataType::UInt64, false),
            Field::new(ROWS_WRITTEN, DataType::UInt64, false),
            // JSON: the partition's counters (see `Counts`).
            Field::new(COUNTS, DataType::Utf8, false),
            // Which task attempt wrote it (the engine's task id, if any).
            Field::new(ATTEMPT, DataType::Utf8, true),
            Field::new(SECONDS, DataType::Float64, false),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// Counters by name, then by their columns' values (NULL as `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts(pub BTreeMap<String, BTreeMap<Vec<Option<String>>, u64>>);

impl Counts {
    pub fn add(&mut self, counter: &str, key: Vec<Option<String>>, n: u64) {
        *self
            .0
            .entry(counter.to_string())
            .or_default()
            .entry(key)
            .or_default() += n;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (counter, values) in &other.0 {
            for (key, n) in values {
                self.add(counter, key.clone(), *n);
            }
        }
    }

    /// One counter's counts (empty if it counted nothing).
    pub fn counter(&self, name: &str) -> BTreeMap<Vec<Option<String>>, u64> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// One single-column counter's counts, by its column's value.
    pub fn by_value(&self, name: &str) -> BTreeMap<Option<String>, u64> {
        let mut out = BTreeMap::new();
        for (key, n) in self.counter(name) {
            *out.entry(key.into_iter().next().flatten()).or_default() += n;
        }
        out
    }

    /// One counter's counts summed over its keys.
    pub fn total(&self, name: &str) -> u64 {
        self.0.get(name).map_or(0, |values| values.values().sum())
    }

    /// As a list of `[counter, [values…], n]`, since JSON maps need string keys.
    pub fn to_json(&self) -> String {
        let rows: Vec<(&String, &Vec<Option<String>>, u64)> = self
            .0
            .iter()
            .flat_map(|(c, values)| values.iter().map(move |(k, n)| (c, k, *n)))
            .collect();
        serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let rows: Vec<(String, Vec<Option<String>>, u64)> = serde_json::from_str(text)
            .map_err(|e| DataFusionError::Execution(format!("summary counts '{text}': {e}")))?;
        let mut counts = Counts::default();
        for (c, k, n) in rows {
            counts.add(&c, k, n);
        }
        Ok(counts)
    }
}

/// One partition's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSummary {
    pub shard: Option<String>,
    pub bytes: u64,
    pub rows_in: u64,
    pub rows_written: u64,
    pub counts: Counts,
    pub attempt: Option<String>,
    pub seconds: f64,
}

impl ShardSummary {
    /// The summary as a one-row batch of [`summary_schema`].
    pub fn to_batch(&self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            summary_schema(),
            vec![
                Arc::new(StringArray::from(vec![self.shard.clone()])),
                Arc::new(UInt64Array::from(vec![self.bytes])),
                Arc::new(UInt64Array::from(vec![self.rows_in])),
                Arc::new(UInt64Array::from(vec![self.rows_written])),
                Arc::new(StringArray::from(vec![self.counts.to_json()])),
                Arc::new(StringArray::from(vec![self.attempt.clone()])),
                Arc::new(Float64Array::from(vec![self.seconds])),
            ],
        )?)
    }

    /// Every summary in a batch of [`summary_schema`], columns taken by name.
    pub fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Execution(format!("a writer summary lacks column '{name}'"))
            })
        };
        let u64s = |name: &str| -> Result<UInt64Array> {
            column(name)?
                .as_primitive_opt::<UInt64Type>()
                .cloned()
                .ok_or_else(|| DataFusionError::Execution(format!("summary column '{name}'")))
        };
        let strings = |name: &str| -> Result<StringArray> {
            column(name)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| DataFusionError::Execution(format!("summary column '{name}'")))
        };
        let (shard, attempt, counts) = (strings(SHARD)?, strings(ATTEMPT)?, strings(COUNTS)?);
        let (bytes, rows_in, rows_written) = (u64s(BYTES)?, u64s(ROWS_IN)?, u64s(ROWS_WRITTEN)?);
        let seconds = column(SECONDS)?
            .as_primitive_opt::<arrow::datatypes::Float64Type>()
            .cloned()
            .ok_or_else(|| DataFusionError::Execution(format!("summary column '{SECONDS}'")))?;
        let text = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
        (0..batch.num_rows())
            .map(|i| {
                Ok(ShardSummary {
                    shard: text(&shard, i),
                    bytes: bytes.value(i),
                    rows_in: rows_in.value(i),
                    rows_written: rows_written.value(i),
                    counts: Counts::from_json(counts.value(i))?,
                    attempt: text(&attempt, i),
                    seconds: seconds.value(i),
                })
            })
            .collect()
    }
}

/// What a node that reports [`ShardSummary`] rows shows among its metrics
/// (`EXPLAIN ANALYZE`, the scheduler's stage metrics): rows in, rows
/// written (as output rows) and bytes written, per partition.
pub struct SummaryMetrics {
    rows_in: Count,
    rows_written: Count,
    bytes: Count,
}

impl SummaryMetrics {
    pub fn new(metrics: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        Self {
            rows_in: MetricBuilder::new(metrics).counter("rows_in", partition),
            rows_written: MetricBuilder::new(metrics).output_rows(partition),
            bytes: MetricBuilder::new(metrics).counter("bytes_written", partition),
        }
    }

    pub fn record(&self, summary: &ShardSummary) {
        self.rows_in.add(summary.rows_in as usize);
        self.rows_written.add(summary.rows_written as usize);
        self.bytes.add(summary.bytes as usize);
    }

    /// Records every summary in a batch of [`summary_schema`].
    pub fn record_batch(&self, batch: &RecordBatch) -> Result<()> {
        for summary in ShardSummary::from_batch(batch)? {
            self.record(&summary);
        }
        Ok(())
    }
}

/// All partitions' reports, merged.
#[derive(Debug, Default, Clone)]
pub struct Summaries {
    pub shards: Vec<ShardSummary>,
    pub counts: Counts,
    pub rows_in: u64,
    pub rows_written: u64,
}

impl Summaries {
    /// Every summary row of `stream` (a writer's or a shard job's output),
    /// merged; `each` sees each summary as it arrives (for progress).
    pub async fn collect(
        mut stream: SendableRecordBatchStream,
        mut each: impl FnMut(&ShardSummary),
    ) -> Result<Self> {
        let mut all = Self::default();
        while let Some(batch) = stream.next().await {
            for summary in ShardSummary::from_batch(&batch?)? {
                each(&summary);
                all.push(summary);
            }
        }
        Ok(all)
    }

    pub fn push(&mut self, summary: ShardSummary) {
        // The same shard reported again with the same content is one shard
        // delivered twice (a cluster re-sending a finished task's result
        // after losing an executor), not two: counted once. A different
        // report naming the same shard is kept, for `check` to refuse.
        let same = |s: &ShardSummary| {
            s.shard.is_some()
                && s.shard == summary.shard
                && s.attempt == summary.attempt
                && (s.bytes, s.rows_in, s.rows_written)
                    == (summary.bytes, summary.rows_in, summary.rows_written)
                && s.counts == summary.counts
        };
        if self.shards.iter().any(same) {
            tracing::warn!(shard = ?summary.shard, "a shard's report arrived twice; counted once");
            return;
        }
        self.counts.merge(&summary.counts);
        self.rows_in += summary.rows_in;
        self.rows_written += summary.rows_written;
        self.shards.push(summary);
    }

    /// Checks that the shards are distinct and together hold the rows written.
    pub fn check(&self) -> Result<()> {
        let mut names: Vec<&str> = self
            .shards
            .iter()
            .filter_map(|s| s.shard.as_deref())
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(DataFusionError::Execution(format!(
                "shard '{}' was reported by two partitions",
                w[0]
            )));
        }
        if let Some(s) = self
            .shards
            .iter()
            .find(|s| s.shard.is_none() && s.rows_written > 0)
        {
            return Err(DataFusionError::Execution(format!(
                "a partition reports {} rows written but no shard",
                s.rows_written
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip_through_a_batch() {
        let mut counts = Counts::default();
        counts.add("reason", vec![None], 3);
        counts.add("reason", vec![Some("faint".into())], 2);
        counts.add("sample", vec![Some("1".into()), None], 7);
        let summary = ShardSummary {
            shard: Some("part-00001.parquet".into()),
            bytes: 10,
            rows_in: 5,
            rows_written: 3,
            counts,
            attempt: None,
            seconds: 0.5,
        };
        let back = ShardSummary::from_batch(&summary.to_batch().unwrap()).unwrap();
        assert_eq!(back, vec![summary.clone()]);
        assert_eq!(back[0].counts.by_value("reason").get(&None), Some(&3));
    }

    #[test]
    fn a_shard_reported_twice_counts_once_and_two_reports_of_it_are_an_error() {
        let summary = ShardSummary {
            shard: Some("part-a.parquet".into()),
            bytes: 1,
            rows_in: 1,
            rows_written: 1,
            counts: Counts::default(),
            attempt: None,
            seconds: 0.0,
        };
        let mut all = Summaries::default();
        all.push(summary.clone());
        assert!(all.check().is_ok());
        // The same report again (only its timing differs): one shard.
        all.push(ShardSummary {
            seconds: 2.0,
            ..summary.clone()
        });
        assert!(all.check().is_ok());
        assert_eq!((all.shards.len(), all.rows_in, all.rows_written), (1, 1, 1));
        // Another report naming the same shard: refused.
        all.push(ShardSummary {
            rows_written: 2,
            ..summary
        });
        let err = all.check().unwrap_err().to_string();
        assert!(err.contains("part-a.parquet"), "{err}");
    }
}
