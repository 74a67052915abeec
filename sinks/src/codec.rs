//! Plan codecs for the writer. Each wraps the engine's other codecs and
//! must be the outermost: the logical codec encodes the written plan with
//! itself, so the tables inside that plan (the sweeps, the cutouts) go
//! through the whole chain. A payload of ours starts with a magic tag;
//! anything else goes to the wrapped codec.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use lenspipe_sweeps::{decode_tagged, encode_tagged};

use crate::exec::PartitionWriterExec;
use crate::spec::WriteSpec;
use crate::table::WriteTable;

const TABLE_TAG: &[u8] = b"lenspipe.sinks.table.v1\n";
const EXEC_TAG: &[u8] = b"lenspipe.sinks.exec.v1\n";

/// Carries [`WriteTable`] in logical plans (client to scheduler) as the tag,
/// the spec's JSON length (8 bytes, little-endian), the JSON, then the plan.
#[derive(Debug)]
pub struct SinksLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl SinksLogicalCodec {
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

fn corrupt(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("decoding a written plan: {what}"))
}

impl LogicalExtensionCodec for SinksLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(body) = buf.strip_prefix(TABLE_TAG) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let (len, rest) = body.split_at_checked(8).ok_or_else(|| corrupt("short"))?;
        let len = u64::from_le_bytes(len.try_into().map_err(|_| corrupt("length"))?) as usize;
        let (json, plan) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("short spec"))?;
        let spec: WriteSpec =
            serde_json::from_slice(json).map_err(|e| corrupt(&format!("spec: {e}")))?;
        let plan = logical_plan_from_bytes_with_extension_codec(plan, ctx, self)?;
        Ok(Arc::new(WriteTable::try_new(plan, spec)?))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let Some(table) = node.downcast_ref::<WriteTable>() else {
            return self.inner.try_encode_table_provider(table_ref, node, buf);
        };
        let json = serde_json::to_vec(table.spec())
            .map_err(|e| DataFusionError::Internal(format!("encoding a written plan: {e}")))?;
        let plan = logical_plan_to_bytes_with_extension_codec(table.plan(), self)?;
        buf.extend_from_slice(TABLE_TAG);
        buf.extend_from_slice(&(json.len() as u64).to_le_bytes());
        buf.extend_from_slice(&json);
        buf.extend_from_slice(&plan);
        Ok(())
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Carries [`PartitionWriterExec`] in physical plans (scheduler to executors).
#[derive(Debug)]
pub struct SinksPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl SinksPhysicalCodec {
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl PhysicalExtensionCodec for SinksPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode_tagged::<WriteSpec>(EXEC_TAG, buf) {
            Some(spec) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(format!(
                        "PartitionWriterExec takes one input, the plan carried {}",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(PartitionWriterExec::new(Arc::clone(input), spec?)))
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<PartitionWriterExec>() {
            Some(exec) => encode_tagged(EXEC_TAG, exec.spec(), buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}
