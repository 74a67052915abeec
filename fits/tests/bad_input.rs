//! Bad input gives an error that names the file, the HDU, the byte offset and the problem.

mod common;

use std::io::Cursor;
use std::sync::Arc;

use common::{
    card, card_offset, col, data_offset, fits_file, quoted, set_card, table_cards, Col, Row,
};
use lenspipe_fits::{
    scan_headers, scan_headers_sized, ErrorKind, FitsError, HeaderScan, ReaderBuilder, RowDecoder,
};

const FILE: &str = "sweep-000m005-005p000.fits";

fn small_cols() -> Vec<Col> {
    vec![col("RA", "D"), col("FLUX_G", "E"), col("TYPE", "4A")]
}

fn small_rows(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| Row::new().f64(i as f64).f32(1.0).text("PSF", 4).done())
        .collect()
}

/// Reads a whole file with the Reader and returns the first error.
fn read_err(bytes: Vec<u8>) -> FitsError {
    let result = ReaderBuilder::new()
        .build(Cursor::new(bytes), FILE)
        .and_then(|reader| reader.collect::<Result<Vec<_>, _>>());
    match result {
        Ok(batches) => panic!("expected an error, read {} batches", batches.len()),
        Err(e) => e,
    }
}

/// Asserts the error's kind, location and message, and that its text says all of it.
fn assert_err(e: &FitsError, kind: ErrorKind, hdu: usize, offset: u64, problem: &str) {
    let text = e.to_string();
    assert_eq!(e.kind, kind, "{text}");
    assert_eq!((e.hdu, e.offset), (hdu, offset), "{text}");
    assert!(
        text.starts_with(&format!("{FILE}: HDU {hdu}, byte {offset}: ")),
        "{text}"
    );
    assert!(text.contains(problem), "expected {problem:?} in: {text}");
}

#[test]
fn variable_length_column_is_unsupported() {
    let mut cols = small_cols();
    cols.push(col("SPECTRUM", "1PE(5)"));
    let mut cards = table_cards(&cols, 2);
    set_card(&mut cards, "PCOUNT", "40");
    // Two rows, each with a descriptor (5 elements at heap offset 0 or 20), then the heap.
    let mut data: Vec<u8> = (0..2)
        .flat_map(|i| {
            Row::new()
                .f64(1.0)
                .f32(2.0)
                .text("PSF", 4)
                .i32(5)
                .i32(i * 20)
                .done()
        })
        .collect();
    data.extend([0u8; 40]);
    let e = read_err(fits_file(&cards, &data));
    assert_err(
        &e,
        ErrorKind::Unsupported,
        1,
        card_offset(&cards, "TFORM4"),
        "column 'SPECTRUM' has variable-length TFORM '1PE(5)': not supported",
    );

    cards.iter_mut().for_each(|c| {
        if c.starts_with("TFORM4") {
            *c = card("TFORM4", &quoted("1QD(9)"));
        }
    });
    let e = read_err(fits_file(&cards, &data));
    assert!(e.message.contains("variable-length TFORM '1QD(9)'"), "{e}");
}

#[test]
fn first_extension_must_be_a_bintable() {
    let image = [
        card("XTENSION", "'IMAGE   '"),
        card("BITPIX", "16"),
        card("NAXIS", "2"),
        card("NAXIS1", "10"),
        card("NAXIS2", "10"),
        card("PCOUNT", "0"),
        card("GCOUNT", "1"),
    ];
    let e = read_err(fits_file(&image, &[0; 200]));
    assert_err(
        &e,
        ErrorKind::Unsupported,
        1,
        2880,
        "first extension is an image (XTENSION = 'IMAGE')",
    );

    let mut ascii = image.to_vec();
    ascii[0] = card("XTENSION", "'TABLE   '");
    let e = read_err(fits_file(&ascii, &[0; 200]));
    assert_err(
        &e,
        ErrorKind::Unsupported,
        1,
        2880,
        "an ASCII table (XTENSION = 'TABLE')",
    );
}

#[test]
fn primary_only_file_has_no_table() {
    let bytes = common::header_bytes(&common::primary_cards());
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        2880,
        "no extension after the primary HDU",
    );
}

#[test]
fn truncated_in_the_data() {
    let cols = small_cols();
    let cards = table_cards(&cols, 6);
    let mut bytes = fits_file(&cards, &small_rows(6));
    let start = data_offset(&cards);
    bytes.truncate(start + 24 + 10);
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        (start + 34) as u64,
        "header says 6 rows of 16 bytes (96 bytes) but file has only 34 bytes after the header",
    );
}

