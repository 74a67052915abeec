//! Hand-assembled FITS files for tests: header cards and big-endian rows,
//! written independently of the crate's own writer.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;

pub const BLOCK: usize = 2880;

/// One 80-character header card with a value, e.g. `card("NAXIS1", "383")`.
/// String values must be given quoted (`"'BINTABLE'"`).
pub fn card(key: &str, value: &str) -> String {
    let s = format!("{key:<8}= {value:>20}");
    format!("{s:<80}")
}

/// A quoted FITS string value, `'` doubled and padded to 8 characters.
pub fn quoted(s: &str) -> String {
    format!("'{:<8}'", s.replace('\'', "''"))
}

/// Header bytes: the cards, END, and space padding to a whole block.
pub fn header_bytes(cards: &[String]) -> Vec<u8> {
    let mut out: Vec<u8> = cards.iter().flat_map(|c| c.bytes()).collect();
    out.extend(format!("{:<80}", "END").bytes());
    pad(&mut out, b' ');
    out
}

pub fn pad(bytes: &mut Vec<u8>, with: u8) {
    let padded = bytes.len().div_ceil(BLOCK) * BLOCK;
    bytes.resize(padded, with);
}

/// A primary HDU without data.
pub fn primary_cards() -> Vec<String> {
    vec![
        card("SIMPLE", "T"),
        card("BITPIX", "8"),
        card("NAXIS", "0"),
        card("EXTEND", "T"),
    ]
}

/// A column: name, TFORM and extra keywords (e.g. `("TZERO", "32768")`).
#[derive(Clone)]
pub struct Col {
    pub name: String,
    pub tform: String,
    pub extra: Vec<(String, String)>,
}

pub fn col(name: &str, tform: &str) -> Col {
    Col {
        name: name.into(),
        tform: tform.into(),
        extra: vec![],
    }
}

impl Col {
    /// Adds `KEYn = value` for this column.
    pub fn with(mut self, key: &str, value: &str) -> Col {
        self.extra.push((key.into(), value.into()));
        self
    }
}

/// Bytes per element of a TFORM code.
fn element_size(code: char) -> usize {
    match code {
        'L' | 'B' | 'A' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'P' => 8,
        'Q' => 16,
        other => panic!("test helper: no size for {other}"),
    }
}

/// Bytes a TFORM occupies in a row.
pub fn tform_width(tform: &str) -> usize {
    let digits: String = tform.chars().take_while(char::is_ascii_digit).collect();
    let repeat: usize = if digits.is_empty() {
        1
    } else {
        digits.parse().unwrap()
    };
    let code = tform[digits.len()..].chars().next().unwrap();
    if code == 'X' {
        repeat.div_ceil(8)
    } else {
        repeat * element_size(code)
    }
}

/// The BINTABLE header cards for `cols` and `nrows` rows.
pub fn table_cards(cols: &[Col], nrows: usize) -> Vec<String> {
    let naxis1: usize = cols.iter().map(|c| tform_width(&c.tform)).sum();
    let mut cards = vec![
        card("XTENSION", "'BINTABLE'"),
        card("BITPIX", "8"),
        card("NAXIS", "2"),
        card("NAXIS1", &naxis1.to_string()),
        card("NAXIS2", &nrows.to_string()),
        card("PCOUNT", "0"),
        card("GCOUNT", "1"),
        card("TFIELDS", &cols.len().to_string()),
    ];
    for (i, c) in cols.iter().enumerate() {
        let n = i + 1;
        cards.push(card(&format!("TTYPE{n}"), &quoted(&c.name)));
        cards.push(card(&format!("TFORM{n}"), &quoted(&c.tform)));
        for (k, v) in &c.extra {
            cards.push(card(&format!("{k}{n}"), v));
        }
    }
    cards
}

/// Replaces the value of the card with keyword `key`.
pub fn set_card(cards: &mut [String], key: &str, value: &str) {
    let c = cards
        .iter_mut()
        .find(|c| c[..8].trim_end() == key)
        .unwrap_or_else(|| panic!("no card {key}"));
    *c = card(key, value);
}

