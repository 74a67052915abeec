//! A minimal FITS binary-table (BINTABLE) writer.
//!
//! [`BinTableWriter`] writes a file with an empty primary HDU followed by one
//! BINTABLE extension whose row count is declared up front. Rows are supplied as
//! whole rows of big-endian bytes laid out in column order ([`BinTableWriter::column_offsets`]
//! gives the byte offset of each column inside a row). Variable-length array
//! columns (`P`/`Q`) are not supported (`PCOUNT` is always 0).
//!
//! Header cards follow the FITS 4.0 fixed format: keyword left-justified in
//! columns 1-8, `"= "` in columns 9-10, character strings quoted starting in
//! column 11 and padded to at least 8 characters inside the quotes, logical and
//! numeric values right-justified to column 30.

use std::io::{self, Write};

use crate::column::TForm;
use crate::error::{ErrorKind, FitsError};

/// FITS block size in bytes.
pub const BLOCK: usize = 2880;
/// FITS header card length in bytes.
pub const CARD: usize = 80;

/// One BINTABLE column: `TTYPEn`, `TFORMn` and the optional `TUNITn`, `TZEROn`,
/// `TSCALn`, `TNULLn` keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// Column name (`TTYPEn`), written as given (sweep files use upper case).
    pub name: String,
    /// Data format (`TFORMn`), e.g. `"E"`, `"5E"`, `"3A"`, `"J"`.
    pub tform: String,
    /// Physical unit (`TUNITn`).
    pub unit: Option<String>,
    /// Zero point (`TZEROn`).
    pub tzero: Option<f64>,
    /// Scale factor (`TSCALn`).
    pub tscal: Option<f64>,
    /// Undefined value of an integer column (`TNULLn`).
    pub tnull: Option<i64>,
}

impl ColumnSpec {
    /// A column with a name and a TFORM and no optional keywords.
    pub fn new(name: impl Into<String>, tform: impl Into<String>) -> Self {
        ColumnSpec {
            name: name.into(),
            tform: tform.into(),
            unit: None,
            tzero: None,
            tscal: None,
            tnull: None,
        }
    }

    /// Sets `TUNITn`.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Sets `TZEROn`.
    pub fn tzero(mut self, tzero: f64) -> Self {
        self.tzero = Some(tzero);
        self
    }

    /// Sets `TSCALn`.
    pub fn tscal(mut self, tscal: f64) -> Self {
        self.tscal = Some(tscal);
        self
    }

    /// Sets `TNULLn` (integer columns only).
    pub fn tnull(mut self, tnull: i64) -> Self {
        self.tnull = Some(tnull);
        self
    }

    /// Width of the column in bytes, parsed from `tform`.
    pub fn width(&self) -> io::Result<usize> {
        Ok(self.parsed_tform()?.width())
    }

    /// `tform` parsed by the reader's parser; variable-length arrays (`P`/`Q`)
    /// are refused because the writer has no heap (`PCOUNT` is always 0).
    pub fn parsed_tform(&self) -> io::Result<TForm> {
        let tform = TForm::parse(&self.tform).map_err(invalid_tform)?;
        if matches!(tform.code, 'P' | 'Q') {
            return Err(invalid_tform(FitsError::new(
                ErrorKind::Unsupported,
                "",
                0,
                0,
                format!(
                    "TFORM '{}': variable-length arrays are not supported by the writer",
                    self.tform.trim()
                ),
            )));
        }
        Ok(tform)
    }
}

