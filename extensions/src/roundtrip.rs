//! Every lenspipe plan node through the one plan codec and back, in the
//! manner of DataFusion's `roundtrip_physical_plan.rs`: the decoded plan
//! shows the same, each decoded node carries the same settings, and a plan
//! that can run here gives the same rows.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{collect, displayable, ExecutionPlan};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use lenspipe_cutouts::table::{ShardInput, ShardTable, TargetFile};
use lenspipe_cutouts::{
    CutoutSpec, CutoutWork, Plane, Resampling, ShardExec, ShardWork, SourceSpec,
};
use lenspipe_sinks::{CounterRows, PartitionWriterExec, WriteSpec, WriteTable};
use lenspipe_sweeps::{SweepsOptions, SweepsTable};
use lenspipe_validate::checks_job::ChecksWork;

fn logical_round_trip(plan: &LogicalPlan, ctx: &SessionContext) -> LogicalPlan {
    let codec = crate::plan_codec();
    let bytes = logical_plan_to_bytes_with_extension_codec(plan, codec.as_ref()).unwrap();
    let back =
        logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), codec.as_ref())
            .unwrap();
    assert_eq!(
        plan.display_indent_schema().to_string(),
        back.display_indent_schema().to_string()
    );
    back
}

fn physical_round_trip(
    plan: &Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
) -> Arc<dyn ExecutionPlan> {
    let codec = crate::plan_codec();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(Arc::clone(plan), codec.as_ref()).unwrap();
    let back =
        physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), codec.as_ref())
            .unwrap();
    // DataFusion's own Parquet scan drops a sort hint on the wire; the
    // hint is not ours, and not what this test is about.
    let shown = |p: &Arc<dyn ExecutionPlan>| {
        displayable(p.as_ref())
            .indent(true)
            .to_string()
            .lines()
            .map(|line| {
                line.split(", sort_order_for_reorder=")
                    .next()
                    .unwrap_or(line)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(shown(plan), shown(&back));
    back
}

/// The provider behind the plan's first table scan.
fn provider(plan: &LogicalPlan) -> Arc<dyn TableProvider> {
    let mut found = None;
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            found.get_or_insert(source_as_provider(&scan.source)?);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    found.expect("the plan scans a table")
}

/// Every node of `plan`, depth first.
fn nodes(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut all = vec![Arc::clone(plan)];
    for child in plan.children() {
        all.extend(nodes(child));
    }
    all
}

async fn sweeps() -> SweepsTable {
    let url = format!(
        "{}/../data/real-sweeps/sweep-310m005-320p000.fits",
        env!("CARGO_MANIFEST_DIR")
    );
    let options = SweepsOptions {
        target_partition_bytes: 1 << 20,
        batch_rows: 512,
    };
    SweepsTable::open(&RuntimeEnv::default(), &url, options)
        .await
        .unwrap()
}

async fn rows(plan: Arc<dyn ExecutionPlan>, ctx: &SessionContext) -> RecordBatch {
    let schema = plan.schema();
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}

#[tokio::test]
async fn the_sweeps_table_and_its_fits_scan_round_trip() {
    let ctx = SessionContext::new();
    let table = Arc::new(sweeps().await);
    let df = ctx
        .read_table(table.clone())
        .unwrap()
        .limit(0, Some(40))
        .unwrap();

    let back = logical_round_trip(df.logical_plan(), &ctx);
    let decoded = provider(&back);
    let decoded = decoded.downcast_ref::<SweepsTable>().unwrap();
    assert_eq!(decoded.location(), table.location());
    assert_eq!(decoded.files(), table.files());
    assert_eq!(decoded.options(), table.options());

    let plan = df.create_physical_plan().await.unwrap();
    let back = physical_round_trip(&plan, &ctx);
    let expected = rows(Arc::clone(&plan), &ctx).await;
    assert_eq!(expected.num_rows() as u64, table.total_rows().min(40));
    assert_eq!(rows(back, &ctx).await, expected);
    // The scan shows the row bytes it read among its metrics.
    let scanned: usize = nodes(&plan)
        .iter()
        .filter_map(|n| n.metrics()?.sum_by_name("bytes_scanned"))
        .map(|v| v.as_usize())
        .sum();
    assert!(scanned > 0, "the FITS scan reported no bytes scanned");
}

#[tokio::test]
async fn the_writer_table_and_its_partition_writer_round_trip() {
    let ctx = SessionContext::new();
    let table = Arc::new(sweeps().await);
    let first = table.schema().field(0).name().clone();
    let written = ctx.read_table(table).unwrap().limit(0, Some(10)).unwrap();
    let spec = WriteSpec::new("file:///nowhere/out/v-r1", [first.as_str()]).count(
        "by_first",
        &[first.as_str()],
        CounterRows::All,
    );
    let write = WriteTable::try_new(written.into_unoptimized_plan(), spec.clone()).unwrap();
    let df = ctx.read_table(Arc::new(write)).unwrap();

    let back = logical_round_trip(df.logical_plan(), &ctx);
    let decoded = provider(&back);
    let decoded = decoded.downcast_ref::<WriteTable>().unwrap();
    assert_eq!(decoded.spec(), &spec);
    // The plan inside, with the sweeps table in it, came through too.
    assert!(decoded
        .plan()
        .display_indent()
        .to_string()
        .contains("Limit"));
    provider(decoded.plan())
        .downcast_ref::<SweepsTable>()
        .expect("the written plan still scans the sweeps");

    let plan = df.create_physical_plan().await.unwrap();
    let back = physical_round_trip(&plan, &ctx);
    let writers: Vec<_> = nodes(&back)
        .into_iter()
        .filter_map(|n| {
            n.downcast_ref::<PartitionWriterExec>()
                .map(|w| w.spec().clone())
        })
        .collect();
    assert_eq!(writers, [spec]);
}

/// A Parquet file of three cutout targets, and its schema.
fn targets(dir: &std::path::Path) -> (String, Arc<Schema>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("galaxy_id", DataType::Utf8, false),
        Field::new("ra", DataType::Float64, false),
        Field::new("dec", DataType::Float64, false),
        Field::new("cutout_shard", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            Arc::new(Float64Array::from(vec![10.0, 10.1, 10.2])),
            Arc::new(Float64Array::from(vec![1.0, 1.1, 1.2])),
            Arc::new(Int64Array::from(vec![0, 1, 0])),
        ],
    )
    .unwrap();
    let path = dir.join("targets.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    (path.display().to_string(), schema)
}

#[tokio::test]
async fn the_cutouts_table_and_its_shard_operator_round_trip_for_both_jobs() {
    let ctx = SessionContext::new();
    let dir = tempfile::tempdir().unwrap();
    let (path, schema) = targets(dir.path());
    let plan = ctx
        .read_parquet(path.clone(), ParquetReadOptions::default())
        .await
        .unwrap()
        .into_unoptimized_plan();
    let cutouts: Arc<dyn ShardWork> = Arc::new(CutoutWork(CutoutSpec {
        output_url: "file:///nowhere/cutouts/v-r1".into(),
        resume_from: vec!["file:///nowhere/cutouts/v-r0".into()],
        source: SourceSpec::Bricks {
            coadds_url: "file:///nowhere/coadds".into(),
            resampling: Resampling::Native,
        },
        size: 101,
        pixscale: 0.262,
        bands: "grz".into(),
        planes: vec![Plane::Image, Plane::Invvar],
    }));
    let checks: Arc<dyn ShardWork> = Arc::new(ChecksWork(
        serde_json::from_value(serde_json::json!({
            "output_url": "file:///nowhere/validation/checks/v-r1",
            "carry": ["galaxy_id"],
            "duplicate_hashes": [7],
            "thresholds": {},
            "stats": {},
            "exclude_maskbits": 2
        }))
        .unwrap(),
    ));
    let files = ShardInput::Files {
        store_url: "file://".into(),
        files: vec![TargetFile {
            path: path.trim_start_matches('/').into(),
            size: std::fs::metadata(&path).unwrap().len(),
        }],
        schema,
    };
    // The decoded work is the same type with the same settings: its Debug
    // form names the type and every field.
    let same =
        |a: &Arc<dyn ShardWork>, b: &Arc<dyn ShardWork>| format!("{a:?}") == format!("{b:?}");
    for (work, input) in [(cutouts, ShardInput::Plan(plan)), (checks, files)] {
        let table = ShardTable::new(Arc::clone(&work), input);
        let df = ctx.read_table(Arc::new(table)).unwrap();
        let back = logical_round_trip(df.logical_plan(), &ctx);
        let decoded = provider(&back);
        let decoded = decoded.downcast_ref::<ShardTable>().unwrap();
        assert!(same(decoded.work(), &work), "{:?}", decoded.work());
        match decoded.input() {
            ShardInput::Plan(plan) => {
                assert!(plan
                    .schema()
                    .has_column_with_unqualified_name("cutout_shard"))
            }
            ShardInput::Files { files, .. } => {
                assert_eq!(files[0].path, path.trim_start_matches('/'))
            }
        }

        let plan = df.create_physical_plan().await.unwrap();
        let back = physical_round_trip(&plan, &ctx);
        let works: Vec<Arc<dyn ShardWork>> = nodes(&back)
            .into_iter()
            .filter_map(|n| n.downcast_ref::<ShardExec>().map(|s| Arc::clone(s.work())))
            .collect();
        assert_eq!(works.len(), 1);
        assert!(same(&works[0], &work), "{:?}", works[0]);
    }
}

/// A payload that names a node of ours but is damaged fails with an error,
/// not a panic, and not as some other node.
#[tokio::test]
async fn a_damaged_payload_is_an_error() {
    use datafusion_proto::physical_plan::{DefaultPhysicalProtoConverter, PhysicalExtensionCodec};
    let ctx = SessionContext::new();
    let codec = crate::plan_codec();
    let err = codec
        .try_decode(
            b"lenspipe.cutouts.exec.v1\n{not json",
            &[],
            &ctx.task_ctx(),
            &DefaultPhysicalProtoConverter {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("decoding plan"), "{err}");
}
