//! Small join build sides read inside each task instead of in a stage of
//! their own.
//!
//! Every join in the plans pairs the sweeps with a small table the client
//! made and shared as a Parquet file (lens cells, match cells, quotas).
//! DataFusion plans it as a collect-left hash join, and Ballista's planner
//! makes the build side of every such join a broadcast stage. A stage
//! boundary costs a scheduling round trip under pull scheduling (the
//! finished task is reported at the executor's next poll, the next stage's
//! tasks go out at the poll after: about 100 ms measured) to read a file of
//! a few megabytes, which each task can read itself in milliseconds.
//!
//! [`InlineSmallBuildSides`] wraps such a join in [`InlinedBuildJoinExec`],
//! whose only child is the probe side, so the distributed planner sees no
//! build side to stage; each task's copy of the join reads the file. Only
//! build sides that read nothing but files totalling at most
//! [`MAX_INLINED_BUILD_BYTES`] are wrapped; in-memory tables (the embedded
//! engine's) and anything derived from the sweeps are left alone.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::JoinType;
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_proto_converter, physical_plan_to_bytes_with_proto_converter,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use lenspipe_sweeps::{single_input, NodeCodec};

/// The most a build side may read to be inlined: every task reads it.
pub const MAX_INLINED_BUILD_BYTES: u64 = 64 * 1024 * 1024;

/// Wraps collect-left hash joins whose build side is a small file scan in
/// [`InlinedBuildJoinExec`]. Runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct InlineSmallBuildSides;

impl PhysicalOptimizerRule for InlineSmallBuildSides {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let small = build_side_per_task_is_exact(join)
                && file_scan_bytes(join.left()).is_some_and(|b| b <= MAX_INLINED_BUILD_BYTES);
            if !small {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(InlinedBuildJoinExec::try_new(node)?) as Arc<dyn ExecutionPlan>,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inline_small_build_sides"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether each task may build its own copy of the join's build side: a
/// collect-left join where every output row comes from a probe row. The
/// other joins (left, full, left semi, anti and mark) also emit build rows
/// once the whole probe side is seen, which a shared build side coordinates
/// across partitions: with one build side per task, each task would emit
/// them.
fn build_side_per_task_is_exact(join: &HashJoinExec) -> bool {
    *join.partition_mode() == PartitionMode::CollectLeft
        && matches!(
            join.join_type(),
            JoinType::Inner
                | JoinType::Right
                | JoinType::RightSemi
                | JoinType::RightAnti
                | JoinType::RightMark
        )
}

/// The bytes of the files `plan` reads, if everything it reads is files.
fn file_scan_bytes(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let children = plan.children();
    if children.is_empty() {
        let source = plan.downcast_ref::<DataSourceExec>()?;
        let files = source.data_source().downcast_ref::<FileScanConfig>()?;
        return Some(
            files
                .file_groups
                .iter()
                .flat_map(|group| group.iter())
                .map(|file| file.object_meta.size)
                .sum(),
        );
    }
    children.into_iter().map(file_scan_bytes).sum()
}

/// A collect-left hash join whose build side is not a child: the plan's
/// only child is the probe side, and each execution of the join builds its
/// hash table from the (small) build side itself.
#[derive(Debug)]
pub struct InlinedBuildJoinExec {
    join: Arc<dyn ExecutionPlan>,
}

impl InlinedBuildJoinExec {
    /// `join` must be a collect-left [`HashJoinExec`] whose output rows all
    /// come from probe rows.
    pub fn try_new(join: Arc<dyn ExecutionPlan>) -> Result<Self> {
        match join.downcast_ref::<HashJoinExec>() {
            Some(j) if build_side_per_task_is_exact(j) => Ok(Self { join }),
            _ => Err(DataFusionError::Internal(format!(
                "InlinedBuildJoinExec wraps a collect-left hash join driven by its probe side, not {}",
                join.name()
            ))),
        }
    }

    /// The wrapped join, build and probe sides both as children.
    pub fn join(&self) -> &Arc<dyn ExecutionPlan> {
        &self.join
    }

    fn build(&self) -> &Arc<dyn ExecutionPlan> {
        self.join.children()[0]
    }

    fn probe(&self) -> &Arc<dyn ExecutionPlan> {
        self.join.children()[1]
    }
}

impl DisplayAs for InlinedBuildJoinExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "InlinedBuildJoinExec: build side read in every task: ")?;
        self.join.fmt_as(t, f)
    }
}

