//! `lenspipe_fits::BinTableWriter` output parsed back by `lenspipe_fits`
//! (`scan_headers` and the Arrow `ReaderBuilder`).

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, UInt16Type, UInt8Type,
};
use lenspipe_fits::writer::quote_string;
use lenspipe_fits::{scan_headers, BinTableWriter, ColumnSpec, HeaderScan, ReaderBuilder};
use std::io::Cursor;

fn sample() -> (Vec<ColumnSpec>, Vec<u8>, u64) {
    let cols = vec![
        ColumnSpec::new("ID", "J").tnull(-1),
        ColumnSpec::new("NAME", "3A"),
        ColumnSpec::new("FLUX", "2E").unit("nanomaggy"),
        ColumnSpec::new("U16", "I").tzero(32768.0),
        ColumnSpec::new("RA", "D").unit("deg"),
        ColumnSpec::new("OK", "L"),
        ColumnSpec::new("BIG", "K"),
        ColumnSpec::new("SCALED", "I").tscal(0.5).tzero(10.0),
        ColumnSpec::new("FLAG", "B"),
    ];
    let mut rows = Vec::new();
    for i in 0..3i32 {
        rows.extend_from_slice(&(if i == 1 { -1 } else { i * 100 }).to_be_bytes());
        rows.extend_from_slice(b"ab ");
        rows.extend_from_slice(&(i as f32 + 0.5).to_be_bytes());
        rows.extend_from_slice(&f32::NAN.to_be_bytes());
        rows.extend_from_slice(&(i16::MIN + 7 + i as i16).to_be_bytes()); // stored raw; value = raw + 32768
        rows.extend_from_slice(&(150.0 + i as f64 * 1e-9).to_be_bytes());
        rows.push(if i == 2 { b'F' } else { b'T' });
        rows.extend_from_slice(&(i64::MAX - i as i64).to_be_bytes());
        rows.extend_from_slice(&(4i16 * i as i16).to_be_bytes());
        rows.push(200 + i as u8);
    }
    (cols, rows, 3)
}

fn write_sample() -> (Vec<u8>, usize) {
    let (cols, rows, n) = sample();
    let extra = vec![
        ("RELEASE".to_string(), "10000".to_string()),
        ("SURVEY".to_string(), quote_string("DECaLS 'DR10'")),
        ("COMMENT".to_string(), "round-trip test".to_string()),
    ];
    let mut w = BinTableWriter::new(Vec::new(), cols, n, &extra).unwrap();
    let data_offset = w.data_offset();
    assert_eq!(w.row_len(), 4 + 3 + 8 + 2 + 8 + 1 + 8 + 2 + 1);
    assert_eq!(w.column_offsets(), &[0, 4, 7, 15, 17, 25, 26, 34, 36]);
    w.write_rows(&rows[..w.row_len()]).unwrap();
    w.write_rows(&rows[w.row_len()..]).unwrap();
    assert!(
        w.write_rows(&rows[..w.row_len()]).is_err(),
        "more rows than declared"
    );
    (w.finish().unwrap(), data_offset)
}

