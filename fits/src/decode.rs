//! Row bytes to Arrow: the hot loop.
//!
//! Each projected column is decoded on its own, walking the rows with a fixed
//! stride and converting big-endian fields with `from_be_bytes` straight into
//! a pre-sized `Vec` that becomes the array's buffer without copying.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeListArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::error::ArrowError;

use crate::column::{list_item, FloatCode, IntCode, ValueKind};
use crate::error::{FitsError, Result};
use crate::header::BinTableLayout;

/// Decodes whole rows of one binary table into [`RecordBatch`]es.
///
/// Holds no I/O: give it the bytes of consecutive rows, however they were read.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    layout: Arc<BinTableLayout>,
    columns: Vec<ColumnPlan>,
    schema: SchemaRef,
}

/// What decoding one projected column takes.
#[derive(Debug, Clone)]
struct ColumnPlan {
    /// Index in `layout.columns`.
    index: usize,
    /// Byte offset of the field in a row.
    offset: usize,
    repeat: usize,
    kind: ValueKind,
    tscal: f64,
    tzero: f64,
    tnull: Option<i64>,
}

impl RowDecoder {
    /// A decoder for the columns of `layout` at the `projection` indices
    /// (in that order), or for all columns if `projection` is `None`.
    ///
    /// Fails if an index is out of range or the layout is inconsistent
    /// (a field past the end of the row, a data type its TFORM does not give).
    pub fn new(layout: Arc<BinTableLayout>, projection: Option<Vec<usize>>) -> Result<Self> {
        let loc = layout.location();
        let at = layout.header_offset;
        if layout.row_len == 0 {
            return Err(loc.data(at, "row length (NAXIS1) is 0"));
        }
        let projection = projection.unwrap_or_else(|| (0..layout.columns.len()).collect());
        let mut columns = Vec::with_capacity(projection.len());
        let mut fields = Vec::with_capacity(projection.len());
        for index in projection {
            let col = layout.columns.get(index).ok_or_else(|| {
                loc.data(
                    at,
                    format!(
                        "projection index {index} is out of range: the table has {} columns",
                        layout.columns.len()
                    ),
                )
            })?;
            let kind = col.kind().map_err(|m| loc.unsupported(at, m))?;
            let data_type = kind.data_type(col.tform.repeat);
            if data_type != col.data_type {
                return Err(loc.data(
                    at,
                    format!(
                        "column '{}' is declared {} but TFORM '{}' decodes to {data_type}",
                        col.name, col.data_type, col.tform
                    ),
                ));
            }
            // The decode loops rely on every field lying inside its row.
            let end = col.tform.checked_width().and_then(|w| w.checked_add(col.offset));
            if end.is_none_or(|end| end > layout.row_len) {
                return Err(loc.data(
                    at,
                    format!(
                        "column '{}' (TFORM '{}' at byte {} of the row) does not fit in a row of {} bytes",
                        col.name, col.tform, col.offset, layout.row_len
                    ),
                ));
            }
            fields.push(Field::new(&col.arrow_name, data_type, true));
            columns.push(ColumnPlan {
                index,
                offset: col.offset,
                repeat: col.tform.repeat,
                kind,
                tscal: col.tscal,
                tzero: col.tzero,
                tnull: col.tnull,
            });
        }
        Ok(Self {
            layout,
            columns,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The schema of the decoded batches (projected columns only).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The table layout this decoder reads.
    pub fn layout(&self) -> &Arc<BinTableLayout> {
        &self.layout
    }

    /// Decodes `rows`, the bytes of whole consecutive rows starting at row
    /// `first_row` (0-based) of the table, into one batch.
    pub fn decode(&self, rows: &[u8], first_row: u64) -> Result<RecordBatch> {
        let layout = &*self.layout;
        let row_len = layout.row_len;
        let start = (row_len as u64)
            .saturating_mul(first_row)
            .saturating_add(layout.data_offset);
        let leftover = rows.len() % row_len;
        if leftover != 0 {
            let whole = (rows.len() - leftover) as u64;
            return Err(layout.location().data(
                start.saturating_add(whole),
                format!(
                    "{} bytes of row data are not a whole number of {row_len}-byte rows ({leftover} bytes left over)",
                    rows.len()
                ),
            ));
        }
        let nrows = rows.len() / row_len;
        if first_row.saturating_add(nrows as u64) > layout.nrows {
            return Err(layout.location().data(
                start,
                format!(
                    "rows {first_row}..{} are past the end of the table ({} rows)",
                    first_row.saturating_add(nrows as u64),
                    layout.nrows
                ),
            ));
        }
        let fields = |plan: &ColumnPlan| Fields {
            rows,
            row_len,
            offset: plan.offset,
            repeat: plan.repeat,
        };
        let at = RowsAt {
            first_row,
            offset: start,
        };
        let arrays = self
            .columns
            .iter()
            .map(|plan| self.decode_column(plan, fields(plan), at))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(nrows));
        RecordBatch::try_new_with_options(self.schema(), arrays, &options)
            .map_err(|e| self.arrow_error(start, e))
    }

    fn decode_column(&self, plan: &ColumnPlan, f: Fields<'_>, at: RowsAt) -> Result<ArrayRef> {
        let (scal, zero) = (plan.tscal, plan.tzero);
        let tnull = |raw: RawInt| plan.tnull.and_then(|null| f.nulls_where(raw, null));
        let values = match plan.kind {
            ValueKind::Logical => logical(&f),
            ValueKind::Bits => bits(&f),
            ValueKind::Utf8 => return self.utf8(plan, &f, at),
            ValueKind::UInt8 => numeric::<UInt8Type, 1>(&f, |[b]| b, tnull(RAW_U8)),
            ValueKind::Int8 => numeric::<Int8Type, 1>(&f, |[b]| (b ^ 0x80) as i8, tnull(RAW_U8)),
            ValueKind::Int16 => numeric::<Int16Type, 2>(&f, i16::from_be_bytes, tnull(RAW_I16)),
            ValueKind::UInt16 => numeric::<UInt16Type, 2>(
                &f,
                |b| u16::from_be_bytes(b) ^ 0x8000,
                tnull(RAW_I16),
            ),
            ValueKind::Int32 => numeric::<Int32Type, 4>(&f, i32::from_be_bytes, tnull(RAW_I32)),
            ValueKind::UInt32 => numeric::<UInt32Type, 4>(
                &f,
                |b| u32::from_be_bytes(b) ^ 0x8000_0000,
                tnull(RAW_I32),
            ),
            ValueKind::Int64 => numeric::<Int64Type, 8>(&f, i64::from_be_bytes, tnull(RAW_I64)),
            ValueKind::UInt64 => numeric::<UInt64Type, 8>(
                &f,
                |b| u64::from_be_bytes(b) ^ 0x8000_0000_0000_0000,
                tnull(RAW_I64),
            ),
            ValueKind::ScaledInt(IntCode::B) => numeric::<Float64Type, 1>(
                &f,
                |[b]| f64::from(b) * scal + zero,
                tnull(RAW_U8),
            ),
            ValueKind::ScaledInt(IntCode::I) => numeric::<Float64Type, 2>(
                &f,
                |b| f64::from(i16::from_be_bytes(b)) * scal + zero,
                tnull(RAW_I16),
            ),
            ValueKind::ScaledInt(IntCode::J) => numeric::<Float64Type, 4>(
                &f,
                |b| f64::from(i32::from_be_bytes(b)) * scal + zero,
                tnull(RAW_I32),
            ),
            ValueKind::ScaledInt(IntCode::K) => numeric::<Float64Type, 8>(
                &f,
                |b| i64::from_be_bytes(b) as f64 * scal + zero,
                tnull(RAW_I64),
            ),
            // TNULL does not apply to floats: their null is NaN, which stays a value.
            ValueKind::Float32 => numeric::<Float32Type, 4>(&f, f32::from_be_bytes, None),
            ValueKind::Float64 => numeric::<Float64Type, 8>(&f, f64::from_be_bytes, None),
            ValueKind::ScaledFloat(FloatCode::E) => numeric::<Float64Type, 4>(
                &f,
                |b| f64::from(f32::from_be_bytes(b)) * scal + zero,
                None,
            ),
            ValueKind::ScaledFloat(FloatCode::D) => numeric::<Float64Type, 8>(
                &f,
                |b| f64::from_be_bytes(b) * scal + zero,
                None,
            ),
        }
        .map_err(|e| self.arrow_error(at.offset, e))?;
        as_list(values, plan.repeat).map_err(|e| self.arrow_error(at.offset, e))
    }

    /// `rA` columns: one string per row, trailing spaces and NULs trimmed.
    fn utf8(&self, plan: &ColumnPlan, f: &Fields<'_>, at: RowsAt) -> Result<ArrayRef> {
        let loc = self.layout.location();
        let total = f.len().saturating_mul(plan.repeat);
        if i32::try_from(total).is_err() {
            return Err(loc.data(
                at.offset,
                format!(
                    "column '{}': {} rows of {} characters exceed a 2 GiB string array; use smaller batches",
                    self.column_name(plan),
                    f.len(),
                    plan.repeat
                ),
            ));
        }
        let mut offsets: Vec<i32> = Vec::with_capacity(f.len() + 1);
        let mut values: Vec<u8> = Vec::with_capacity(total);
        offsets.push(0);
        for field in f.fields(plan.repeat) {
            values.extend_from_slice(trim_text(field));
            // Cannot truncate: values.len() <= total, which fits i32.
            offsets.push(values.len() as i32);
        }
        // Valid input is checked once, in bulk; the offending row is looked for only on failure.
        if let Err(e) = std::str::from_utf8(&values) {
            let row = offsets
                .iter()
                .skip(1)
                .position(|&end| end as usize > e.valid_up_to())
                .unwrap_or_default() as u64;
            let offset = at
                .offset
                .saturating_add(row.saturating_mul(f.row_len as u64))
                .saturating_add(plan.offset as u64);
            return Err(loc.data(
                offset,
                format!(
                    "column '{}', row {}: text is not valid ASCII/UTF-8",
                    self.column_name(plan),
                    at.first_row.saturating_add(row)
                ),
            ));
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        StringArray::try_new(offsets, Buffer::from_vec(values), None)
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(|e| self.arrow_error(at.offset, e))
    }

    fn column_name(&self, plan: &ColumnPlan) -> &str {
        self.layout
            .columns
            .get(plan.index)
            .map_or("?", |c| c.name.as_str())
    }

    fn arrow_error(&self, offset: u64, e: ArrowError) -> FitsError {
        self.layout
            .location()
            .data(offset, format!("cannot build Arrow array: {e}"))
            .with_cause(e)
    }
}

/// Where a run of rows starts, for error messages.
#[derive(Debug, Clone, Copy)]
struct RowsAt {
    first_row: u64,
    /// Byte offset of the first row in the file.
    offset: u64,
}

/// The same field in each of a run of rows.
#[derive(Debug, Clone, Copy)]
struct Fields<'a> {
    rows: &'a [u8],
    row_len: usize,
    /// Byte offset of the field in a row.
    offset: usize,
    /// Number of elements in the field.
    repeat: usize,
}

impl<'a> Fields<'a> {
    /// Number of rows.
    fn len(&self) -> usize {
        self.rows.len() / self.row_len
    }

    /// The field's first `width` bytes in each row ([`RowDecoder::new`]
    /// checked that the field lies inside the row).
    fn fields(&self, width: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let range = self.offset..self.offset.saturating_add(width);
        self.rows
            .chunks_exact(self.row_len)
            .map(move |row| row.get(range.clone()).unwrap_or_default())
    }

    /// Decodes every `N`-byte element of every row with `convert`.
    fn gather<T, const N: usize>(&self, convert: impl Fn([u8; N]) -> T) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len().saturating_mul(self.repeat));
        if self.repeat == 1 {
            // The common scalar case: one fixed-size load per row.
            let range = self.offset..self.offset.saturating_add(N);
            out.extend(self.rows.chunks_exact(self.row_len).map(|row| {
                convert(
                    row.get(range.clone())
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; N]),
                )
            }));
        } else {
            for field in self.fields(N.saturating_mul(self.repeat)) {
                out.extend(
                    field
                        .chunks_exact(N)
                        .map(|c| convert(c.try_into().unwrap_or([0; N]))),
                );
            }
        }
        out
    }

    /// Nulls where an element's raw stored value is `null` (TNULL), or
    /// `None` if there are none.
    fn nulls_where(&self, raw: RawInt, null: i64) -> Option<NullBuffer> {
        let valid: BooleanBuffer = self
            .fields(raw.size.saturating_mul(self.repeat))
            .flat_map(|field| field.chunks_exact(raw.size))
            .map(|element| (raw.read)(element) != null)
            .collect();
        validity(valid)
    }
}