/// TFORM errors keep their [`FitsError`] inside the `io::Error` the writer returns.
fn invalid_tform(e: FitsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Quotes a character-string value for a header card: embedded `'` doubled,
/// padded with spaces to at least 8 characters inside the quotes.
pub fn quote_string(s: &str) -> String {
    let escaped = s.replace('\'', "''");
    format!("'{escaped:<8}'")
}

/// Formats a logical value (`T`/`F`).
pub fn format_logical(v: bool) -> String {
    if v { "T" } else { "F" }.to_string()
}

/// Formats a real value in a form FITS readers accept: integral values as
/// exact integers (`32768`, `9223372036854775808`, as CFITSIO writes them),
/// others as the shortest round-trip decimal (`0.25`, `-2.5E-7`).
/// Returns an error for NaN and infinities, which a header cannot hold.
pub fn format_real(v: f64) -> io::Result<String> {
    if !v.is_finite() {
        return Err(invalid(format!("header value {v} is not finite")));
    }
    if v == v.trunc() && v.abs() < 1e19 {
        // Exact: every integral f64 below 1e19 fits in an i128.
        return Ok(format!("{}", v as i128));
    }
    let a = v.abs();
    if (1e-4..1e15).contains(&a) {
        // Shortest round-trip decimal representation.
        return Ok(format!("{v}"));
    }
    // Shortest round-trip mantissa with an explicit decimal point and `E` exponent.
    let s = format!("{v:E}");
    let (mantissa, exp) = s.split_once('E').expect("UpperExp always has E");
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    Ok(format!("{mantissa}E{exp}"))
}

/// Builds one 80-byte card. `value` is an already-formatted value: a quoted
/// string starts in column 11; anything else is right-justified to column 30.
/// `COMMENT`, `HISTORY` and blank keywords make commentary cards (text from column 9).
fn card(keyword: &str, value: &str) -> io::Result<[u8; CARD]> {
    if keyword.len() > 8
        || !keyword
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "header keyword {keyword:?}: must be at most 8 characters of A-Z, 0-9, '-', '_'"
        )));
    }
    if keyword == "END" {
        return Err(invalid(
            "header keyword END is written by the writer".into(),
        ));
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(invalid(format!(
            "header card {keyword}: value {value:?} has characters outside printable ASCII"
        )));
    }
    let text = if matches!(keyword, "COMMENT" | "HISTORY" | "") {
        format!("{keyword:<8}{value}")
    } else if value.starts_with('\'') {
        format!("{keyword:<8}= {value}")
    } else {
        format!("{keyword:<8}= {value:>20}")
    };
    if text.len() > CARD {
        return Err(invalid(format!(
            "header card {keyword}: longer than 80 characters ({text:?})"
        )));
    }
    let mut out = [b' '; CARD];
    out[..text.len()].copy_from_slice(text.as_bytes());
    Ok(out)
}

/// Header under construction: a sequence of cards.
struct Header(Vec<u8>);

impl Header {
    fn new() -> Self {
        Header(Vec::with_capacity(4 * BLOCK))
    }
    fn raw(&mut self, keyword: &str, value: &str) -> io::Result<()> {
        self.0.extend_from_slice(&card(keyword, value)?);
        Ok(())
    }
    fn str(&mut self, keyword: &str, value: &str) -> io::Result<()> {
        self.raw(keyword, &quote_string(value))
    }
    fn int(&mut self, keyword: &str, value: impl std::fmt::Display) -> io::Result<()> {
        self.raw(keyword, &value.to_string())
    }
    fn logical(&mut self, keyword: &str, value: bool) -> io::Result<()> {
        self.raw(keyword, &format_logical(value))
    }
    fn real(&mut self, keyword: &str, value: f64) -> io::Result<()> {
        self.raw(keyword, &format_real(value)?)
    }
    /// Appends `END` and pads with spaces to a whole number of blocks.
    fn finish(mut self) -> Vec<u8> {
        let mut end = [b' '; CARD];
        end[..3].copy_from_slice(b"END");
        self.0.extend_from_slice(&end);
        let padded = self.0.len().div_ceil(BLOCK) * BLOCK;
        self.0.resize(padded, b' ');
        self.0
    }
}

/// Streams a FITS file holding one BINTABLE with a row count fixed up front.
///
/// ```
/// use lenspipe_fits::{BinTableWriter, ColumnSpec};
/// let cols = vec![ColumnSpec::new("ID", "J"), ColumnSpec::new("FLUX", "E").unit("nanomaggy")];
/// let mut w = BinTableWriter::new(Vec::new(), cols, 1, &[]).unwrap();
/// let mut row = Vec::new();
/// row.extend_from_slice(&7i32.to_be_bytes());
/// row.extend_from_slice(&1.5f32.to_be_bytes());
/// w.write_rows(&row).unwrap();
/// let bytes = w.finish().unwrap();
/// assert_eq!(bytes.len(), 3 * 2880);
/// ```
#[derive(Debug)]
pub struct BinTableWriter<W: Write> {
    w: W,
    columns: Vec<ColumnSpec>,
    offsets: Vec<usize>,
    row_len: usize,
    nrows: u64,
    written: u64,
    header_len: usize,
}

