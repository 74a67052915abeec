//! How the writer travels in plans: [`WriteTable`] in logical plans (its
//! spec, then its plan encoded with the whole codec, so the tables inside
//! it travel too) and [`PartitionWriterExec`] in physical plans.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use lenspipe_sweeps::{decode_tagged, single_input, tagged, NodeCodec};

use crate::exec::PartitionWriterExec;
use crate::spec::WriteSpec;
use crate::table::WriteTable;

const TABLE_TAG: &[u8] = b"lenspipe.sinks.table.v1\n";
const EXEC_TAG: &[u8] = b"lenspipe.sinks.exec.v1\n";

/// The writer's nodes. A [`WriteTable`] travels as the tag, the spec's JSON
/// length (8 bytes, little-endian), the JSON, then the plan.
#[derive(Debug, Default)]
pub struct SinksNodes;

fn corrupt(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("decoding a written plan: {what}"))
}

impl NodeCodec for SinksNodes {
    fn encode_table(
        &self,
        table: &Arc<dyn TableProvider>,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        let table = table.downcast_ref::<WriteTable>()?;
        Some((|| {
            let json = serde_json::to_vec(table.spec())
                .map_err(|e| DataFusionError::Internal(format!("encoding a written plan: {e}")))?;
            let plan = logical_plan_to_bytes_with_extension_codec(table.plan(), whole)?;
            let mut buf = Vec::with_capacity(TABLE_TAG.len() + 8 + json.len() + plan.len());
            buf.extend_from_slice(TABLE_TAG);
            buf.extend_from_slice(&(json.len() as u64).to_le_bytes());
            buf.extend_from_slice(&json);
            buf.extend_from_slice(&plan);
            Ok(buf)
        })())
    }

    fn decode_table(
        &self,
        buf: &[u8],
        _schema: &SchemaRef,
        ctx: &TaskContext,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        let body = buf.strip_prefix(TABLE_TAG)?;
        Some((|| {
            let (len, rest) = body.split_at_checked(8).ok_or_else(|| corrupt("short"))?;
            let len = u64::from_le_bytes(len.try_into().map_err(|_| corrupt("length"))?) as usize;
            let (json, plan) = rest
                .split_at_checked(len)
                .ok_or_else(|| corrupt("short spec"))?;
            let spec: WriteSpec =
                serde_json::from_slice(json).map_err(|e| corrupt(&format!("spec: {e}")))?;
            let plan = logical_plan_from_bytes_with_extension_codec(plan, ctx, whole)?;
            Ok(Arc::new(WriteTable::try_new(plan, spec)?) as Arc<dyn TableProvider>)
        })())
    }

    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        let exec = node.downcast_ref::<PartitionWriterExec>()?;
        Some(tagged(EXEC_TAG, exec.spec()))
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let spec = decode_tagged::<WriteSpec>(EXEC_TAG, buf)?;
        Some(spec.and_then(|spec| {
            let input = single_input("PartitionWriterExec", inputs)?;
            Ok(Arc::new(PartitionWriterExec::new(Arc::clone(input), spec))
                as Arc<dyn ExecutionPlan>)
        }))
    }
}