#[test]
fn truncated_real_file_in_the_data() {
    let mut bytes = common::real_file(common::REAL_FILES[0]);
    let layout = lenspipe_fits::read_layout(&mut Cursor::new(&bytes), FILE).expect("layout");
    let cut = layout.data_offset + 2 * layout.row_len as u64 + 100;
    bytes.truncate(cut as usize);
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        cut,
        "header says 6 rows of 383 bytes (2298 bytes) but file has only 866 bytes after the header",
    );
}

#[test]
fn truncated_in_the_header() {
    let mut bytes = common::real_file(common::REAL_FILES[1]);
    bytes.truncate(2880 + 5000);
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        7880,
        "file ends at byte 7880 inside the header of HDU 1 (no END card)",
    );

    let mut bytes = common::real_file(common::REAL_FILES[1]);
    bytes.truncate(1000);
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        0,
        1000,
        "file ends at byte 1000 inside the primary header",
    );
}

#[test]
fn naxis1_must_match_the_tforms() {
    let cols = small_cols();
    let mut cards = table_cards(&cols, 2);
    set_card(&mut cards, "NAXIS1", "13");
    let e = read_err(fits_file(&cards, &small_rows(2)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "NAXIS1"),
        "NAXIS1 = 13 but the TFORMs add up to 16 bytes",
    );
}

#[test]
fn naxis1_of_a_real_file_must_match_the_tforms() {
    let mut bytes = common::real_file(common::REAL_FILES[0]);
    let at = 39 * 80; // the NAXIS1 card
    assert!(bytes[at..].starts_with(b"NAXIS1  ="));
    bytes[at..at + 80].copy_from_slice(card("NAXIS1", "380").as_bytes());
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        at as u64,
        "NAXIS1 = 380 but the TFORMs add up to 383 bytes",
    );
}

#[test]
fn naxis2_larger_than_the_data() {
    let cols = small_cols();
    let mut cards = table_cards(&cols, 6);
    set_card(&mut cards, "NAXIS2", "1000");
    let bytes = fits_file(&cards, &small_rows(6));
    let size = bytes.len() as u64;
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        size,
        "header says 1000 rows of 16 bytes (16000 bytes) but file has only 2880 bytes after the header",
    );
}

#[test]
fn huge_naxis2_neither_overflows_nor_allocates() {
    let cols = small_cols();
    let mut cards = table_cards(&cols, 6);
    // 16 × 2·10^18 bytes does not fit in u64.
    set_card(&mut cards, "NAXIS2", "2000000000000000000");
    let e = read_err(fits_file(&cards, &small_rows(6)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "NAXIS1"),
        "table size overflows",
    );

    // 16 × 10^17 bytes fits, and is refused for want of bytes, before any allocation.
    set_card(&mut cards, "NAXIS2", "100000000000000000");
    let bytes = fits_file(&cards, &small_rows(6));
    let size = bytes.len() as u64;
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        size,
        "header says 100000000000000000 rows of 16 bytes",
    );

    // An integer too large even for i64.
    set_card(&mut cards, "NAXIS2", "99999999999999999999999");
    let e = read_err(fits_file(&cards, &small_rows(6)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "NAXIS2"),
        "NAXIS2 = 1e23 is not an integer",
    );
}

#[test]
fn garbage_is_not_fits() {
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = read_err(garbage);
    assert_err(&e, ErrorKind::Header, 0, 0, "not a FITS file");

    let e = read_err(b"<html>not found</html>".to_vec());
    assert_err(&e, ErrorKind::Header, 0, 0, "not a FITS file");
}

#[test]
fn empty_file() {
    let e = read_err(Vec::new());
    assert_err(&e, ErrorKind::Truncated, 0, 0, "file is empty");
}