impl<W: Write> BinTableWriter<W> {
    /// Validates the columns, then writes the primary HDU and the BINTABLE header.
    ///
    /// `extra_cards` are `(keyword, value)` pairs appended after the column
    /// keywords; the value must already be formatted (e.g. `"'DR10    '"` via
    /// [`quote_string`], `"10000"`, `"T"`). Keywords `COMMENT`/`HISTORY` make
    /// commentary cards with the value as free text.
    pub fn new(
        mut w: W,
        columns: Vec<ColumnSpec>,
        nrows: u64,
        extra_cards: &[(String, String)],
    ) -> io::Result<Self> {
        let mut offsets = Vec::with_capacity(columns.len());
        let mut row_len = 0usize;
        for (i, c) in columns.iter().enumerate() {
            let tform = c.parsed_tform()?;
            if c.tnull.is_some() && !matches!(tform.code, 'B' | 'I' | 'J' | 'K') {
                return Err(invalid(format!(
                    "column {} ({}): TNULL is only allowed on integer columns, TFORM is {:?}",
                    i + 1,
                    c.name,
                    c.tform
                )));
            }
            offsets.push(row_len);
            row_len = row_len
                .checked_add(tform.width())
                .ok_or_else(|| invalid("row length overflows".into()))?;
        }
        (row_len as u64)
            .checked_mul(nrows)
            .ok_or_else(|| invalid("table size overflows".into()))?;
        if columns.len() > 999 {
            return Err(invalid(format!(
                "{} columns: FITS allows at most 999",
                columns.len()
            )));
        }

        let mut primary = Header::new();
        primary.logical("SIMPLE", true)?;
        primary.int("BITPIX", 8)?;
        primary.int("NAXIS", 0)?;
        primary.logical("EXTEND", true)?;
        let primary = primary.finish();

        let mut h = Header::new();
        h.str("XTENSION", "BINTABLE")?;
        h.int("BITPIX", 8)?;
        h.int("NAXIS", 2)?;
        h.int("NAXIS1", row_len)?;
        h.int("NAXIS2", nrows)?;
        h.int("PCOUNT", 0)?;
        h.int("GCOUNT", 1)?;
        h.int("TFIELDS", columns.len())?;
        for (i, c) in columns.iter().enumerate() {
            let n = i + 1;
            h.str(&format!("TTYPE{n}"), &c.name)?;
            // The reader accepts lower-case codes; files get the standard upper case.
            h.str(&format!("TFORM{n}"), &c.tform.trim().to_ascii_uppercase())?;
            if let Some(u) = &c.unit {
                h.str(&format!("TUNIT{n}"), u)?;
            }
            if let Some(v) = c.tzero {
                h.real(&format!("TZERO{n}"), v)?;
            }
            if let Some(v) = c.tscal {
                h.real(&format!("TSCAL{n}"), v)?;
            }
            if let Some(v) = c.tnull {
                h.int(&format!("TNULL{n}"), v)?;
            }
        }
        for (k, v) in extra_cards {
            h.raw(k, v)?;
        }
        let table = h.finish();

        w.write_all(&primary)?;
        w.write_all(&table)?;
        Ok(BinTableWriter {
            w,
            columns,
            offsets,
            row_len,
            nrows,
            written: 0,
            header_len: primary.len() + table.len(),
        })
    }

    /// Bytes per row (`NAXIS1`).
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Byte offset of each column inside a row, in column order.
    pub fn column_offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// The columns as declared.
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// Declared row count (`NAXIS2`).
    pub fn nrows(&self) -> u64 {
        self.nrows
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> u64 {
        self.written
    }

    /// Byte offset of the table data from the start of the file (both headers).
    pub fn data_offset(&self) -> usize {
        self.header_len
    }

    /// Writes whole rows (big-endian field values in column order).
    /// Fails if `rows.len()` is not a multiple of [`row_len`](Self::row_len)
    /// or if this would exceed the declared row count; nothing is written then.
    pub fn write_rows(&mut self, rows: &[u8]) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.row_len == 0 || !rows.len().is_multiple_of(self.row_len) {
            return Err(invalid(format!(
                "write_rows: {} bytes is not a whole number of {}-byte rows",
                rows.len(),
                self.row_len
            )));
        }
        let n = (rows.len() / self.row_len) as u64;
        if self.written + n > self.nrows {
            return Err(invalid(format!(
                "write_rows: {} rows would exceed the declared NAXIS2 = {} ({} already written)",
                n, self.nrows, self.written
            )));
        }
        self.w.write_all(rows)?;
        self.written += n;
        Ok(())
    }

