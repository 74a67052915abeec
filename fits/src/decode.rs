//! Row bytes to Arrow: the hot loop.
//!
//! Rows are walked in blocks small enough to stay in the CPU cache; within a
//! block each projected column is decoded on its own, striding over the rows
//! and converting big-endian fields with `from_be_bytes` into a pre-sized
//! `Vec` that becomes the array's buffer without a copy.

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::BooleanBufferBuilder;
use arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeListArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray, StringViewArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Schema,
    SchemaRef, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::error::ArrowError;

use crate::column::{list_item, FloatCode, IntCode, ValueKind};
use crate::error::{FitsError, Location, Result};
use crate::header::BinTableLayout;

/// Decodes whole rows of one binary table into [`RecordBatch`]es.
///
/// Holds no I/O: give it the bytes of consecutive rows, however they were read.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    layout: Arc<BinTableLayout>,
    columns: Vec<ColumnPlan>,
    schema: SchemaRef,
    /// `rA` columns decode to `Utf8View` rather than `Utf8`.
    string_views: bool,
}

/// Row bytes decoded per block: small enough that a block read once for the
/// first column is still in cache for the others.
const BLOCK_BYTES: usize = 64 << 10;

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
            let end = col
                .tform
                .checked_width()
                .and_then(|w| w.checked_add(col.offset));
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
            string_views: false,
        })
    }

    /// Decodes `rA` (string) columns to `Utf8View` instead of `Utf8`, with
    /// the same trimming. Strings of up to 12 bytes (a sweep's TYPE or
    /// BRICKNAME) live inside their 16-byte view: no offsets, no data
    /// buffer, and comparisons look at the view alone.
    pub fn with_string_views(mut self) -> Self {
        if self.string_views {
            return self;
        }
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
                _ => f.as_ref().clone(),
            })
            .collect();
        self.schema = Arc::new(Schema::new(fields));
        self.string_views = true;
        self
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
        let loc = layout.location();
        let row_len = layout.row_len;
        let start = (row_len as u64)
            .saturating_mul(first_row)
            .saturating_add(layout.data_offset);
        let leftover = rows.len() % row_len;
        if leftover != 0 {
            let whole = (rows.len() - leftover) as u64;
            return Err(loc.data(
                start.saturating_add(whole),
                format!(
                    "{} bytes of row data are not a whole number of {row_len}-byte rows ({leftover} bytes left over)",
                    rows.len()
                ),
            ));
        }
        let nrows = rows.len() / row_len;
        let end_row = first_row.saturating_add(nrows as u64);
        if end_row > layout.nrows {
            return Err(loc.data(
                start,
                format!(
                    "rows {first_row}..{end_row} are past the end of the table ({} rows)",
                    layout.nrows
                ),
            ));
        }
        let mut sinks = self
            .columns
            .iter()
            .map(|plan| self.sink(plan, nrows, start))
            .collect::<Result<Vec<_>>>()?;
        let block_rows = (BLOCK_BYTES / row_len).max(1);
        for block in rows.chunks(block_rows * row_len) {
            for sink in &mut sinks {
                sink.append(block);
            }
        }
        let arrays = sinks
            .into_iter()
            .zip(&self.columns)
            .map(|(sink, plan)| {
                sink.finish().map_err(|e| match e {
                    SinkError::Arrow(e) => arrow_error(loc, start, e),
                    SinkError::Text { row } => loc.data(
                        start
                            .saturating_add((row as u64).saturating_mul(row_len as u64))
                            .saturating_add(plan.offset as u64),
                        format!(
                            "column '{}', row {}: text is not valid ASCII/UTF-8",
                            self.column_name(plan),
                            first_row.saturating_add(row as u64)
                        ),
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(nrows));
        RecordBatch::try_new_with_options(self.schema(), arrays, &options)
            .map_err(|e| arrow_error(loc, start, e))
    }

    /// A sink collecting `nrows` rows of one column.
    fn sink(&self, plan: &ColumnPlan, nrows: usize, start: u64) -> Result<Box<dyn Sink>> {
        let at = FieldAt {
            row_len: self.layout.row_len,
            offset: plan.offset,
            repeat: plan.repeat,
        };
        let (scal, zero) = (plan.tscal, plan.tzero);
        let null = plan.tnull;
        let sink: Box<dyn Sink> = match plan.kind {
            ValueKind::Logical => Box::new(Logical::new(at, nrows)),
            ValueKind::Bits => Box::new(Bits::new(at, nrows)),
            ValueKind::Utf8 => {
                let total = nrows.saturating_mul(plan.repeat);
                if i32::try_from(total).is_err() {
                    return Err(self.layout.location().data(
                        start,
                        format!(
                            "column '{}': {nrows} rows of {} characters exceed a 2 GiB string array; use smaller batches",
                            self.column_name(plan),
                            plan.repeat
                        ),
                    ));
                }
                if self.string_views {
                    Box::new(TextView::new(at, nrows))
                } else {
                    Box::new(Text::new(at, nrows))
                }
            }
            ValueKind::UInt8 => numeric::<UInt8Type, 1>(at, nrows, |[b]| b, tnull(RAW_U8, null)),
            ValueKind::Int8 => {
                numeric::<Int8Type, 1>(at, nrows, |[b]| (b ^ 0x80) as i8, tnull(RAW_U8, null))
            }
            ValueKind::Int16 => {
                numeric::<Int16Type, 2>(at, nrows, i16::from_be_bytes, tnull(RAW_I16, null))
            }
            ValueKind::UInt16 => numeric::<UInt16Type, 2>(
                at,
                nrows,
                |b| u16::from_be_bytes(b) ^ 0x8000,
                tnull(RAW_I16, null),
            ),
            ValueKind::Int32 => {
                numeric::<Int32Type, 4>(at, nrows, i32::from_be_bytes, tnull(RAW_I32, null))
            }
            ValueKind::UInt32 => numeric::<UInt32Type, 4>(
                at,
                nrows,
                |b| u32::from_be_bytes(b) ^ 0x8000_0000,
                tnull(RAW_I32, null),
            ),
            ValueKind::Int64 => {
                numeric::<Int64Type, 8>(at, nrows, i64::from_be_bytes, tnull(RAW_I64, null))
            }
            ValueKind::UInt64 => numeric::<UInt64Type, 8>(
                at,
                nrows,
                |b| u64::from_be_bytes(b) ^ 0x8000_0000_0000_0000,
                tnull(RAW_I64, null),
            ),
            ValueKind::ScaledInt(IntCode::B) => numeric::<Float64Type, 1>(
                at,
                nrows,
                move |[b]| f64::from(b) * scal + zero,
                tnull(RAW_U8, null),
            ),
            ValueKind::ScaledInt(IntCode::I) => numeric::<Float64Type, 2>(
                at,
                nrows,
                move |b| f64::from(i16::from_be_bytes(b)) * scal + zero,
                tnull(RAW_I16, null),
            ),
            ValueKind::ScaledInt(IntCode::J) => numeric::<Float64Type, 4>(
                at,
                nrows,
                move |b| f64::from(i32::from_be_bytes(b)) * scal + zero,
                tnull(RAW_I32, null),
            ),
            ValueKind::ScaledInt(IntCode::K) => numeric::<Float64Type, 8>(
                at,
                nrows,
                move |b| i64::from_be_bytes(b) as f64 * scal + zero,
                tnull(RAW_I64, null),
            ),
            // TNULL does not apply to floats: their null is NaN, which stays a value.
            ValueKind::Float32 => numeric::<Float32Type, 4>(at, nrows, f32::from_be_bytes, None),
            ValueKind::Float64 => numeric::<Float64Type, 8>(at, nrows, f64::from_be_bytes, None),
            ValueKind::ScaledFloat(FloatCode::E) => numeric::<Float64Type, 4>(
                at,
                nrows,
                move |b| f64::from(f32::from_be_bytes(b)) * scal + zero,
                None,
            ),
            ValueKind::ScaledFloat(FloatCode::D) => numeric::<Float64Type, 8>(
                at,
                nrows,
                move |b| f64::from_be_bytes(b) * scal + zero,
                None,
            ),
        };
        Ok(sink)
    }

    fn column_name(&self, plan: &ColumnPlan) -> &str {
        self.layout
            .columns
            .get(plan.index)
            .map_or("?", |c| c.name.as_str())
    }
}

fn arrow_error(loc: Location<'_>, offset: u64, e: ArrowError) -> FitsError {
    loc.data(offset, format!("cannot build Arrow array: {e}"))
        .with_cause(e)
}

/// Where one column's field is in each row.
#[derive(Debug, Clone, Copy)]
struct FieldAt {
    row_len: usize,
    /// Byte offset of the field in a row.
    offset: usize,
    /// Number of elements in the field.
    repeat: usize,
}

impl FieldAt {
    /// The field's first `width` bytes in each of `rows` ([`RowDecoder::new`]
    /// checked that the field lies inside the row).
    fn fields<'a>(&self, rows: &'a [u8], width: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let range = self.offset..self.offset.saturating_add(width);
        rows.chunks_exact(self.row_len)
            .map(move |row| row.get(range.clone()).unwrap_or_default())
    }

    /// Appends every `N`-byte element of every row in `rows`, decoded by `convert`.
    fn gather<T, const N: usize>(
        &self,
        rows: &[u8],
        out: &mut Vec<T>,
        convert: impl Fn([u8; N]) -> T,
    ) {
        if self.repeat == 1 {
            // The common scalar case: one fixed-size load per row.
            let range = self.offset..self.offset.saturating_add(N);
            out.extend(rows.chunks_exact(self.row_len).map(|row| {
                convert(
                    row.get(range.clone())
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; N]),
                )
            }));
        } else {
            for field in self.fields(rows, N.saturating_mul(self.repeat)) {
                out.extend(
                    field
                        .chunks_exact(N)
                        .map(|c| convert(c.try_into().unwrap_or([0; N]))),
                );
            }
        }
    }
}

