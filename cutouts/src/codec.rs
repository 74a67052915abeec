//! How the cutout stage's nodes travel in plans ([`CutoutsNodes`], one part
//! of lenspipe's one plan codec).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use lenspipe_sweeps::{
    decode_tagged, schema_from_bytes, schema_to_bytes, single_input, tagged, NodeCodec,
};
use serde::{Deserialize, Serialize};

use crate::exec::{ShardExec, ShardJob};
use crate::table::{CutoutsTable, ShardInput, TargetFile};

const TABLE_TAG: &[u8] = b"lenspipe.shards.table.v2\n";
const EXEC_TAG: &[u8] = b"lenspipe.shards.exec.v1\n";

#[derive(Serialize, Deserialize)]
struct TableSpec {
    job: ShardJob,
    input: InputSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum InputSpec {
    /// A logical plan as DataFusion protobuf bytes, encoded with the whole
    /// codec (so tables of ours inside it travel too).
    Plan { plan: Vec<u8> },
    Files {
        store_url: String,
        files: Vec<TargetFile>,
        /// The files' schema as a DataFusion protobuf `Schema`.
        schema: Vec<u8>,
    },
}

/// The cutout stage's nodes: [`CutoutsTable`] in logical plans (client to
/// scheduler; a plan input is encoded with the whole codec, so tables of
/// ours inside it travel too) and [`ShardExec`] in physical plans
/// (scheduler to executors).
#[derive(Debug, Default)]
pub struct CutoutsNodes;

impl NodeCodec for CutoutsNodes {
    fn encode_table(
        &self,
        table: &Arc<dyn TableProvider>,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        let table = table.downcast_ref::<CutoutsTable>()?;
        Some((|| {
            let input = match table.input() {
                ShardInput::Plan(plan) => InputSpec::Plan {
                    plan: logical_plan_to_bytes_with_extension_codec(plan, whole)?.to_vec(),
                },
                ShardInput::Files {
                    store_url,
                    files,
                    schema,
                } => InputSpec::Files {
                    store_url: store_url.clone(),
                    files: files.clone(),
                    schema: schema_to_bytes(schema)?,
                },
            };
            let spec = TableSpec {
                job: table.job().clone(),
                input,
            };
            tagged(TABLE_TAG, &spec)
        })())
    }

    fn decode_table(
        &self,
        buf: &[u8],
        _schema: &SchemaRef,
        ctx: &TaskContext,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        let spec = decode_tagged::<TableSpec>(TABLE_TAG, buf)?;
        Some(spec.and_then(|spec| {
            let input = match spec.input {
                InputSpec::Plan { plan } => ShardInput::Plan(
                    logical_plan_from_bytes_with_extension_codec(&plan, ctx, whole)?,
                ),
                InputSpec::Files {
                    store_url,
                    files,
                    schema,
                } => ShardInput::Files {
                    store_url,
                    files,
                    schema: schema_from_bytes(&schema)?,
                },
            };
            Ok(Arc::new(CutoutsTable::new(spec.job, input)) as Arc<dyn TableProvider>)
        }))
    }

    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        let exec = node.downcast_ref::<ShardExec>()?;
        Some(tagged(EXEC_TAG, exec.job()))
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let job = decode_tagged::<ShardJob>(EXEC_TAG, buf)?;
        Some(job.and_then(|job| {
            let input = single_input("ShardExec", inputs)?;
            Ok(Arc::new(ShardExec::new(Arc::clone(input), job)) as Arc<dyn ExecutionPlan>)
        }))
    }
}