    /// Pads the data to a whole block with zero bytes, flushes, and returns the sink.
    /// Fails if fewer rows than declared were written.
    pub fn finish(mut self) -> io::Result<W> {
        if self.written != self.nrows {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "finish: {} rows written but NAXIS2 declares {}",
                    self.written, self.nrows
                ),
            ));
        }
        let data_len = self.row_len as u64 * self.nrows;
        let pad = ((BLOCK as u64 - data_len % BLOCK as u64) % BLOCK as u64) as usize;
        if pad > 0 {
            self.w.write_all(&[0u8; BLOCK][..pad])?;
        }
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(bytes: &[u8]) -> Vec<String> {
        bytes
            .chunks(CARD)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn card_layout() {
        let c = card("NAXIS1", "42").unwrap();
        let s = std::str::from_utf8(&c).unwrap();
        assert_eq!(&s[..10], "NAXIS1  = ");
        assert_eq!(&s[28..30], "42");
        assert_eq!(s.len(), 80);
        let c = card("TTYPE1", &quote_string("RA")).unwrap();
        assert_eq!(
            &std::str::from_utf8(&c).unwrap()[..20],
            "TTYPE1  = 'RA      '"
        );
        let c = card("TTYPE3", &quote_string("BRICKNAME")).unwrap();
        assert_eq!(
            &std::str::from_utf8(&c).unwrap()[..21],
            "TTYPE3  = 'BRICKNAME'"
        );
        assert_eq!(quote_string("O'HARA"), "'O''HARA '");
        assert!(card("lower", "1").is_err());
        assert!(card("TOOLONGKEY", "1").is_err());
        assert!(card("KEY", &"x".repeat(80)).is_err());
        let c = card("COMMENT", "free text").unwrap();
        assert_eq!(&std::str::from_utf8(&c).unwrap()[..17], "COMMENT free text");
    }

    #[test]
    fn reals() {
        assert_eq!(format_real(32768.0).unwrap(), "32768");
        assert_eq!(format_real(-1.0).unwrap(), "-1");
        assert_eq!(format_real(-0.0).unwrap(), "0");
        assert_eq!(
            format_real(9223372036854775808.0).unwrap(),
            "9223372036854775808"
        );
        assert_eq!(format_real(0.25).unwrap(), "0.25");
        assert_eq!(format_real(1e-7).unwrap(), "1.0E-7");
        assert_eq!(format_real(-2.5e-7).unwrap(), "-2.5E-7");
        assert_eq!(format_real(1.5e20).unwrap(), "1.5E20");
        assert!(format_real(f64::NAN).is_err());
        for v in [
            0.1,
            1.0 / 3.0,
            6.02214076e23,
            1e-300,
            12345.678,
            1e19,
            -9.5e18,
        ] {
            assert_eq!(format_real(v).unwrap().parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn widths() {
        let w = |t: &str| ColumnSpec::new("X", t).width().unwrap();
        assert_eq!(w("E"), 4);
        assert_eq!(w("5E"), 20);
        assert_eq!(w("8A"), 8);
        assert_eq!(w("J"), 4);
        assert_eq!(w("K"), 8);
        assert_eq!(w("L"), 1);
        assert_eq!(w("B"), 1);
        assert_eq!(w("I"), 2);
        assert_eq!(w("D"), 8);
        assert_eq!(w("0E"), 0);
        assert_eq!(w("13X"), 2);
        assert_eq!(w("2C"), 16);
        assert_eq!(w("M"), 16);
        assert_eq!(w("20A10"), 20);
        assert!(ColumnSpec::new("X", "1PE(10)").width().is_err());
        assert!(ColumnSpec::new("X", "Z").width().is_err());
        assert!(ColumnSpec::new("X", "").width().is_err());
        assert!(ColumnSpec::new("X", "E3").width().is_err());
        // The reader's parser: lower case accepted, errors are `FitsError`s.
        assert_eq!(w(" 5e "), 20);
        let kind = |t: &str| {
            let e = ColumnSpec::new("X", t).width().unwrap_err();
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<FitsError>());
            inner.map(|f| f.kind)
        };
        assert_eq!(kind("1PE(10)"), Some(ErrorKind::Unsupported));
        assert_eq!(kind("Z"), Some(ErrorKind::Header));
        assert_eq!(kind("99999999999E"), Some(ErrorKind::Header));
    }

    #[test]
    fn layout_and_padding() {
        let cols = vec![
            ColumnSpec::new("ID", "J").tnull(-1),
            ColumnSpec::new("NAME", "3A"),
            ColumnSpec::new("FLUX", "2E").unit("nanomaggy"),
            ColumnSpec::new("U16", "I").tzero(32768.0).tscal(1.0),
        ];
        let extra = vec![("RELEASE".to_string(), "10000".to_string())];
        let mut w = BinTableWriter::new(Vec::new(), cols, 2, &extra).unwrap();
        assert_eq!(w.row_len(), 4 + 3 + 8 + 2);
        assert_eq!(w.column_offsets(), &[0, 4, 7, 15]);
        assert_eq!(w.data_offset(), 2 * BLOCK);
        assert!(w.write_rows(&[0u8; 16]).is_err());
        w.write_rows(&[1u8; 17]).unwrap();
        let err = w.write_rows(&[2u8; 34]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        w.write_rows(&[2u8; 17]).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(&out[2 * BLOCK..2 * BLOCK + 17], &[1u8; 17]);
        assert!(out[2 * BLOCK + 34..].iter().all(|&b| b == 0));

        let primary = cards(&out[..BLOCK]);
        assert_eq!(
            primary[0],
            format!("{:<80}", "SIMPLE  =                    T")
        );
        assert_eq!(primary[1].trim_end(), "BITPIX  =                    8");
        assert_eq!(primary[2].trim_end(), "NAXIS   =                    0");
        assert_eq!(primary[3].trim_end(), "EXTEND  =                    T");
        assert_eq!(primary[4].trim_end(), "END");
        assert!(primary[5..].iter().all(|c| c.trim().is_empty()));

        let table: Vec<String> = cards(&out[BLOCK..2 * BLOCK])
            .into_iter()
            .map(|c| c.trim_end().to_string())
            .collect();
        let expect = [
            "XTENSION= 'BINTABLE'",
            "BITPIX  =                    8",
            "NAXIS   =                    2",
            "NAXIS1  =                   17",
            "NAXIS2  =                    2",
            "PCOUNT  =                    0",
            "GCOUNT  =                    1",
            "TFIELDS =                    4",
            "TTYPE1  = 'ID      '",
            "TFORM1  = 'J       '",
            "TNULL1  =                   -1",
            "TTYPE2  = 'NAME    '",
            "TFORM2  = '3A      '",
            "TTYPE3  = 'FLUX    '",
            "TFORM3  = '2E      '",
            "TUNIT3  = 'nanomaggy'",
            "TTYPE4  = 'U16     '",
            "TFORM4  = 'I       '",
            "TZERO4  =                32768",
            "TSCAL4  =                    1",
            "RELEASE =                10000",
            "END",
        ];
        assert_eq!(&table[..expect.len()], &expect);
        assert!(table[expect.len()..].iter().all(|c| c.is_empty()));
    }

    #[test]
    fn short_and_empty_tables() {
        let w = BinTableWriter::new(Vec::new(), vec![ColumnSpec::new("A", "E")], 2, &[]).unwrap();
        assert_eq!(w.finish().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let w = BinTableWriter::new(Vec::new(), vec![ColumnSpec::new("A", "E")], 0, &[]).unwrap();
        assert_eq!(w.finish().unwrap().len(), 2 * BLOCK);
        assert!(
            BinTableWriter::new(Vec::new(), vec![ColumnSpec::new("A", "E").tnull(0)], 0, &[])
                .is_err()
        );
    }

    #[test]
    fn long_headers_span_blocks() {
        let cols: Vec<ColumnSpec> = (0..200)
            .map(|i| ColumnSpec::new(format!("C{i}"), "E").unit("deg"))
            .collect();
        let w = BinTableWriter::new(Vec::new(), cols, 0, &[]).unwrap();
        // 8 mandatory + 600 column cards + END = 609 cards = 48720 bytes -> 17 blocks.
        assert_eq!(w.data_offset(), BLOCK + 17 * BLOCK);
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 18 * BLOCK);
        let c = cards(&out[BLOCK..]);
        assert!(c.iter().any(|c| c.starts_with("TTYPE200= 'C199    '")));
    }
}
