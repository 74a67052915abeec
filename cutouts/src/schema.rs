//! The cutout shards' columns, and what their summaries count, defined once.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::spec::CutoutSpec;

/// The target's shard, added to the target files by the client and
/// dropped from the output.
pub const SHARD: &str = "cutout_shard";
pub const GALAXY_ID: &str = "galaxy_id";
pub const RA: &str = "ra";
pub const DEC: &str = "dec";
pub const BRICKNAME: &str = "brickname";

pub const STATUS: &str = "cutout_status";
pub const IMAGE: &str = "image";
/// Inverse variance on the image's grid, when `cutouts.planes` has invvar.
pub const INVVAR: &str = "invvar";
/// The brick's maskbits on the image's grid, when `cutouts.planes` has
/// maskbits (named apart from the catalogue's `maskbits`, the bits at the
/// object's own centre).
pub const MASKBITS: &str = "pixel_maskbits";
pub const SOURCE: &str = "cutout_source";
pub const RESAMPLING: &str = "cutout_resampling";
pub const ATTEMPTS: &str = "cutout_attempts";

/// Columns the stage adds after the target's own, in order ([`INVVAR`] and
/// [`MASKBITS`] only when asked for). A target column of the same name is
/// replaced.
pub const ADDED: [&str; 7] = [
    STATUS, IMAGE, INVVAR, MASKBITS, SOURCE, RESAMPLING, ATTEMPTS,
];

/// Schema metadata keys: how to read `image` without this crate.
pub const META_SIZE: &str = "lenspipe.cutout.size";
pub const META_BANDS: &str = "lenspipe.cutout.bands";
pub const META_PIXSCALE: &str = "lenspipe.cutout.pixscale_arcsec";
pub const META_LAYOUT: &str = "lenspipe.cutout.layout";
pub const META_UNIT: &str = "lenspipe.cutout.unit";
pub const META_PLANES: &str = "lenspipe.cutout.planes";
pub const META_INVVAR_UNIT: &str = "lenspipe.cutout.invvar_unit";

/// `image`: bands x size x size float32 values, CHW, row-major.
pub fn image_field(spec: &CutoutSpec) -> Field {
    plane_field(IMAGE, spec)
}

/// A bands x size x size float32 plane column named `name` (`image` or
/// `invvar`).
pub fn plane_field(name: &str, spec: &CutoutSpec) -> Field {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    Field::new(
        name,
        DataType::FixedSizeList(item, spec.image_len() as i32),
        true,
    )
}

/// `pixel_maskbits`: size x size int32 bitmasks (DR10 MASKBITS), row-major.
pub fn maskbits_field(spec: &CutoutSpec) -> Field {
    let item = Arc::new(Field::new("item", DataType::Int32, false));
    Field::new(
        MASKBITS,
        DataType::FixedSizeList(item, spec.maskbits_len() as i32),
        true,
    )
}

/// The output schema: the target columns (without [`SHARD`]), then [`ADDED`].
pub fn output_schema(targets: &Schema, spec: &CutoutSpec) -> SchemaRef {
    let mut fields: Vec<Field> = targets
        .fields()
        .iter()
        .filter(|f| f.name() != SHARD && !ADDED.contains(&f.name().as_str()))
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(STATUS, DataType::Utf8, false));
    fields.push(image_field(spec));
    if spec.wants_invvar() {
        fields.push(plane_field(INVVAR, spec));
    }
    if spec.wants_maskbits() {
        fields.push(maskbits_field(spec));
    }
    fields.push(Field::new(SOURCE, DataType::Utf8, false));
    fields.push(Field::new(RESAMPLING, DataType::Utf8, false));
    fields.push(Field::new(ATTEMPTS, DataType::Int32, false));
    let metadata = HashMap::from([
        (META_SIZE.to_string(), spec.size.to_string()),
        (META_BANDS.to_string(), spec.bands.clone()),
        (META_PIXSCALE.to_string(), spec.pixscale.to_string()),
        (
            META_LAYOUT.to_string(),
            "CHW: band, row (south to north), column (east to west on the sky)".to_string(),
        ),
        (META_UNIT.to_string(), "nanomaggies".to_string()),
        (
            META_PLANES.to_string(),
            spec.planes
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    let mut metadata = metadata;
    if spec.wants_invvar() {
        metadata.insert(
            META_INVVAR_UNIT.to_string(),
            "1/nanomaggies^2 (null where the source has no invvar)".to_string(),
        );
    }
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// What a shard's summary counts, besides rows (the summary rows are the
/// writer's, [`lenspipe_sinks::ShardSummary`]): targets by status, and
/// single counters with no key.
pub const COUNT_STATUS: &str = "cutout_status";
/// Targets whose cutout was made (fetched or cut) in this run.
pub const COUNT_MADE: &str = "made";
/// Targets whose `ok` row was kept from an earlier version.
pub const COUNT_KEPT: &str = "kept";
/// Requests (or brick reads) made, retries included.
pub const COUNT_ATTEMPTS: &str = "attempts";
/// 1 for a shard taken whole from an earlier version.
pub const COUNT_REUSED_WHOLE: &str = "reused_whole";

/// The object name of shard `index` inside the output folder.
pub fn shard_file_name(index: i64) -> String {
    format!("shard-{index:06}.parquet")
}

/// The index of a shard named by [`shard_file_name`].
pub fn shard_index(name: &str) -> Option<i64> {
    name.strip_prefix("shard-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}
