//! Plan codecs for the cutout stage, wrapping whatever codecs the engine
//! already has (the sweeps codecs, then Ballista's). A payload of ours
//! starts with a magic tag; anything else goes to the wrapped codec.

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
use lenspipe_sweeps::{decode_tagged, encode_tagged, schema_from_bytes, schema_to_bytes};
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
    /// A logical plan as DataFusion protobuf bytes, encoded with this codec
    /// (so tables of ours inside it travel too).
    Plan { plan: Vec<u8> },
    Files {
        store_url: String,
        files: Vec<TargetFile>,
        /// The files' schema as a DataFusion protobuf `Schema`.
        schema: Vec<u8>,
    },
}

/// Carries [`CutoutsTable`] in logical plans (client to scheduler).
#[derive(Debug)]
pub struct CutoutsLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl CutoutsLogicalCodec {
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl LogicalExtensionCodec for CutoutsLogicalCodec {
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
        match decode_tagged::<TableSpec>(TABLE_TAG, buf) {
            Some(spec) => {
                let spec = spec?;
                let input = match spec.input {
                    InputSpec::Plan { plan } => ShardInput::Plan(
                        logical_plan_from_bytes_with_extension_codec(&plan, ctx, self)?,
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
                Ok(Arc::new(CutoutsTable::new(spec.job, input)))
            }
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<CutoutsTable>() {
            Some(table) => {
                let input = match table.input() {
                    ShardInput::Plan(plan) => InputSpec::Plan {
                        plan: logical_plan_to_bytes_with_extension_codec(plan, self)?.to_vec(),
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
                encode_tagged(TABLE_TAG, &spec, buf)
            }
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
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

/// Carries [`ShardExec`] in physical plans (scheduler to executors);
/// its input, a Parquet scan, goes through the wrapped codecs.
#[derive(Debug)]
pub struct CutoutsPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl CutoutsPhysicalCodec {
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl PhysicalExtensionCodec for CutoutsPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode_tagged::<ShardJob>(EXEC_TAG, buf) {
            Some(job) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(format!(
                        "ShardExec takes one input, the plan carried {}",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(ShardExec::new(Arc::clone(input), job?)))
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
        match node.downcast_ref::<ShardExec>() {
            Some(exec) => encode_tagged(EXEC_TAG, exec.job(), buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}