impl ExecutionPlan for InlinedBuildJoinExec {
    fn name(&self) -> &str {
        "InlinedBuildJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.join.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.probe()]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![self.join.maintains_input_order()[1]]
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
        let probe = single_input("InlinedBuildJoinExec", &children)?;
        let join = Arc::clone(&self.join).replace_children(
            vec![Arc::clone(self.build()), Arc::clone(probe)],
            recompute(),
        )?;
        Ok(Arc::new(Self::try_new(join)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.join.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.join.metrics()
    }
}

fn recompute() -> ReplaceChildrenOptions {
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute)
}

const EXEC_TAG: &[u8] = b"lenspipe.inlined-build-join.v1\n";

/// Carries [`InlinedBuildJoinExec`]: the join with its build side and a
/// placeholder for the probe side, which the plan carries as the node's
/// input.
#[derive(Debug, Default)]
pub struct InlinedJoinNodes;

impl NodeCodec for InlinedJoinNodes {
    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        whole: &dyn PhysicalExtensionCodec,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        let exec = node.downcast_ref::<InlinedBuildJoinExec>()?;
        Some((|| {
            let placeholder = Arc::new(EmptyExec::new(exec.probe().schema()));
            let for_wire = Arc::clone(exec.join())
                .replace_children(vec![Arc::clone(exec.build()), placeholder], recompute())?;
            let bytes = physical_plan_to_bytes_with_proto_converter(for_wire, whole, converter)?;
            Ok([EXEC_TAG, &bytes[..]].concat())
        })())
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        whole: &dyn PhysicalExtensionCodec,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let bytes = buf.strip_prefix(EXEC_TAG)?;
        Some((|| {
            let probe = single_input("InlinedBuildJoinExec", inputs)?;
            let join = physical_plan_from_bytes_with_proto_converter(bytes, ctx, whole, converter)?;
            let build = Arc::clone(join.children().first().ok_or_else(|| {
                DataFusionError::Internal("an inlined join arrived without its build side".into())
            })?);
            let join = join.replace_children(vec![build, Arc::clone(probe)], recompute())?;
            Ok(Arc::new(InlinedBuildJoinExec::try_new(join)?) as Arc<dyn ExecutionPlan>)
        })())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    use super::*;

    fn batch(names: [&str; 2], a: Vec<i64>, b: Vec<i64>) -> RecordBatch {
        RecordBatch::try_from_iter([
            (names[0], Arc::new(Int64Array::from(a)) as _),
            (names[1], Arc::new(Int64Array::from(b)) as _),
        ])
        .unwrap()
    }

    fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
        let file = std::fs::File::create(path).unwrap();
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }

    fn context() -> SessionContext {
        SessionContext::new_with_state(
            crate::session_state(crate::tune(SessionConfig::new().with_target_partitions(2)))
                .unwrap(),
        )
    }

    const JOIN: &str = "SELECT p.x, c.v FROM cells c RIGHT JOIN probe p ON c.cell = p.cell";