/// How to read the raw stored value of an integer element, to compare with TNULL.
#[derive(Clone, Copy)]
struct RawInt {
    size: usize,
    read: fn(&[u8]) -> i64,
}

const RAW_U8: RawInt = RawInt {
    size: 1,
    read: |b| b.first().map_or(0, |&b| i64::from(b)),
};
const RAW_I16: RawInt = RawInt {
    size: 2,
    read: |b| b.try_into().map_or(0, |b| i64::from(i16::from_be_bytes(b))),
};
const RAW_I32: RawInt = RawInt {
    size: 4,
    read: |b| b.try_into().map_or(0, |b| i64::from(i32::from_be_bytes(b))),
};
const RAW_I64: RawInt = RawInt {
    size: 8,
    read: |b| b.try_into().map_or(0, i64::from_be_bytes),
};

/// A numeric column of `N`-byte elements.
fn numeric<T: ArrowPrimitiveType, const N: usize>(
    f: &Fields<'_>,
    convert: impl Fn([u8; N]) -> T::Native,
    nulls: Option<NullBuffer>,
) -> std::result::Result<ArrayRef, ArrowError> {
    let values = ScalarBuffer::from(f.gather::<T::Native, N>(convert));
    Ok(Arc::new(PrimitiveArray::<T>::try_new(values, nulls)?))
}