#[test]
fn headers_parse_back() {
    let (bytes, data_offset) = write_sample();
    assert_eq!(bytes.len() % 2880, 0);
    let layout = match scan_headers(&bytes, "mem").unwrap() {
        HeaderScan::Complete(l) => l,
        other => panic!("{other:?}"),
    };
    assert_eq!(layout.data_offset as usize, data_offset);
    assert_eq!(layout.row_len, 37);
    assert_eq!(layout.nrows, 3);
    assert_eq!(layout.heap_size, 0);
    let c = &layout.columns;
    assert_eq!(c.len(), 9);
    assert_eq!(c[0].name, "ID");
    assert_eq!(c[0].tnull, Some(-1));
    assert_eq!((c[2].tform.repeat, c[2].tform.code), (2, 'E'));
    assert_eq!(c[2].unit.as_deref(), Some("nanomaggy"));
    assert_eq!(c[3].tzero, 32768.0);
    assert_eq!(c[3].data_type, DataType::UInt16);
    assert_eq!((c[7].tscal, c[7].tzero), (0.5, 10.0));
    assert_eq!(c[7].data_type, DataType::Float64);
    assert_eq!(
        c.iter().map(|c| c.offset).collect::<Vec<_>>(),
        [0, 4, 7, 15, 17, 25, 26, 34, 36]
    );

    // A prefix that ends inside the headers asks for more.
    match scan_headers(&bytes[..2880], "mem").unwrap() {
        HeaderScan::NeedMore { at_least } => assert!(at_least > 2880),
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_read_back_through_arrow() {
    let (bytes, _) = write_sample();
    let reader = ReaderBuilder::new()
        .build(Cursor::new(bytes), "mem")
        .unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 3);
    let id = b.column_by_name("id").unwrap().as_primitive::<Int32Type>();
    assert_eq!((id.value(0), id.is_null(1), id.value(2)), (0, true, 200));
    let name = b.column_by_name("name").unwrap().as_string::<i32>();
    assert_eq!(name.value(0), "ab");
    let flux = b.column_by_name("flux").unwrap().as_fixed_size_list();
    let f = flux.value(1);
    let f = f.as_primitive::<Float32Type>();
    assert_eq!(f.value(0), 1.5);
    assert!(f.value(1).is_nan());
    let u16s = b
        .column_by_name("u16")
        .unwrap()
        .as_primitive::<UInt16Type>();
    assert_eq!(u16s.values(), &[7, 8, 9]);
    let ra = b
        .column_by_name("ra")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(ra.value(2), 150.0 + 2e-9);
    let ok = b.column_by_name("ok").unwrap().as_boolean();
    assert!(ok.value(0) && !ok.value(2));
    let big = b.column_by_name("big").unwrap().as_primitive::<Int64Type>();
    assert_eq!(big.value(1), i64::MAX - 1);
    let scaled = b
        .column_by_name("scaled")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(scaled.values(), &[10.0, 12.0, 14.0]);
    let flag = b
        .column_by_name("flag")
        .unwrap()
        .as_primitive::<UInt8Type>();
    assert_eq!(flag.values(), &[200, 201, 202]);
}

#[test]
fn synthetic_sweep_reads_through_arrow() {
    let dir = common::tmpdir("arrow");
    let mut o = lenspipe_synth::SynthOptions::new(&dir);
    o.rows_per_file = 3000;
    o.seed = 12;
    let rep = lenspipe_synth::run(&o).unwrap();
    let path = &rep.files[0].path;
    let raw = common::read_table(path);
    let reader = ReaderBuilder::new()
        .with_batch_size(1000)
        .build(
            std::fs::File::open(path).unwrap(),
            &path.display().to_string(),
        )
        .unwrap();
    let mut row = 0usize;
    for batch in reader {
        let b = batch.unwrap();
        assert_eq!(b.num_columns(), 157);
        let ra = b
            .column_by_name("ra")
            .unwrap()
            .as_primitive::<Float64Type>();
        let mb = b
            .column_by_name("maskbits")
            .unwrap()
            .as_primitive::<Int32Type>();
        let nobs = b
            .column_by_name("nobs_z")
            .unwrap()
            .as_primitive::<Int16Type>();
        let ty = b.column_by_name("type").unwrap().as_string::<i32>();
        let dchisq = b.column_by_name("dchisq").unwrap().as_fixed_size_list();
        assert_eq!(dchisq.value_length(), 5);
        for i in 0..b.num_rows() {
            assert_eq!(ra.value(i), raw.f64("RA", row));
            assert_eq!(mb.value(i), raw.i32("MASKBITS", row));
            assert_eq!(nobs.value(i), raw.i16("NOBS_Z", row));
            assert_eq!(ty.value(i), raw.str("TYPE", row));
            row += 1;
        }
    }
    assert_eq!(row, 3000);
    let _ = std::fs::remove_dir_all(&dir);
}
