//! How shard jobs travel in plans: a [`ShardTable`] in logical plans (client
//! to scheduler; a plan input is encoded with the whole codec, so tables of
//! ours inside it travel too) and a [`ShardExec`] in physical plans
//! (scheduler to executors). [`ShardNodes`] carries any [`ShardWork`] that
//! serializes, under the job's own tags: [`CUTOUTS_NODES`] for the cutouts,
//! and lenspipe-validate's for its checks.

use std::fmt;
use std::marker::PhantomData;
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

/// The nodes of one shard job `W` ([`ShardTable`] and [`ShardExec`] doing
/// a `W`), under its own tags.
pub struct ShardNodes<W> {
    table_tag: &'static [u8],
    exec_tag: &'static [u8],
    work: PhantomData<fn() -> W>,
}

impl<W> ShardNodes<W> {
    pub const fn new(table_tag: &'static [u8], exec_tag: &'static [u8]) -> Self {
        Self {
            table_tag,
            exec_tag,
            work: PhantomData,
        }
    }
}

impl<W> fmt::Debug for ShardNodes<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardNodes")
            .field("work", &std::any::type_name::<W>())
            .finish()
    }
}

impl<W: ShardWork + Serialize + DeserializeOwned> NodeCodec for ShardNodes<W> {
    fn encode_table(
        &self,
        table: &Arc<dyn TableProvider>,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        let table = table.downcast_ref::<ShardTable>()?;
        let work = table.work().as_any().downcast_ref::<W>()?;
        Some(
            encode_input(table.input(), whole)
                .and_then(|input| tagged(self.table_tag, &TableSpec { work, input })),
        )
    }

    fn decode_table(
        &self,
        buf: &[u8],
        _schema: &SchemaRef,
        ctx: &TaskContext,
        whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        let spec = decode_tagged::<TableSpec<W>>(self.table_tag, buf)?;
        Some(spec.and_then(|spec| {
            let input = decode_input(spec.input, ctx, whole)?;
            Ok(Arc::new(ShardTable::new(Arc::new(spec.work), input)) as Arc<dyn TableProvider>)
        }))
    }

    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        let exec = node.downcast_ref::<ShardExec>()?;
        let work = exec.work().as_any().downcast_ref::<W>()?;
        Some(tagged(self.exec_tag, work))
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let work = decode_tagged::<W>(self.exec_tag, buf)?;
        Some(work.and_then(|work| {
            let input = single_input("ShardExec", inputs)?;
            Ok(Arc::new(ShardExec::new(Arc::clone(input), Arc::new(work)))
                as Arc<dyn ExecutionPlan>)
        }))
    }
}

/// The cutout job's nodes.
pub const CUTOUTS_NODES: ShardNodes<CutoutWork> = ShardNodes::new(
    b"lenspipe.cutouts.table.v1\n",
    b"lenspipe.cutouts.exec.v1\n",
);