/// A null buffer from per-element validity, or `None` if nothing is null.
fn validity(valid: impl Into<BooleanBuffer>) -> Option<NullBuffer> {
    Some(NullBuffer::new(valid.into())).filter(|n| n.null_count() > 0)
}

/// `L` columns: `T` is true, `F` false, anything else (the FITS null is 0x00) null.
fn logical(f: &Fields<'_>) -> std::result::Result<ArrayRef, ArrowError> {
    let bytes = f.gather::<u8, 1>(|[b]| b);
    let at = |i: usize| bytes.get(i).copied().unwrap_or_default();
    let values = BooleanBuffer::collect_bool(bytes.len(), |i| at(i) == b'T');
    let nulls = validity(BooleanBuffer::collect_bool(bytes.len(), |i| {
        matches!(at(i), b'T' | b'F')
    }));
    // Both buffers have one bit per element of `bytes`.
    Ok(Arc::new(BooleanArray::new(values, nulls)))
}

/// `X` columns: `repeat` bits per row, most significant bit first; never null.
fn bits(f: &Fields<'_>) -> std::result::Result<ArrayRef, ArrowError> {
    let nbits = f.repeat;
    let values: BooleanBuffer = f
        .fields(nbits.div_ceil(8))
        .flat_map(|field| {
            (0..nbits).map(move |i| {
                field
                    .get(i / 8)
                    .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
            })
        })
        .collect();
    Ok(Arc::new(BooleanArray::new(values, None)))
}

/// Wraps the flat element array of a column with repeat > 1 into a fixed-size list.
fn as_list(values: ArrayRef, repeat: usize) -> std::result::Result<ArrayRef, ArrowError> {
    if repeat == 1 {
        return Ok(values);
    }
    let size = i32::try_from(repeat)
        .map_err(|_| ArrowError::InvalidArgumentError(format!("repeat {repeat} too large")))?;
    let item = list_item(values.data_type().clone());
    Ok(Arc::new(FixedSizeListArray::try_new(item, size, values, None)?))
}

/// Trims the trailing spaces and NULs that pad FITS strings.
fn trim_text(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | 0] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_padding_but_not_leading_or_inner() {
        assert_eq!(trim_text(b"PSF "), b"PSF");
        assert_eq!(trim_text(b"REX\0"), b"REX");
        assert_eq!(trim_text(b"AB\0 \0 "), b"AB");
        assert_eq!(trim_text(b" A\0B "), b" A\0B");
        assert_eq!(trim_text(b"   "), b"");
        assert_eq!(trim_text(b""), b"");
    }
}
