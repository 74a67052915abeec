//! One table schema over files whose column sets and widths differ.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use lenspipe_fits::BinTableLayout;

/// Virtual column: the file name a row came from.
pub const SWEEP_FILE_COLUMN: &str = "sweep_file";
/// Virtual column: the 0-based row of that file.
pub const ROW_INDEX_COLUMN: &str = "row_index";

/// The columns the scan gives for one file: the FITS crate's mapping, with
/// string columns as `Utf8View` rather than `Utf8`. Sweep strings (TYPE,
/// BRICKNAME) are at most 12 bytes, so each lives inside its view: nothing
/// to copy into a data buffer, and `type = 'REX'` compares views.
pub fn scan_schema(layout: &BinTableLayout) -> SchemaRef {
    let schema = layout.arrow_schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The union of the files' columns, in first-seen order, each at the widest
/// type any file uses (DR9 writes MASKBITS as int16, DR10 as int32), followed
/// by the virtual `row_index` column. (`sweep_file` is added by the scan as
/// a partition column.)
///
/// `schemas` pairs each schema with the file it came from, for the error when
/// two files disagree in a way no widening can reconcile.
pub fn unify_schemas<'a>(
    schemas: impl IntoIterator<Item = (&'a str, SchemaRef)>,
) -> Result<SchemaRef> {
    let mut fields: Vec<Field> = Vec::new();
    let mut seen: HashMap<String, (usize, String)> = HashMap::new();
    for (source, schema) in schemas {
        for field in schema.fields() {
            if field.name() == SWEEP_FILE_COLUMN || field.name() == ROW_INDEX_COLUMN {
                return Err(DataFusionError::Plan(format!(
                    "{source}: column '{}' clashes with a virtual column of the sweeps table",
                    field.name()
                )));
            }
            match seen.get(field.name()) {
                None => {
                    seen.insert(field.name().clone(), (fields.len(), source.to_string()));
                    fields.push(field.as_ref().clone().with_nullable(true));
                }
                Some((at, first_source)) => {
                    let current = fields[*at].data_type().clone();
                    let wider = widen(&current, field.data_type()).ok_or_else(|| {
                        DataFusionError::Plan(format!(
                            "column '{}' is {current} in {first_source} but {} in {source}: \
                             no common type",
                            field.name(),
                            field.data_type()
                        ))
                    })?;
                    fields[*at] = fields[*at].clone().with_data_type(wider);
                }
            }
        }
    }
    fields.push(Field::new(ROW_INDEX_COLUMN, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
}

/// The narrowest type both values fit in without loss, if any.
fn widen(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let rank = |t: &DataType| -> Option<(bool, u8)> {
        // (signed, bits) for integers
        Some(match t {
            Int8 => (true, 8),
            Int16 => (true, 16),
            Int32 => (true, 32),
            Int64 => (true, 64),
            UInt8 => (false, 8),
            UInt16 => (false, 16),
            UInt32 => (false, 32),
            UInt64 => (false, 64),
            _ => return None,
        })
    };
    match (a, b) {
        (Float32 | Float64, Float32 | Float64) => Some(Float64),
        (Float32 | Float64, other) | (other, Float32 | Float64) if rank(other).is_some() => {
            Some(Float64)
        }
        (FixedSizeList(fa, na), FixedSizeList(fb, nb)) if na == nb => {
            let inner = widen(fa.data_type(), fb.data_type())?;
            Some(FixedSizeList(
                Arc::new(
                    fa.as_ref()
                        .clone()
                        .with_data_type(inner)
                        .with_nullable(true),
                ),
                *na,
            ))
        }
        _ => {
            let (sa, ba) = rank(a)?;
            let (sb, bb) = rank(b)?;
            let (signed, bits) = match (sa, sb) {
                (true, true) | (false, false) => (sa, ba.max(bb)),
                // A signed type must also hold the unsigned one's range.
                (true, false) => (true, ba.max(bb * 2)),
                (false, true) => (true, bb.max(ba * 2)),
            };
            Some(match (signed, bits) {
                (true, 8) => Int8,
                (true, 16) => Int16,
                (true, 32) => Int32,
                (true, 64) => Int64,
                (false, 8) => UInt8,
                (false, 16) => UInt16,
                (false, 32) => UInt32,
                (false, 64) => UInt64,
                _ => return None, // u64 with a signed type has no lossless home
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_dr9_and_dr10_maskbits() {
        let dr9 = Arc::new(Schema::new(vec![Field::new(
            "maskbits",
            DataType::Int16,
            false,
        )]));
        let dr10 = Arc::new(Schema::new(vec![
            Field::new("maskbits", DataType::Int32, false),
            Field::new("sersic", DataType::Float32, false),
        ]));
        let s = unify_schemas([("dr9.fits", dr9), ("dr10.fits", dr10)]).unwrap();
        assert_eq!(s.field(0).data_type(), &DataType::Int32);
        assert_eq!(s.field(1).name(), "sersic");
        assert_eq!(s.field(2).name(), ROW_INDEX_COLUMN);
    }

    #[test]
    fn widening_rules() {
        use DataType::*;
        assert_eq!(widen(&Int16, &UInt16), Some(Int32));
        assert_eq!(widen(&UInt8, &Int8), Some(Int16));
        assert_eq!(widen(&Float32, &Int32), Some(Float64));
        assert_eq!(widen(&UInt64, &Int64), None);
        assert_eq!(widen(&Utf8, &Int32), None);
    }

    #[test]
    fn names_both_files_on_conflict() {
        let a = Arc::new(Schema::new(vec![Field::new("type", DataType::Utf8, true)]));
        let b = Arc::new(Schema::new(vec![Field::new("type", DataType::Int32, true)]));
        let err = unify_schemas([("a.fits", a), ("b.fits", b)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.fits") && err.contains("b.fits") && err.contains("'type'"),
            "{err}"
        );
    }
}
