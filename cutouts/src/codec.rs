//! How shard jobs travel in plans: a [`ShardTable`] in logical plans (client
//! to scheduler; a plan input is encoded with the whole codec, so tables of
//! ours inside it travel too) and a [`ShardExec`] in physical plans
//! (scheduler to executors). The functions here carry any [`ShardWork`]
//! that serializes; [`CutoutsNodes`] uses them for the cutouts, and
//! lenspipe-validate for its checks.

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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::exec::{CutoutWork, ShardExec, ShardWork};
use crate::table::{ShardInput, ShardTable, TargetFile};

const TABLE_TAG: &[u8] = b"lenspipe.cutouts.table.v1\n";
const EXEC_TAG: &[u8] = b"lenspipe.cutouts.exec.v1\n";

#[derive(Serialize, Deserialize)]
struct TableSpec<W> {
    work: W,
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

fn encode_input(input: &ShardInput, whole: &dyn LogicalExtensionCodec) -> Result<InputSpec> {
    Ok(match input {
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
    })
}

fn decode_input(
    input: InputSpec,
    ctx: &TaskContext,
    whole: &dyn LogicalExtensionCodec,
) -> Result<ShardInput> {
    Ok(match input {
        InputSpec::Plan { plan } => ShardInput::Plan(logical_plan_from_bytes_with_extension_codec(
            &plan, ctx, whole,
        )?),
        InputSpec::Files {
            store_url,
            files,
            schema,
        } => ShardInput::Files {
            store_url,
            files,
            schema: schema_from_bytes(&schema)?,
        },
    })
}

/// `tag` and a [`ShardTable`] doing a `W`; `None` for any other table.
pub fn encode_shard_table<W: ShardWork + Serialize>(
    tag: &[u8],
    table: &Arc<dyn TableProvider>,
    whole: &dyn LogicalExtensionCodec,
) -> Option<Result<Vec<u8>>> {
    let table = table.downcast_ref::<ShardTable>()?;
    let work = table.work().as_any().downcast_ref::<W>()?;
    Some(
        encode_input(table.input(), whole)
            .and_then(|input| tagged(tag, &TableSpec { work, input })),
    )
}

/// What [`encode_shard_table`] wrote with `tag`; `None` for another payload.
pub fn decode_shard_table<W: ShardWork + DeserializeOwned>(
    tag: &[u8],
    buf: &[u8],
    ctx: &TaskContext,
    whole: &dyn LogicalExtensionCodec,
) -> Option<Result<Arc<dyn TableProvider>>> {
    let spec = decode_tagged::<TableSpec<W>>(tag, buf)?;
    Some(spec.and_then(|spec| {
        let input = decode_input(spec.input, ctx, whole)?;
        Ok(Arc::new(ShardTable::new(Arc::new(spec.work), input)) as Arc<dyn TableProvider>)
    }))
}

/// `tag` and the work of a [`ShardExec`] doing a `W`; `None` for any other node.
pub fn encode_shard_exec<W: ShardWork + Serialize>(
    tag: &[u8],
    node: &Arc<dyn ExecutionPlan>,
) -> Option<Result<Vec<u8>>> {
    let exec = node.downcast_ref::<ShardExec>()?;
    let work = exec.work().as_any().downcast_ref::<W>()?;
    Some(tagged(tag, work))
}

/// What [`encode_shard_exec`] wrote with `tag`, over its one input.
pub fn decode_shard_exec<W: ShardWork + DeserializeOwned>(
    tag: &[u8],
    buf: &[u8],
    inputs: &[Arc<dyn ExecutionPlan>],
) -> Option<Result<Arc<dyn ExecutionPlan>>> {
    let work = decode_tagged::<W>(tag, buf)?;
    Some(work.and_then(|work| {
        let input = single_input("ShardExec", inputs)?;
        Ok(Arc::new(ShardExec::new(Arc::clone(input), Arc::new(work))) as Arc<dyn ExecutionPlan>)
    }))
}

/// The cutout job's nodes.
#[derive(Debug, Default)]
pub struct CutoutsNodes;

impl NodeCodec for CutoutsNodes {
    fn encode_table(
        &self,
        table: &Arc<dyn TableProvider>,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        encode_shard_table::<CutoutWork>(TABLE_TAG, table, whole)
    }

    fn decode_table(
        &self,
        buf: &[u8],
        _schema: &SchemaRef,
        ctx: &TaskContext,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        decode_shard_table::<CutoutWork>(TABLE_TAG, buf, ctx, whole)
    }

    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        encode_shard_exec::<CutoutWork>(EXEC_TAG, node)
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        decode_shard_exec::<CutoutWork>(EXEC_TAG, buf, inputs)
    }
}