/// Collects one column over the blocks of a batch, then builds its array.
trait Sink {
    /// Appends the column's values in `rows` (whole rows).
    fn append(&mut self, rows: &[u8]);
    /// The column's array.
    fn finish(self: Box<Self>) -> std::result::Result<ArrayRef, SinkError>;
}

enum SinkError {
    Arrow(ArrowError),
    /// The text in this row (counted from the batch's first) is not UTF-8.
    Text {
        row: usize,
    },
}

impl From<ArrowError> for SinkError {
    fn from(e: ArrowError) -> Self {
        SinkError::Arrow(e)
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

/// The TNULL check of an integer column, if it has a TNULL.
fn tnull(raw: RawInt, null: Option<i64>) -> Option<(RawInt, i64)> {
    null.map(|null| (raw, null))
}

/// A numeric column of `N`-byte elements.
struct Numeric<T: ArrowPrimitiveType, const N: usize, F> {
    at: FieldAt,
    convert: F,
    values: Vec<T::Native>,
    /// For TNULL: how to read raw values, the null value, per-element validity.
    tnull: Option<(RawInt, i64, BooleanBufferBuilder)>,
}

fn numeric<T: ArrowPrimitiveType, const N: usize>(
    at: FieldAt,
    nrows: usize,
    convert: impl Fn([u8; N]) -> T::Native + 'static,
    tnull: Option<(RawInt, i64)>,
) -> Box<dyn Sink> {
    let len = nrows.saturating_mul(at.repeat);
    Box::new(Numeric::<T, N, _> {
        at,
        convert,
        values: Vec::with_capacity(len),
        tnull: tnull.map(|(raw, null)| (raw, null, BooleanBufferBuilder::new(len))),
    })
}

impl<T: ArrowPrimitiveType, const N: usize, F: Fn([u8; N]) -> T::Native> Sink for Numeric<T, N, F> {
    fn append(&mut self, rows: &[u8]) {
        self.at.gather(rows, &mut self.values, &self.convert);
        if let Some((raw, null, valid)) = &mut self.tnull {
            // Compares the raw stored value, before any scaling.
            for field in self
                .at
                .fields(rows, raw.size.saturating_mul(self.at.repeat))
            {
                for element in field.chunks_exact(raw.size) {
                    valid.append((raw.read)(element) != *null);
                }
            }
        }
    }

    fn finish(self: Box<Self>) -> std::result::Result<ArrayRef, SinkError> {
        let nulls = self
            .tnull
            .and_then(|(_, _, mut valid)| validity(valid.finish()));
        let values = PrimitiveArray::<T>::try_new(ScalarBuffer::from(self.values), nulls)?;
        Ok(as_list(Arc::new(values), self.at.repeat)?)
    }
}

/// A null buffer from per-element validity, or `None` if nothing is null.
fn validity(valid: BooleanBuffer) -> Option<NullBuffer> {
    Some(NullBuffer::new(valid)).filter(|n| n.null_count() > 0)
}

/// `L` columns: `T` is true, `F` false, anything else (the FITS null is 0x00) null.
struct Logical {
    at: FieldAt,
    bytes: Vec<u8>,
}

impl Logical {
    fn new(at: FieldAt, nrows: usize) -> Self {
        let bytes = Vec::with_capacity(nrows.saturating_mul(at.repeat));
        Self { at, bytes }
    }
}

impl Sink for Logical {
    fn append(&mut self, rows: &[u8]) {
        self.at.gather(rows, &mut self.bytes, |[b]: [u8; 1]| b);
    }

    fn finish(self: Box<Self>) -> std::result::Result<ArrayRef, SinkError> {
        let at = |i: usize| self.bytes.get(i).copied().unwrap_or_default();
        let len = self.bytes.len();
        let values = BooleanBuffer::collect_bool(len, |i| at(i) == b'T');
        let nulls = validity(BooleanBuffer::collect_bool(len, |i| {
            matches!(at(i), b'T' | b'F')
        }));
        // Both buffers have one bit per element.
        let values = BooleanArray::new(values, nulls);
        Ok(as_list(Arc::new(values), self.at.repeat)?)
    }
}

/// `X` columns: `repeat` bits per row, most significant bit first; never null.
struct Bits {
    at: FieldAt,
    bits: BooleanBufferBuilder,
}

impl Bits {
    fn new(at: FieldAt, nrows: usize) -> Self {
        let bits = BooleanBufferBuilder::new(nrows.saturating_mul(at.repeat));
        Self { at, bits }
    }
}

impl Sink for Bits {
    fn append(&mut self, rows: &[u8]) {
        let nbits = self.at.repeat;
        for field in self.at.fields(rows, nbits.div_ceil(8)) {
            for i in 0..nbits {
                let bit = field.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
                self.bits.append(bit);
            }
        }
    }

    fn finish(mut self: Box<Self>) -> std::result::Result<ArrayRef, SinkError> {
        let values = BooleanArray::new(self.bits.finish(), None);
        Ok(as_list(Arc::new(values), self.at.repeat)?)
    }
}

/// `rA` columns: one string per row, trailing spaces and NULs trimmed.
struct Text {
    at: FieldAt,
    offsets: Vec<i32>,
    values: Vec<u8>,
}

impl Text {
    /// `nrows × repeat` must fit `i32` (checked by the caller).
    fn new(at: FieldAt, nrows: usize) -> Self {
        let mut offsets = Vec::with_capacity(nrows.saturating_add(1));
        offsets.push(0);
        let values = Vec::with_capacity(nrows.saturating_mul(at.repeat));
        Self {
            at,
            offsets,
            values,
        }
    }
}

impl Sink for Text {
    fn append(&mut self, rows: &[u8]) {
        for field in self.at.fields(rows, self.at.repeat) {
            self.values.extend_from_slice(trim_text(field));
            // Cannot truncate: at most nrows × repeat bytes, which fits i32.
            self.offsets.push(self.values.len() as i32);
        }
    }

    fn finish(self: Box<Self>) -> std::result::Result<ArrayRef, SinkError> {
        // Valid text is checked once, in bulk; the offending row is looked for only on failure.
        if let Err(e) = std::str::from_utf8(&self.values) {
            let row = self
                .offsets
                .iter()
                .skip(1)
                .position(|&end| end as usize > e.valid_up_to())
                .unwrap_or_default();
            return Err(SinkError::Text { row });
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let array = StringArray::try_new(offsets, Buffer::from_vec(self.values), None)?;
        Ok(Arc::new(array))
    }
}

/// `rA` columns as `Utf8View`: strings of up to 12 bytes are inline in
/// their view, longer ones go to a single data buffer.
struct TextView {
    at: FieldAt,
    views: Vec<u128>,
    data: Vec<u8>,
    /// Every kept byte so far is ASCII, so every string is valid UTF-8.
    ascii: bool,
}

/// The longest string a view holds inline.
const MAX_INLINE: usize = 12;

impl TextView {
    /// `nrows × repeat` must fit `i32` (checked by the caller), so data
    /// offsets fit the views' `u32`.
    fn new(at: FieldAt, nrows: usize) -> Self {
        let data = if at.repeat > MAX_INLINE {
            Vec::with_capacity(nrows.saturating_mul(at.repeat))
        } else {
            Vec::new()
        };
        Self {
            at,
            views: Vec::with_capacity(nrows),
            data,
            ascii: true,
        }
    }

    /// The first row (counted from the batch's first) whose text is not UTF-8.
    fn first_invalid_row(&self) -> Option<usize> {
        self.views.iter().position(|&view| {
            let len = view as u32 as usize;
            let bytes = view.to_le_bytes();
            let text = if len <= MAX_INLINE {
                // Little-endian views: the text follows the 4 length bytes.
                bytes.get(4..4 + len)
            } else {
                let offset = (view >> 96) as u32 as usize;
                self.data.get(offset..offset.saturating_add(len))
            };
            text.is_none_or(|t| std::str::from_utf8(t).is_err())
        })
    }
}

impl Sink for TextView {
    fn append(&mut self, rows: &[u8]) {
        let mut ascii = true;
        for field in self.at.fields(rows, self.at.repeat) {
            let text = trim_text(field);
            ascii &= text.is_ascii();
            let view = if text.len() <= MAX_INLINE {
                make_view(text, 0, 0)
            } else {
                // Cannot truncate: at most nrows × repeat bytes, which fits i32.
                let offset = self.data.len() as u32;
                self.data.extend_from_slice(text);
                make_view(text, 0, offset)
            };
            self.views.push(view);
        }
        self.ascii &= ascii;
    }

    fn finish(self: Box<Self>) -> std::result::Result<ArrayRef, SinkError> {
        // ASCII text needs no further check; otherwise each string is checked.
        if !self.ascii {
            if let Some(row) = self.first_invalid_row() {
                return Err(SinkError::Text { row });
            }
        }
        let buffers = if self.data.is_empty() {
            Vec::new()
        } else {
            vec![Buffer::from_vec(self.data)]
        };
        // SAFETY: every view was made by `make_view` from a string checked to
        // be UTF-8 above; a long string's view points into buffer 0, at the
        // offset it was appended at.
        let array = unsafe {
            StringViewArray::new_unchecked(ScalarBuffer::from(self.views), buffers, None)
        };
        Ok(Arc::new(array))
    }
}

/// Wraps the flat element array of a column with repeat > 1 into a fixed-size list.
fn as_list(values: ArrayRef, repeat: usize) -> std::result::Result<ArrayRef, ArrowError> {
    if repeat == 1 {
        return Ok(values);
    }
    let size = i32::try_from(repeat)
        .map_err(|_| ArrowError::InvalidArgumentError(format!("repeat {repeat} too large")))?;
    let item = list_item(values.data_type().clone());
    Ok(Arc::new(FixedSizeListArray::try_new(
        item, size, values, None,
    )?))
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

    use crate::header::{scan_headers, HeaderScan};
    use crate::writer::{BinTableWriter, ColumnSpec};
    use arrow::array::{Array, AsArray};

    /// A table of one `width`A column holding `texts` (padded with spaces
    /// to the width by the caller) and a `J` column, decoded both ways.
    fn strings_both_ways(width: usize, texts: &[&[u8]]) -> (RecordBatch, RecordBatch) {
        let columns = vec![
            ColumnSpec::new("TYPE", format!("{width}A")),
            ColumnSpec::new("N", "J"),
        ];
        let mut w = BinTableWriter::new(Vec::new(), columns, texts.len() as u64, &[]).unwrap();
        let mut rows = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(t.len(), width);
            rows.extend_from_slice(t);
            rows.extend_from_slice(&(i as i32).to_be_bytes());
        }
        w.write_rows(&rows).unwrap();
        let file = w.finish().unwrap();
        let HeaderScan::Complete(layout) = scan_headers(&file, "strings.fits").unwrap() else {
            panic!("header incomplete");
        };
        let from = layout.data_offset as usize;
        let data = &file[from..from + rows.len()];
        let plain = RowDecoder::new(Arc::new(layout), None).unwrap();
        let views = plain.clone().with_string_views();
        assert_eq!(views.schema().field(0).data_type(), &DataType::Utf8View);
        assert_eq!(views.schema().field(1).data_type(), &DataType::Int32);
        (
            plain.decode(data, 0).unwrap(),
            views.decode(data, 0).unwrap(),
        )
    }

    fn strings(array: &dyn Array) -> Vec<String> {
        let array = arrow::compute::cast(array, &DataType::Utf8).unwrap();
        array
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect()
    }

    #[test]
    fn string_views_trim_as_utf8_does() {
        let texts: [&[u8]; 7] = [
            b"PSF ", b"REX\0", b"  X ", b"A\0B ", b"    ", b"DEV\0", b"SER\0",
        ];
        let (plain, views) = strings_both_ways(4, &texts);
        assert_eq!(views.column(0).data_type(), &DataType::Utf8View);
        assert_eq!(views.column(0).null_count(), 0);
        let expected = ["PSF", "REX", "  X", "A\0B", "", "DEV", "SER"];
        assert_eq!(strings(plain.column(0).as_ref()), expected);
        assert_eq!(strings(views.column(0).as_ref()), expected);
        // Inline strings need no data buffer.
        assert!(views.column(0).as_string_view().data_buffers().is_empty());
        assert_eq!(plain.column(1), views.column(1));
    }

    #[test]
    fn long_string_views_share_one_buffer() {
        // 12 bytes stay inline, 13 and more go to the data buffer.
        let texts: [&[u8]; 5] = [
            b"ABCDEFGHIJKL      ",
            b"ABCDEFGHIJKLM     ",
            b"a longer name \0\0\0\0",
            b"                  ",
            b"\xc3\xa9t\xc3\xa9 \xc3\xa0 Paris ok ",
        ];
        let (plain, views) = strings_both_ways(18, &texts);
        let expected = strings(plain.column(0).as_ref());
        assert_eq!(
            expected,
            [
                "ABCDEFGHIJKL",
                "ABCDEFGHIJKLM",
                "a longer name",
                "",
                "été à Paris ok"
            ]
        );
        assert_eq!(strings(views.column(0).as_ref()), expected);
        assert_eq!(views.column(0).as_string_view().data_buffers().len(), 1);
    }

    #[test]
    fn invalid_text_names_the_row_in_views_too() {
        let columns = vec![ColumnSpec::new("TYPE", "4A")];
        let mut w = BinTableWriter::new(Vec::new(), columns, 3, &[]).unwrap();
        w.write_rows(b"PSF REX DE\xffV").unwrap();
        let file = w.finish().unwrap();
        let HeaderScan::Complete(layout) = scan_headers(&file, "bad.fits").unwrap() else {
            panic!("header incomplete");
        };
        let from = layout.data_offset as usize;
        let decoder = RowDecoder::new(Arc::new(layout), None).unwrap();
        for d in [decoder.clone(), decoder.with_string_views()] {
            let err = d
                .decode(&file[from + 4..from + 12], 1)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("bad.fits") && err.contains("'TYPE', row 2"),
                "{err}"
            );
        }
    }

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