/// A whole file: primary HDU, the table header, the rows, padding.
pub fn fits_file(table_cards: &[String], rows: &[u8]) -> Vec<u8> {
    let mut out = header_bytes(&primary_cards());
    out.extend(header_bytes(table_cards));
    out.extend_from_slice(rows);
    pad(&mut out, 0);
    out
}

/// A file with the given columns and rows (each row's bytes concatenated).
pub fn table_file(cols: &[Col], rows: &[Vec<u8>]) -> Vec<u8> {
    fits_file(&table_cards(cols, rows.len()), &rows.concat())
}

/// Offset of the table's data in files made by [`fits_file`] with a one-block table header.
pub fn data_offset(table_cards: &[String]) -> usize {
    BLOCK + header_bytes(table_cards).len()
}

/// Offset of the card `key` in the table header of a [`fits_file`].
pub fn card_offset(table_cards: &[String], key: &str) -> u64 {
    let i = table_cards
        .iter()
        .position(|c| c[..8].trim_end() == key)
        .unwrap_or_else(|| panic!("no card {key}"));
    (BLOCK + i * 80) as u64
}

/// A row from big-endian fields.
#[derive(Default)]
pub struct Row(pub Vec<u8>);

impl Row {
    pub fn new() -> Row {
        Row(Vec::new())
    }
    pub fn bytes(mut self, b: &[u8]) -> Row {
        self.0.extend_from_slice(b);
        self
    }
    pub fn u8(self, v: u8) -> Row {
        self.bytes(&[v])
    }
    pub fn i16(self, v: i16) -> Row {
        self.bytes(&v.to_be_bytes())
    }
    pub fn i32(self, v: i32) -> Row {
        self.bytes(&v.to_be_bytes())
    }
    pub fn i64(self, v: i64) -> Row {
        self.bytes(&v.to_be_bytes())
    }
    pub fn f32(self, v: f32) -> Row {
        self.bytes(&v.to_be_bytes())
    }
    pub fn f64(self, v: f64) -> Row {
        self.bytes(&v.to_be_bytes())
    }
    /// A string padded with spaces to `width`.
    pub fn text(self, s: &str, width: usize) -> Row {
        assert!(s.len() <= width);
        let mut b = s.as_bytes().to_vec();
        b.resize(width, b' ');
        self.bytes(&b)
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// The directory of the real legacy-survey files shipped in the
/// repository (`data/real-sweeps`).
pub fn real_sweeps_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/real-sweeps");
    assert!(
        dir.is_dir(),
        "real legacy-survey FITS files not found in {}",
        dir.display()
    );
    dir
}

/// Names of the real files the tests read.
pub const REAL_FILES: [&str; 2] = ["sweep-310m005-320p000.fits", "tractor-3301m002.fits"];

/// Bytes of a real file.
pub fn real_file(name: &str) -> Vec<u8> {
    let path = real_sweeps_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A table exercising every supported column type and convention: unsigned
/// and signed-byte offsets, TNULL (also on arrays and scaled columns),
/// scaling, NaN/infinities/subnormals, logical nulls, bits, padded strings,
/// arrays and a repeat-0 column.
pub fn synthetic_columns() -> Vec<Col> {
    vec![
        col("U16", "I")
            .with("TZERO", "32768")
            .with("TUNIT", "'count'"),
        col("U32", "J").with("TZERO", "2147483648"),
        col("I64", "K"),
        col("U64", "K").with("TZERO", "9223372036854775808"),
        col("U8", "B"),
        col("I8", "B").with("TZERO", "-128").with("TSCAL", "1"),
        col("NULLJ", "J").with("TNULL", "-99"),
        col("SCALI", "I")
            .with("TSCAL", "2.5")
            .with("TZERO", "10")
            .with("TNULL", "-32768"),
        col("SCALE", "E")
            .with("TSCAL", "0.1")
            .with("TZERO", "1.0D0"),
        col("SCALD", "D").with("TZERO", "0.5"),
        col("F32", "E"),
        col("F64", "D"),
        col("FLAG", "L"),
        col("FLAGS", "3L"),
        col("BIT1", "1X"),
        col("BITS", "11X"),
        col("TYPE", "4A"),
        col("NAME", "3A"),
        col("DCHISQ", "5E"),
        col("NOBS", "2J").with("TNULL", "-1"),
        col("EMPTY", "0E"),
        // Not TZERO: astropy 8.0 fails on K columns with a TZERO other than 2^63.
        col("SCALK", "K").with("TSCAL", "2"),
        col("UNULL", "I").with("TZERO", "32768").with("TNULL", "5"),
        col("BNULL", "B").with("TNULL", "255"),
    ]
}

/// Five rows for [`synthetic_columns`].
pub fn synthetic_rows() -> Vec<Vec<u8>> {
    let u16_raw = [i16::MIN, -1, 0, i16::MAX, 5];
    let u32_raw = [i32::MIN, -1, 0, i32::MAX, 7];
    let i64s = [i64::MIN, -1, 0, i64::MAX, 42];
    let u64_raw = [i64::MIN, -1, 0, i64::MAX, 1];
    let bytes = [0u8, 1, 127, 128, 255];
    let nullj = [1, -99, 3, -99, i32::MAX];
    let scali = [1i16, -3, i16::MIN, 7, i16::MAX];
    let scale = [1.0f32, 2.0, f32::NAN, -0.5, 3.25];
    let scald = [1.0f64, f64::NAN, -1e300, 0.0, 2.5];
    let f32s = [1.5f32, f32::NAN, f32::INFINITY, -0.0, f32::from_bits(1)];
    let f64s = [f64::NAN, -2.5, 1e-310, f64::MAX, f64::NEG_INFINITY];
    let flag = [b'T', b'F', 0, b'T', b'F'];
    let flags: [&[u8; 3]; 5] = [b"TF\0", b"FFF", b"\0\0T", b"TTT", b"F\0F"];
    let bit1 = [0x80u8, 0x00, 0x80, 0x7f, 0xff];
    let bits: [[u8; 2]; 5] = [
        [0xff, 0xe0],
        [0x00, 0x20],
        [0x80, 0x00],
        [0xaa, 0x55],
        [0, 0],
    ];
    let types: [&[u8; 4]; 5] = [b"PSF ", b"REX\0", b"DEV ", b"    ", b"A\0B "];
    let names: [&[u8; 3]; 5] = [b"abc", b"x\0\0", b"   ", b"a b", b"Q\0 "];
    let nobs = [[1, -1], [-1, -1], [0, 5], [2, 3], [-1, 7]];
    let scalk = [0i64, -5, 1 << 53, -1, 100];
    let unull = [5i16, 6, i16::MIN, 0, 5];
    let bnull = [255u8, 0, 1, 255, 2];
    (0..5)
        .map(|i| {
            let mut r = Row::new()
                .i16(u16_raw[i])
                .i32(u32_raw[i])
                .i64(i64s[i])
                .i64(u64_raw[i])
                .u8(bytes[i])
                .u8(bytes[i])
                .i32(nullj[i])
                .i16(scali[i])
                .f32(scale[i])
                .f64(scald[i])
                .f32(f32s[i])
                .f64(f64s[i])
                .u8(flag[i])
                .bytes(flags[i])
                .u8(bit1[i])
                .bytes(&bits[i])
                .bytes(types[i])
                .bytes(names[i]);
            let x = i as f32;
            for v in [x, x + 0.5, f32::NAN, -1.0, 1e30] {
                r = r.f32(v);
            }
            r.i32(nobs[i][0])
                .i32(nobs[i][1])
                .i64(scalk[i])
                .i16(unull[i])
                .u8(bnull[i])
                .done()
        })
        .collect()
}

/// The synthetic table as a file.
pub fn synthetic_file() -> Vec<u8> {
    table_file(&synthetic_columns(), &synthetic_rows())
}
