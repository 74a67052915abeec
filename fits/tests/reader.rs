//! Reader behaviour: projection, row ranges, batch sizes, strings, layout.

mod common;

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt16Array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Float32Type};
use common::{col, table_file, Col, Row};
use lenspipe_fits::{scan_headers, HeaderScan, ReaderBuilder, RowDecoder};

const FILE: &str = "test.fits";

fn cols() -> Vec<Col> {
    vec![col("RA", "D"), col("FLUX_G", "E"), col("TYPE", "4A")]
}

fn rows(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            Row::new()
                .f64(i as f64)
                .f32(i as f32 / 2.0)
                .text("PSF", 4)
                .done()
        })
        .collect()
}

fn read_all(bytes: &[u8], builder: ReaderBuilder) -> Vec<RecordBatch> {
    builder
        .build(Cursor::new(bytes), FILE)
        .expect("build")
        .collect::<Result<Vec<_>, _>>()
        .expect("read")
}

fn ra_values(batches: &[RecordBatch]) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            let i = b.schema().index_of("ra").expect("ra");
            b.column(i)
                .as_primitive::<arrow::datatypes::Float64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn projection_decodes_only_the_requested_columns() {
    let mut data = rows(3);
    data[1][12] = 0xff; // invalid text in TYPE
    let bytes = table_file(&cols(), &data);

    let err = ReaderBuilder::new()
        .build(Cursor::new(&bytes), FILE)
        .expect("build")
        .collect::<Result<Vec<_>, _>>()
        .expect_err("TYPE is decoded when read");
    assert!(err.message.contains("column 'TYPE', row 1"), "{err}");

    // The bad byte is in a column that is not read.
    let batches = read_all(&bytes, ReaderBuilder::new().with_columns(&["flux_g", "ra"]));
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["flux_g", "ra"]);
    assert_eq!(
        batches[0].column(0).as_ref(),
        &Float32Array::from(vec![0.0, 0.5, 1.0]) as &dyn Array
    );
    assert_eq!(ra_values(&batches), [0.0, 1.0, 2.0]);

    // The same by index, and an empty projection still counts rows.
    let batches = read_all(&bytes, ReaderBuilder::new().with_projection(vec![1]));
    assert_eq!(batches[0].schema().field(0).name(), "flux_g");
    let batches = read_all(&bytes, ReaderBuilder::new().with_projection(vec![]));
    assert_eq!(batches[0].num_columns(), 0);
    assert_eq!(batches[0].num_rows(), 3);
}

#[test]
fn row_ranges_and_batch_sizes() {
    let bytes = table_file(&cols(), &rows(10));
    for batch_size in 1..=11 {
        for range in [0..10, 3..7, 9..10, 0..1, 5..5] {
            let builder = ReaderBuilder::new()
                .with_batch_size(batch_size)
                .with_row_range(range.clone());
            let batches = read_all(&bytes, builder);
            let want: Vec<f64> = range.clone().map(|r| r as f64).collect();
            assert_eq!(
                ra_values(&batches),
                want,
                "batch {batch_size}, rows {range:?}"
            );
            let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
            let n = (range.end - range.start) as usize;
            let mut want_sizes = vec![batch_size; n / batch_size];
            if !n.is_multiple_of(batch_size) {
                want_sizes.push(n % batch_size);
            }
            assert_eq!(sizes, want_sizes, "batch {batch_size}, rows {range:?}");
        }
    }
}

#[test]
fn strings_lose_trailing_spaces_and_nuls_only() {
    let texts: [&[u8; 4]; 6] = [b"PSF ", b"REX\0", b"  X ", b"A\0B ", b"    ", b"DEV\0"];
    let data: Vec<Vec<u8>> = texts.iter().map(|t| Row::new().bytes(*t).done()).collect();
    let bytes = table_file(&[col("TYPE", "4A")], &data);
    let batches = read_all(&bytes, ReaderBuilder::new());
    assert_eq!(
        batches[0].column(0).as_ref(),
        &StringArray::from(vec!["PSF", "REX", "  X", "A\0B", "", "DEV"]) as &dyn Array
    );
    assert_eq!(batches[0].column(0).null_count(), 0);
}