    async fn sorted_text(batches: &[RecordBatch]) -> String {
        let ctx = SessionContext::new();
        let table = MemTable::try_new(batches[0].schema(), vec![batches.to_vec()]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let sorted = ctx.sql("SELECT * FROM t ORDER BY x").await.unwrap();
        pretty_format_batches(&sorted.collect().await.unwrap())
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_small_file_build_side_is_inlined_and_survives_the_codec() {
        let dir = tempfile::tempdir().unwrap();
        let cells = dir.path().join("cells.parquet");
        write_parquet(
            &cells,
            &batch(["cell", "v"], vec![1, 2, 3], vec![10, 20, 30]),
        );
        let probe_dir = dir.path().join("probe");
        std::fs::create_dir(&probe_dir).unwrap();
        for part in 0..2 {
            let xs: Vec<i64> = (0..50).map(|i| part * 50 + i).collect();
            let probe = batch(["cell", "x"], xs.iter().map(|x| x % 5).collect(), xs);
            write_parquet(&probe_dir.join(format!("part-{part}.parquet")), &probe);
        }
        let ctx = context();
        let options = ParquetReadOptions::default;
        ctx.register_parquet("cells", cells.to_str().unwrap(), options())
            .await
            .unwrap();
        let probe_url = format!("{}/", probe_dir.display());
        ctx.register_parquet("probe", &probe_url, options())
            .await
            .unwrap();

        let plan = ctx
            .sql(JOIN)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let wrapped = find(&plan).unwrap_or_else(|| panic!("no inlined join in\n{shown}"));
        assert_eq!(
            wrapped.children().len(),
            1,
            "the build side is a child:\n{shown}"
        );

        let codec = crate::physical_codec();
        let bytes =
            physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), codec.as_ref()).unwrap();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), codec.as_ref())
                .unwrap();
        assert!(find(&decoded).is_some(), "the codec lost the inlined join");

        let expected = collect(plan, ctx.task_ctx()).await.unwrap();
        let got = collect(decoded, ctx.task_ctx()).await.unwrap();
        assert_eq!(sorted_text(&expected).await, sorted_text(&got).await);
        // A right join keeps all 100 probe rows; cells 1, 2, 3 match 60.
        let rows: usize = got.iter().map(|b| b.num_rows()).sum();
        let matched: usize = got
            .iter()
            .map(|b| b.num_rows() - b.column_by_name("v").unwrap().null_count())
            .sum();
        assert_eq!((rows, matched), (100, 60));
    }

    #[tokio::test]
    async fn a_join_that_emits_unmatched_build_rows_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context();
        for (name, b) in [
            (
                "cells",
                batch(["cell", "v"], vec![1, 2, 9], vec![10, 20, 90]),
            ),
            ("probe", batch(["cell", "x"], vec![1, 2, 3], vec![1, 2, 3])),
        ] {
            let path = dir.path().join(format!("{name}.parquet"));
            write_parquet(&path, &b);
            ctx.register_parquet(name, path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap();
        }
        let left = "SELECT c.v, p.x FROM cells c LEFT JOIN probe p ON c.cell = p.cell";
        assert_eq!(rows_without_inlining(&ctx, left).await, 3);
    }

    #[tokio::test]
    async fn an_in_memory_build_side_is_left_alone() {
        let ctx = context();
        let cells = batch(["cell", "v"], vec![1, 2], vec![10, 20]);
        let probe = batch(["cell", "x"], vec![1, 2, 3], vec![1, 2, 3]);
        for (name, b) in [("cells", cells), ("probe", probe)] {
            let table = MemTable::try_new(b.schema(), vec![vec![b]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        assert_eq!(rows_without_inlining(&ctx, JOIN).await, 3);
    }

    /// Plans `sql`, checks no join in it was inlined, and counts its rows.
    async fn rows_without_inlining(ctx: &SessionContext, sql: &str) -> usize {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        assert!(find(&plan).is_none(), "an inlined join in {sql}");
        let batches = collect(plan, ctx.task_ctx()).await.unwrap();
        batches.iter().map(|b| b.num_rows()).sum()
    }

    fn find(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
        if plan.downcast_ref::<InlinedBuildJoinExec>().is_some() {
            return Some(Arc::clone(plan));
        }
        plan.children().into_iter().find_map(find)
    }
}
