//! The one codec of lenspipe plans.
//!
//! Each crate says how its own plan nodes travel by implementing
//! [`NodeCodec`]: its tables in logical plans (client to scheduler) and its
//! operators in physical plans (scheduler to executors). [`PlanCodec`]
//! carries all of them and hands everything else to the engine's own codecs
//! (Ballista's on a cluster). A node's payload starts with its own tag
//! ([`encode_tagged`]), so decoding asks each node codec in turn.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{
    DefaultPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};

#[cfg(doc)]
use crate::codec::encode_tagged;

/// How one crate's plan nodes travel. Every method answers `None` for a
/// node or a payload that is not its own. `whole` is the codec carrying
/// every node, for nodes that hold a plan of their own.
pub trait NodeCodec: fmt::Debug + Send + Sync {
    fn encode_table(
        &self,
        _table: &Arc<dyn TableProvider>,
        _whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        None
    }

    /// `schema` is the table's schema as the plan carries it.
    fn decode_table(
        &self,
        _buf: &[u8],
        _schema: &SchemaRef,
        _ctx: &TaskContext,
        _whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        None
    }

    fn encode_exec(
        &self,
        _node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        None
    }

    /// `inputs` are the node's children, already decoded.
    fn decode_exec(
        &self,
        _buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        None
    }
}

/// Every lenspipe node, then the engine's codecs for the rest. Used as
/// both the logical and the physical extension codec.
#[derive(Debug)]
pub struct PlanCodec {
    nodes: Vec<Arc<dyn NodeCodec>>,
    logical: Arc<dyn LogicalExtensionCodec>,
    physical: Arc<dyn PhysicalExtensionCodec>,
}

impl PlanCodec {
    pub fn new(
        nodes: Vec<Arc<dyn NodeCodec>>,
        logical: Arc<dyn LogicalExtensionCodec>,
        physical: Arc<dyn PhysicalExtensionCodec>,
    ) -> Self {
        Self {
            nodes,
            logical,
            physical,
        }
    }

    /// `nodes` over DataFusion's default codecs: an embedded engine, tests.
    pub fn with_defaults(nodes: Vec<Arc<dyn NodeCodec>>) -> Self {
        Self::new(
            nodes,
            Arc::new(DefaultLogicalExtensionCodec {}),
            Arc::new(DefaultPhysicalExtensionCodec {}),
        )
    }
}

impl LogicalExtensionCodec for PlanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.logical.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.logical.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        for node in &self.nodes {
            if let Some(table) = node.decode_table(buf, &schema, ctx, self) {
                return table;
            }
        }
        self.logical
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        table: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        for node in &self.nodes {
            if let Some(bytes) = node.encode_table(&table, self) {
                buf.extend_from_slice(&bytes?);
                return Ok(());
            }
        }
        self.logical
            .try_encode_table_provider(table_ref, table, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.logical.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        format: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.logical.try_encode_file_format(buf, format)
    }
}

impl PhysicalExtensionCodec for PlanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        for node in &self.nodes {
            if let Some(plan) = node.decode_exec(buf, inputs, ctx, self, converter) {
                return plan;
            }
        }
        self.physical.try_decode(buf, inputs, ctx, converter)
    }

    fn try_encode(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        for node in &self.nodes {
            if let Some(bytes) = node.encode_exec(&plan, self, converter) {
                buf.extend_from_slice(&bytes?);
                return Ok(());
            }
        }
        self.physical.try_encode(plan, buf, converter)
    }
}

/// The one child of a single-child node (decoded, or given new children),
/// or an error naming the node.
pub fn single_input<'a>(
    name: &str,
    inputs: &'a [Arc<dyn ExecutionPlan>],
) -> Result<&'a Arc<dyn ExecutionPlan>> {
    match inputs {
        [input] => Ok(input),
        _ => Err(datafusion::error::DataFusionError::Internal(format!(
            "{name} takes one input, the plan carried {}",
            inputs.len()
        ))),
    }
}
