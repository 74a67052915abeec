//! How the sweeps table and its scan travel in plans ([`SweepsNodes`]),
//! and the tagged-JSON payload every lenspipe node uses.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf;
use object_store::path::Path;
use prost::Message;
use serde::{Deserialize, Serialize};

use datafusion::common::ScalarValue;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;

use crate::listing::SweepFile;
use crate::plan_codec::NodeCodec;
use crate::schema::SWEEP_FILE_COLUMN;
use crate::source::FitsSource;
use crate::table::{file_range, sweeps_table_schema, SweepsOptions, SweepsTable};

const TABLE_TAG: &[u8] = b"lenspipe.sweeps.table.v1\n";
const SCAN_TAG: &[u8] = b"lenspipe.sweeps.scan.v1\n";

#[derive(Serialize, Deserialize)]
struct TableSpec {
    location: String,
    files: Vec<SweepFile>,
    options: SweepsOptions,
}

/// One byte range of one file, as a scan partition holds it.
#[derive(Serialize, Deserialize)]
struct RangeSpec {
    path: String,
    size: u64,
    range: Option<(i64, i64)>,
    sweep_file: String,
}

/// A FITS file scan: the file groups and what the source needs.
#[derive(Serialize, Deserialize)]
struct ScanSpec {
    store_url: String,
    groups: Vec<Vec<RangeSpec>>,
    /// The file schema as a DataFusion protobuf `Schema`.
    file_schema: Vec<u8>,
    projection: Option<Vec<usize>>,
    batch_rows: usize,
    limit: Option<usize>,
}

impl ScanSpec {
    fn from_config(config: &FileScanConfig, source: &FitsSource) -> Result<Self> {
        let mut groups = Vec::with_capacity(config.file_groups.len());
        for group in &config.file_groups {
            let mut ranges = Vec::new();
            for file in group.iter() {
                let sweep_file = match file.partition_values.first() {
                    Some(ScalarValue::Utf8(Some(name))) => name.clone(),
                    other => {
                        return Err(DataFusionError::Internal(format!(
                            "FITS scan partition value {other:?}"
                        )))
                    }
                };
                ranges.push(RangeSpec {
                    path: file.object_meta.location.to_string(),
                    size: file.object_meta.size,
                    range: file.range.as_ref().map(|r| (r.start, r.end)),
                    sweep_file,
                });
            }
            groups.push(ranges);
        }
        Ok(Self {
            store_url: config.object_store_url.as_str().to_string(),
            groups,
            file_schema: schema_to_bytes(config.file_schema())?,
            projection: source.projection_indices(),
            batch_rows: source.batch_rows(),
            limit: config.limit,
        })
    }

    fn into_plan(self) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema = sweeps_table_schema(schema_from_bytes(&self.file_schema)?);
        let source = Arc::new(FitsSource::new(table_schema, self.batch_rows));
        let groups = self
            .groups
            .into_iter()
            .map(|ranges| {
                Ok(FileGroup::new(
                    ranges
                        .into_iter()
                        .map(|r| {
                            let path = Path::parse(&r.path).map_err(|e| {
                                DataFusionError::Internal(format!("{}: {e}", r.path))
                            })?;
                            let mut file = file_range(path, r.size, r.range);
                            file.partition_values = vec![ScalarValue::Utf8(Some(r.sweep_file))];
                            Ok(file)
                        })
                        .collect::<Result<Vec<_>>>()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.store_url)?, source)
            .with_file_groups(groups)
            .with_projection_indices(self.projection)?
            .with_limit(self.limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// The FITS scan inside `node`, if it is one.
fn fits_scan(node: &Arc<dyn ExecutionPlan>) -> Option<(&FileScanConfig, &FitsSource)> {
    let exec = node.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let source = config.file_source().downcast_ref::<FitsSource>()?;
    Some((config, source))
}

/// Writes `tag` then `value` as JSON: how lenspipe's plan nodes travel.
pub fn encode_tagged<T: Serialize>(tag: &[u8], value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(tag);
    serde_json::to_writer(buf, value)
        .map_err(|e| DataFusionError::Internal(format!("encoding plan: {e}")))
}

/// [`encode_tagged`] into a new buffer.
pub fn tagged<T: Serialize>(tag: &[u8], value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_tagged(tag, value, &mut buf)?;
    Ok(buf)
}

/// The value after `tag`, or `None` when the payload is not tagged so.
pub fn decode_tagged<T: for<'de> Deserialize<'de>>(tag: &[u8], buf: &[u8]) -> Option<Result<T>> {
    let body = buf.strip_prefix(tag)?;
    Some(
        serde_json::from_slice(body)
            .map_err(|e| DataFusionError::Internal(format!("decoding plan: {e}"))),
    )
}

/// An Arrow schema as DataFusion protobuf bytes.
pub fn schema_to_bytes(schema: &Schema) -> Result<Vec<u8>> {
    let proto = protobuf::Schema::try_from(schema)
        .map_err(|e| DataFusionError::Internal(format!("encoding schema: {e}")))?;
    Ok(proto.encode_to_vec())
}

/// The Arrow schema of [`schema_to_bytes`] bytes.
pub fn schema_from_bytes(bytes: &[u8]) -> Result<SchemaRef> {
    let proto = protobuf::Schema::decode(bytes)
        .map_err(|e| DataFusionError::Internal(format!("decoding schema: {e}")))?;
    let schema = Schema::try_from(&proto)
        .map_err(|e| DataFusionError::Internal(format!("decoding schema: {e}")))?;
    Ok(Arc::new(schema))
}

/// The sweeps table in logical plans (client to scheduler) and its FITS
/// scan (a `DataSourceExec` over [`FitsSource`]) in physical plans
/// (scheduler to executors).
#[derive(Debug, Default)]
pub struct SweepsNodes;

impl NodeCodec for SweepsNodes {
    fn encode_table(
        &self,
        table: &Arc<dyn TableProvider>,
        _whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Vec<u8>>> {
        let table = table.downcast_ref::<SweepsTable>()?;
        let spec = TableSpec {
            location: table.location().to_string(),
            files: table.files().as_ref().clone(),
            options: table.options(),
        };
        Some(tagged(TABLE_TAG, &spec))
    }

    fn decode_table(
        &self,
        buf: &[u8],
        schema: &SchemaRef,
        _ctx: &TaskContext,
        _whole: &dyn LogicalExtensionCodec,
    ) -> Option<Result<Arc<dyn TableProvider>>> {
        let spec = decode_tagged::<TableSpec>(TABLE_TAG, buf)?;
        Some(spec.and_then(|spec| {
            // The plan carries the table schema; the table wants its files' part.
            let keep: Vec<usize> = (0..schema.fields().len())
                .filter(|i| schema.field(*i).name() != SWEEP_FILE_COLUMN)
                .collect();
            let file_schema = Arc::new(schema.project(&keep)?);
            Ok(Arc::new(SweepsTable::from_parts(
                spec.location,
                Arc::new(spec.files),
                file_schema,
                spec.options,
            )) as Arc<dyn TableProvider>)
        }))
    }

    fn encode_exec(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Vec<u8>>> {
        let (config, source) = fits_scan(node)?;
        Some(ScanSpec::from_config(config, source).and_then(|spec| tagged(SCAN_TAG, &spec)))
    }

    fn decode_exec(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _whole: &dyn PhysicalExtensionCodec,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let spec = decode_tagged::<ScanSpec>(SCAN_TAG, buf)?;
        Some(spec.and_then(ScanSpec::into_plan))
    }
}