#[test]
fn conventions_decode_to_the_documented_types() {
    let cols = [
        col("K5", "K").with("TZERO", "5"),
        col("U16", "I").with("TZERO", "32768").with("TNULL", "0"),
        col("FLAG", "L"),
        col("V", "2E"),
    ];
    let data = vec![
        Row::new()
            .i64(-5)
            .i16(0)
            .u8(b'T')
            .f32(1.0)
            .f32(f32::NAN)
            .done(),
        Row::new()
            .i64(1 << 40)
            .i16(-32768)
            .u8(0)
            .f32(-0.0)
            .f32(2.0)
            .done(),
    ];
    let bytes = table_file(&cols, &data);
    let batch = &read_all(&bytes, ReaderBuilder::new())[0];
    assert_eq!(
        batch.column(0).as_ref(),
        &Float64Array::from(vec![0.0, (1u64 << 40) as f64 + 5.0]) as &dyn Array
    );
    // TNULL compares the raw value (0), not the offset one (32768).
    assert_eq!(
        batch.column(1).as_ref(),
        &UInt16Array::from(vec![None, Some(0)]) as &dyn Array
    );
    assert_eq!(
        batch.column(2).as_ref(),
        &BooleanArray::from(vec![Some(true), None]) as &dyn Array
    );
    let list = batch.column(3).as_fixed_size_list();
    assert_eq!(list.value_length(), 2);
    let values = list.values().as_primitive::<Float32Type>();
    assert_eq!(values.len(), 4);
    assert!(values.value(1).is_nan(), "NaN stays a value");
    assert_eq!(values.null_count(), 0);
    assert!(values.value(2).is_sign_negative());
}

#[test]
fn real_files_read_the_same_in_any_batch_size() {
    for name in common::REAL_FILES {
        let bytes = common::real_file(name);
        let whole = read_all(&bytes, ReaderBuilder::new());
        assert_eq!(whole.len(), 1);
        for batch_size in [1, 4, 5] {
            let batches = read_all(&bytes, ReaderBuilder::new().with_batch_size(batch_size));
            assert_eq!(batches.len(), 6usize.div_ceil(batch_size));
            let joined = concat_batches(&whole[0].schema(), &batches).expect("concat");
            assert_eq!(joined, whole[0], "{name}, batch size {batch_size}");
        }
        let tail = read_all(&bytes, ReaderBuilder::new().with_row_range(4..6));
        assert_eq!(tail[0], whole[0].slice(4, 2), "{name}");
    }
}

#[test]
fn real_file_layout() {
    let bytes = common::real_file(common::REAL_FILES[0]);
    let layout = lenspipe_fits::read_layout(&mut Cursor::new(&bytes), FILE).expect("layout");
    assert_eq!(layout.source, FILE);
    assert_eq!(
        (layout.hdu, layout.header_offset, layout.data_offset),
        (1, 2880, 51840)
    );
    assert_eq!(
        (layout.row_len, layout.nrows, layout.heap_size),
        (383, 6, 0)
    );
    assert_eq!(layout.data_len(), 2298);
    assert_eq!(layout.columns.len(), 96);
    assert_eq!(layout.column_index("flux_g"), Some(11));
    assert_eq!(layout.column_index("FLUX_G"), None);
    let flux = &layout.columns[11];
    assert_eq!(
        (flux.name.as_str(), flux.offset, flux.tform.to_string()),
        ("FLUX_G", 70, "1E".into())
    );
    let schema = layout.arrow_schema();
    assert!(schema.fields().iter().all(|f| f.is_nullable()));
    let field = |name: &str| {
        schema
            .field_with_name(name)
            .expect(name)
            .data_type()
            .clone()
    };
    assert_eq!(field("release"), DataType::Int16);
    assert_eq!(field("type"), DataType::Utf8);
    assert_eq!(field("ref_id"), DataType::Int64);
    assert_eq!(field("wisemask_w1"), DataType::UInt8);
    assert_eq!(field("gaia_astrometric_params_solved"), DataType::Int8);
    assert_eq!(field("gaia_duplicated_source"), DataType::Boolean);
    assert_eq!(
        field("dchisq"),
        DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, true)), 5)
    );
    assert_eq!(layout.row_byte_range(1..3).expect("rows"), 52223..52989);
    layout.check_file_size(bytes.len() as u64).expect("size");
    assert!(layout.check_file_size(54000).is_err());
}