#[test]
fn tfields_must_match_the_columns() {
    let cols = small_cols();
    let mut cards = table_cards(&cols, 2);
    set_card(&mut cards, "TFIELDS", "2");
    let e = read_err(fits_file(&cards, &small_rows(2)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "TTYPE3"),
        "TFIELDS = 2 but TTYPE3 is present",
    );

    set_card(&mut cards, "TFIELDS", "4");
    let e = read_err(fits_file(&cards, &small_rows(2)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        2880,
        "missing required keyword TFORM4",
    );
}

#[test]
fn header_keyword_problems() {
    let cols = small_cols();
    let check = |key: &str, value: &str, problem: &str| {
        let mut cards = table_cards(&cols, 2);
        set_card(&mut cards, key, value);
        let e = read_err(fits_file(&cards, &small_rows(2)));
        assert_err(&e, ErrorKind::Header, 1, card_offset(&cards, key), problem);
    };
    check("GCOUNT", "2", "GCOUNT = 2: must be 1");
    check(
        "NAXIS1",
        "0",
        "NAXIS1 = 0: a row must have at least one byte",
    );
    check("BITPIX", "16", "BITPIX = 16: must be 8");
    check("NAXIS2", "-1", "NAXIS2 = -1: must be at least 0");
    check("NAXIS1", "'wide'", "NAXIS1 = 'wide' is not an integer");
    check(
        "TFORM2",
        "'5Z'",
        "column 2 ('FLUX_G'): TFORM '5Z' has unknown type code 'Z'",
    );
    check("TFORM3", "'4A", "TFORM3: string value has no closing quote");
}

#[test]
fn unknown_column_name() {
    let bytes = fits_file(&table_cards(&small_cols(), 2), &small_rows(2));
    let e = ReaderBuilder::new()
        .with_columns(&["ra", "flux_q"])
        .build(Cursor::new(bytes), FILE)
        .expect_err("unknown column");
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        2880,
        "no column named 'flux_q'; the columns are: ra, flux_g, type",
    );
}

#[test]
fn bad_projection_and_row_range() {
    let bytes = fits_file(&table_cards(&small_cols(), 2), &small_rows(2));
    let e = ReaderBuilder::new()
        .with_projection(vec![0, 3])
        .build(Cursor::new(bytes.clone()), FILE)
        .expect_err("index 3");
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        2880,
        "projection index 3 is out of range: the table has 3 columns",
    );

    let e = ReaderBuilder::new()
        .with_row_range(1..3)
        .build(Cursor::new(bytes), FILE)
        .expect_err("rows past the end");
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        5760,
        "rows 1..3 are not within the table's 2 rows",
    );
}

#[test]
fn short_prefix_needs_more_bytes_or_is_truncated() {
    let bytes = fits_file(&table_cards(&small_cols(), 2), &small_rows(2));
    assert_eq!(
        scan_headers(&bytes[..100], FILE).expect("prefix"),
        HeaderScan::NeedMore { at_least: 2880 }
    );
    assert_eq!(
        scan_headers(&bytes[..2880], FILE).expect("prefix"),
        HeaderScan::NeedMore { at_least: 5760 }
    );
    let e = scan_headers_sized(&bytes[..3000], 3000, FILE).expect_err("truncated");
    assert_err(
        &e,
        ErrorKind::Truncated,
        1,
        3000,
        "file ends at byte 3000 inside the header of HDU 1",
    );
    // Garbage is refused before more of it is asked for.
    let e = scan_headers(b"GIF89a", FILE).expect_err("not FITS");
    assert_err(&e, ErrorKind::Header, 0, 0, "not a FITS file");
}

#[test]
fn decode_needs_whole_rows_within_the_table() {
    let bytes = fits_file(&table_cards(&small_cols(), 4), &small_rows(4));
    let HeaderScan::Complete(layout) = scan_headers(&bytes, FILE).expect("header") else {
        panic!("incomplete header");
    };
    let decoder = RowDecoder::new(Arc::new(layout), None).expect("decoder");
    let rows = &bytes[5760..5760 + 37];
    let e = decoder.decode(rows, 1).expect_err("partial row");
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        5760 + 16 + 32,
        "37 bytes of row data are not a whole number of 16-byte rows (5 bytes left over)",
    );
    let e = decoder
        .decode(&bytes[5760..5760 + 32], 3)
        .expect_err("past the end");
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        5760 + 48,
        "rows 3..5 are past the end of the table (4 rows)",
    );
}

#[test]
fn invalid_text_names_column_and_row() {
    let mut rows = small_rows(3);
    rows[2 * 16 + 12] = 0xff; // TYPE of row 2
    let bytes = fits_file(&table_cards(&small_cols(), 3), &rows);
    let e = read_err(bytes);
    assert_err(
        &e,
        ErrorKind::Data,
        1,
        5760 + 2 * 16 + 12,
        "column 'TYPE', row 2: text is not valid ASCII/UTF-8",
    );
}

#[test]
fn ambiguous_headers() {
    let cols = small_cols();
    let mut cards = table_cards(&cols, 2);
    cards.push(card("NAXIS2", "3"));
    let e = read_err(fits_file(&cards, &small_rows(2)));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "NAXIS2"),
        "keyword NAXIS2 appears more than once",
    );

    let cols = [col("FLUX", "E"), col("flux", "E")];
    let cards = table_cards(&cols, 1);
    let e = read_err(fits_file(&cards, &[0; 8]));
    assert_err(
        &e,
        ErrorKind::Header,
        1,
        card_offset(&cards, "TFORM2"),
        "columns 1 and 2 are both named 'flux' (ignoring case)",
    );
}
