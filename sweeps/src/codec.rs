//! Plan codecs for the sweeps table and its scan, wrapping the codecs of
//! whatever engine runs the plan (Ballista's on a cluster).
//!
//! A payload of ours starts with a magic tag; anything else goes to the
//! wrapped codec, so Ballista's own nodes keep working.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::exec::{FitsScanExec, ScanChunk};
use crate::listing::SweepFile;
use crate::table::{SweepsOptions, SweepsTable};

const TABLE_TAG: &[u8] = b"lenspipe.sweeps.table.v1\n";
const SCAN_TAG: &[u8] = b"lenspipe.sweeps.scan.v1\n";

#[derive(Serialize, Deserialize)]
struct TableSpec {
    location: String,
    files: Vec<SweepFile>,
    options: SweepsOptions,
}

#[derive(Serialize, Deserialize)]
struct ScanSpec {
    files: Vec<SweepFile>,
    chunks: Vec<ScanChunk>,
    /// The table schema as a DataFusion protobuf `Schema`.
    table_schema: Vec<u8>,
    projection: Vec<usize>,
    batch_rows: usize,
    limit: Option<usize>,
}

fn encode_tagged<T: Serialize>(tag: &[u8], value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(tag);
    serde_json::to_writer(buf, value).map_err(|e| DataFusionError::Internal(format!("encoding plan: {e}")))
}

fn decode_tagged<T: for<'de> Deserialize<'de>>(tag: &[u8], buf: &[u8]) -> Option<Result<T>> {
    let body = buf.strip_prefix(tag)?;
    Some(serde_json::from_slice(body).map_err(|e| DataFusionError::Internal(format!("decoding plan: {e}"))))
}

fn schema_to_bytes(schema: &Schema) -> Result<Vec<u8>> {
    let proto = protobuf::Schema::try_from(schema)
        .map_err(|e| DataFusionError::Internal(format!("encoding schema: {e}")))?;
    Ok(proto.encode_to_vec())
}

fn schema_from_bytes(bytes: &[u8]) -> Result<SchemaRef> {
    let proto = protobuf::Schema::decode(bytes)
        .map_err(|e| DataFusionError::Internal(format!("decoding schema: {e}")))?;
    let schema = Schema::try_from(&proto)
        .map_err(|e| DataFusionError::Internal(format!("decoding schema: {e}")))?;
    Ok(Arc::new(schema))
}

/// Carries [`SweepsTable`] in logical plans (client to scheduler).
#[derive(Debug)]
pub struct SweepsLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl SweepsLogicalCodec {
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl LogicalExtensionCodec for SweepsLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
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
                Ok(Arc::new(SweepsTable::from_parts(
                    spec.location,
                    Arc::new(spec.files),
                    schema,
                    spec.options,
                )))
            }
            None => self.inner.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<SweepsTable>() {
            Some(table) => encode_tagged(
                TABLE_TAG,
                &TableSpec {
                    location: table.location().to_string(),
                    files: table.files().as_ref().clone(),
                    options: table.options(),
                },
                buf,
            ),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Carries [`FitsScanExec`] in physical plans (scheduler to executors).
#[derive(Debug)]
pub struct SweepsPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl SweepsPhysicalCodec {
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl PhysicalExtensionCodec for SweepsPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode_tagged::<ScanSpec>(SCAN_TAG, buf) {
            Some(spec) => {
                let spec = spec?;
                Ok(Arc::new(FitsScanExec::try_new(
                    Arc::new(spec.files),
                    spec.chunks,
                    schema_from_bytes(&spec.table_schema)?,
                    spec.projection,
                    spec.batch_rows,
                    spec.limit,
                )?))
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
        match node.downcast_ref::<FitsScanExec>() {
            Some(scan) => encode_tagged(
                SCAN_TAG,
                &ScanSpec {
                    files: scan.files().to_vec(),
                    chunks: scan.chunks().to_vec(),
                    table_schema: schema_to_bytes(scan.table_schema())?,
                    projection: scan.projection().to_vec(),
                    batch_rows: scan.batch_rows(),
                    limit: scan.limit(),
                },
                buf,
            ),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}