#[test]
fn headers_scan_incrementally() {
    for name in common::REAL_FILES {
        let bytes = common::real_file(name);
        let mut len = 100;
        let mut asked = vec![];
        let layout = loop {
            match scan_headers(&bytes[..len], name).expect("scan") {
                HeaderScan::Complete(layout) => break layout,
                HeaderScan::NeedMore { at_least } => {
                    assert!(at_least > len && at_least <= bytes.len(), "{at_least}");
                    asked.push(at_least);
                    len = at_least;
                }
            }
        };
        assert_eq!(asked.first(), Some(&2880));
        assert_eq!(
            scan_headers(&bytes, name).expect("scan"),
            HeaderScan::Complete(layout.clone())
        );
        // The decoder needs only the rows.
        let rows = &bytes[layout.data_offset as usize..][..layout.data_len() as usize];
        let decoder = RowDecoder::new(Arc::new(layout), Some(vec![76])).expect("decoder");
        let batch = decoder.decode(rows, 0).expect("decode");
        assert_eq!(decoder.schema().field(0).name(), "ref_id");
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .len(),
            6
        );
    }
}

#[test]
fn repeat_zero_columns_are_left_out() {
    let cols = [col("A", "J"), col("NOTHING", "0E"), col("B", "I")];
    let data = vec![Row::new().i32(7).i16(-2).done()];
    let bytes = table_file(&cols, &data);
    let batch = &read_all(&bytes, ReaderBuilder::new())[0];
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        batch
            .column(1)
            .as_primitive::<arrow::datatypes::Int16Type>()
            .value(0),
        -2
    );
}

#[test]
fn empty_table_has_a_schema_and_no_batches() {
    let bytes = table_file(&cols(), &[]);
    let reader = ReaderBuilder::new()
        .build(Cursor::new(&bytes), FILE)
        .expect("build");
    assert_eq!(reader.schema().fields().len(), 3);
    assert_eq!(reader.count(), 0);
}

#[test]
fn batches_spanning_many_decode_blocks_match_row_by_row() {
    // About 1 MB of rows: a single batch is decoded in many cache-sized blocks.
    let rows: Vec<Vec<u8>> = common::synthetic_rows()
        .into_iter()
        .cycle()
        .take(7001)
        .collect();
    let bytes = table_file(&common::synthetic_columns(), &rows);
    let whole = read_all(&bytes, ReaderBuilder::new());
    assert_eq!(whole.len(), 1);
    let single = read_all(&bytes, ReaderBuilder::new().with_batch_size(1));
    assert_eq!(single.len(), 7001);
    let joined = concat_batches(&whole[0].schema(), &single).expect("concat");
    assert_eq!(joined, whole[0]);
}

#[test]
fn unnamed_columns_are_called_coln() {
    let mut cards = common::table_cards(&[col("A", "J"), col("", "I")], 1);
    cards.retain(|c| !c.starts_with("TTYPE1 "));
    let bytes = common::fits_file(&cards, &Row::new().i32(1).i16(2).done());
    let layout = lenspipe_fits::read_layout(&mut Cursor::new(&bytes), FILE).expect("layout");
    let names: Vec<(&str, &str)> = layout
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.arrow_name.as_str()))
        .collect();
    assert_eq!(names, [("COL1", "col1"), ("COL2", "col2")]);
}
