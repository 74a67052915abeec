//! FITS header parsing: cards, the primary HDU and the first extension's
//! binary-table layout.
//!
//! Works on a byte prefix of the file so that callers choose the I/O: when the
//! prefix is too short, [`scan_headers`] says how many bytes it needs.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::column::{ColumnDesc, TForm, ValueKind};
use crate::error::{FitsError, Location, Result};

/// FITS headers and data come in blocks of this many bytes.
pub const BLOCK_LEN: usize = 2880;
const CARD_LEN: usize = 80;
/// A header this long without an END card is taken for garbage rather than read on.
const MAX_HEADER_LEN: u64 = 16 << 20;
/// The most columns a binary table may have (`TFIELDS` ≤ 999).
const MAX_FIELDS: i64 = 999;

/// The outcome of [`scan_headers`].
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderScan {
    /// Both headers were parsed.
    Complete(BinTableLayout),
    /// The prefix ends too early: call again with at least this many bytes.
    NeedMore {
        /// The minimal prefix length, in bytes from the start of the file.
        at_least: usize,
    },
}

/// Where a binary table's rows are and how to decode them.
#[derive(Debug, Clone, PartialEq)]
pub struct BinTableLayout {
    /// File name or URL, for error messages.
    pub source: String,
    /// Number of the table's HDU (1: the first extension).
    pub hdu: usize,
    /// Byte offset of the table's header (its `XTENSION` card).
    pub header_offset: u64,
    /// Byte offset of the first row.
    pub data_offset: u64,
    /// Bytes per row (`NAXIS1`).
    pub row_len: usize,
    /// Number of rows (`NAXIS2`).
    pub nrows: u64,
    /// Bytes of the heap after the rows (`PCOUNT`).
    pub heap_size: u64,
    /// The columns in row order. Columns with repeat count 0 hold no data and
    /// are left out, so `columns` may be shorter than `TFIELDS`.
    pub columns: Vec<ColumnDesc>,
}

impl BinTableLayout {
    /// The Arrow schema of all columns: lower-cased names, all fields nullable.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.arrow_name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// Bytes of row data: `row_len × nrows` (saturating).
    pub fn data_len(&self) -> u64 {
        (self.row_len as u64).saturating_mul(self.nrows)
    }

    /// Checks that a file of `file_size` bytes holds all the rows and the heap.
    pub fn check_file_size(&self, file_size: u64) -> Result<()> {
        let needed = self
            .data_len()
            .saturating_add(self.heap_size)
            .saturating_add(self.data_offset);
        if file_size >= needed {
            return Ok(());
        }
        let heap = match self.heap_size {
            0 => String::new(),
            h => format!(" plus a heap of {h} bytes"),
        };
        Err(self.location().truncated(
            file_size,
            format!(
                "header says {} rows of {} bytes ({} bytes){heap} but file has only {} bytes after the header",
                self.nrows,
                self.row_len,
                self.data_len(),
                file_size.saturating_sub(self.data_offset),
            ),
        ))
    }

    /// Index in `columns` of the column with this Arrow (lower-cased) name.
    pub fn column_index(&self, arrow_name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.arrow_name == arrow_name)
    }

    /// The file byte range holding `rows` (which must lie within the table).
    pub fn row_byte_range(&self, rows: Range<u64>) -> Result<Range<u64>> {
        let bad = || {
            self.location().data(
                self.data_offset,
                format!(
                    "rows {}..{} are not within the table's {} rows",
                    rows.start, rows.end, self.nrows
                ),
            )
        };
        if rows.start > rows.end || rows.end > self.nrows {
            return Err(bad());
        }
        let at = |row: u64| {
            row.checked_mul(self.row_len as u64)
                .and_then(|b| b.checked_add(self.data_offset))
        };
        match (at(rows.start), at(rows.end)) {
            (Some(start), Some(end)) => Ok(start..end),
            _ => Err(bad()),
        }
    }

    pub(crate) fn location(&self) -> Location<'_> {
        Location {
            source: &self.source,
            hdu: self.hdu,
        }
    }
}

/// Parses the primary header and the first extension's header, which must be
/// a binary table, from the first bytes of a file.
///
/// The primary HDU's data is skipped; note that its bytes still have to be in
/// `prefix` (catalogs have none). Returns [`HeaderScan::NeedMore`] when
/// `prefix` is too short to finish; see [`scan_headers_sized`] to have a file
/// that is too short reported as truncated instead.
pub fn scan_headers(prefix: &[u8], source: &str) -> Result<HeaderScan> {
    Scanner {
        bytes: prefix,
        file_size: None,
        source,
    }
    .run()
}

/// Like [`scan_headers`] for a file known to be `file_size` bytes long:
/// asks for more bytes only if the file has them, and otherwise reports
/// precisely where the file is truncated.
pub fn scan_headers_sized(prefix: &[u8], file_size: u64, source: &str) -> Result<HeaderScan> {
    Scanner {
        bytes: prefix,
        file_size: Some(file_size),
        source,
    }
    .run()
}

/// Why scanning stopped early.
enum Stop {
    NeedMore(usize),
    Fail(FitsError),
}

impl From<FitsError> for Stop {
    fn from(e: FitsError) -> Self {
        Stop::Fail(e)
    }
}

type Scan<T> = std::result::Result<T, Stop>;

struct Scanner<'a> {
    bytes: &'a [u8],
    file_size: Option<u64>,
    source: &'a str,
}

impl<'a> Scanner<'a> {
    fn run(&self) -> Result<HeaderScan> {
        match self.scan() {
            Ok(layout) => Ok(HeaderScan::Complete(layout)),
            Err(Stop::NeedMore(at_least)) => Ok(HeaderScan::NeedMore { at_least }),
            Err(Stop::Fail(e)) => Err(e),
        }
    }

    fn at(&self, hdu: usize) -> Location<'a> {
        Location {
            source: self.source,
            hdu,
        }
    }

    fn scan(&self) -> Scan<BinTableLayout> {
        let primary = self.at(0);
        if self.file_size == Some(0) {
            return Err(primary.truncated(0, "file is empty").into());
        }
        // Reject non-FITS bytes before asking for more of them.
        const SIGNATURE: &[u8] = b"SIMPLE  =";
        let n = self.bytes.len().min(SIGNATURE.len());
        if self.bytes.get(..n) != SIGNATURE.get(..n) {
            return Err(primary
                .header(0, "not a FITS file: it does not start with 'SIMPLE  ='")
                .into());
        }
        let header = self.read_header(0, 0)?;
        let data_len = primary_data_len(&header)?;
        let data_end = header
            .data_offset
            .checked_add(data_len)
            .ok_or_else(|| primary.header(0, "primary data size overflows"))?;
        let ext_offset = pad_to_block(data_end);
        match self.file_size {
            Some(size) if size < data_end => {
                return Err(primary
                    .truncated(
                        size,
                        format!(
                            "file ends inside the primary HDU's data ({data_len} bytes from byte {})",
                            header.data_offset
                        ),
                    )
                    .into())
            }
            Some(size) if size <= ext_offset => {
                return Err(self
                    .at(1)
                    .truncated(
                        size,
                        format!("file has no extension after the primary HDU (expected a BINTABLE at byte {ext_offset})"),
                    )
                    .into())
            }
            _ => {}
        }
        let ext = self.read_header(ext_offset, 1)?;
        Ok(bintable_layout(&ext, self.source)?)
    }

    /// Ok if bytes up to `end` are in the prefix; otherwise asks for more, or
    /// reports truncation if the file is known to end earlier.
    fn need(&self, end: u64, hdu: usize, what: impl FnOnce(u64) -> String) -> Scan<()> {
        if end <= self.bytes.len() as u64 {
            return Ok(());
        }
        match self.file_size {
            Some(size) if end > size => Err(self.at(hdu).truncated(size, what(size)).into()),
            _ => match usize::try_from(end) {
                Ok(at_least) => Err(Stop::NeedMore(at_least)),
                Err(_) => Err(self.at(hdu).header(end, "header offset overflows").into()),
            },
        }
    }

    /// Reads the cards of the header starting at `start`, up to its END card.
    fn read_header(&self, start: u64, hdu: usize) -> Scan<Header<'a>> {
        let loc = self.at(hdu);
        let mut cards = Vec::new();
        let mut block = start;
        loop {
            if block - start >= MAX_HEADER_LEN {
                return Err(loc
                    .header(
                        start,
                        format!("no END card in the first {MAX_HEADER_LEN} bytes of the header"),
                    )
                    .into());
            }
            let end = block.saturating_add(BLOCK_LEN as u64);
            self.need(end, hdu, |size| match hdu {
                0 => format!("file ends at byte {size} inside the primary header (no END card)"),
                _ => {
                    format!("file ends at byte {size} inside the header of HDU {hdu} (no END card)")
                }
            })?;
            let bytes = usize::try_from(block)
                .ok()
                .and_then(|b| self.bytes.get(b..))
                .and_then(|rest| rest.get(..BLOCK_LEN))
                .ok_or_else(|| loc.header(block, "header offset out of range"))?;
            for (i, raw) in bytes.chunks_exact(CARD_LEN).enumerate() {
                let card = Card::parse(raw, block + (i * CARD_LEN) as u64, loc)?;
                if card.key == "END" {
                    return Ok(Header::new(loc, start, end, cards));
                }
                cards.push(card);
            }
            block = end;
        }
    }
}

fn pad_to_block(n: u64) -> u64 {
    n.div_ceil(BLOCK_LEN as u64)
        .saturating_mul(BLOCK_LEN as u64)
}

/// Bytes of data after the primary header (see [`hdu_data_len`]).
fn primary_data_len(h: &Header<'_>) -> Result<u64> {
    // scan() checked that the first card is SIMPLE.
    if h.logical("SIMPLE")? != Some(true) {
        return Err(h.loc.header(
            0,
            "SIMPLE is not T: file does not conform to the FITS standard",
        ));
    }
    hdu_data_len(h)
}

/// Bytes of data after a header:
/// |BITPIX|/8 × GCOUNT × (PCOUNT + NAXIS1 × … × NAXISn), unpadded.
pub(crate) fn hdu_data_len(h: &Header<'_>) -> Result<u64> {
    let (bitpix, at) = h.required_int("BITPIX")?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(h
            .loc
            .header(at, format!("BITPIX = {bitpix} is not a valid FITS BITPIX")));
    }
    let naxis = h.int_in("NAXIS", 0..=999)?;
    if naxis == 0 {
        return Ok(0);
    }
    // Random groups (GROUPS = T, NAXIS1 = 0) leave NAXIS1 out of the product.
    let groups = h.logical("GROUPS")? == Some(true);
    let mut elements: u64 = 1;
    for n in 1..=naxis {
        let len = h.int_in(&format!("NAXIS{n}"), 0..=i64::MAX)?;
        if n == 1 && groups && len == 0 {
            continue;
        }
        elements = elements
            .checked_mul(len.unsigned_abs())
            .ok_or_else(|| h.loc.header(h.start, "data size overflows"))?;
    }
    let pcount = h.optional_int_in("PCOUNT", 0..=i64::MAX)?.unwrap_or(0);
    let gcount = h.optional_int_in("GCOUNT", 0..=i64::MAX)?.unwrap_or(1);
    elements
        .checked_add(pcount.unsigned_abs())
        .and_then(|e| e.checked_mul(gcount.unsigned_abs()))
        .and_then(|e| e.checked_mul(bitpix.unsigned_abs() / 8))
        .ok_or_else(|| h.loc.header(h.start, "data size overflows"))
}

/// Reads the header that starts at byte `start` of a file held whole in
/// `bytes`; a missing END card is reported as truncation.
pub(crate) fn read_header_at<'a>(
    bytes: &'a [u8],
    start: u64,
    hdu: usize,
    source: &'a str,
) -> Result<Header<'a>> {
    let scanner = Scanner {
        bytes,
        file_size: Some(bytes.len() as u64),
        source,
    };
    match scanner.read_header(start, hdu) {
        Ok(h) => Ok(h),
        Err(Stop::Fail(e)) => Err(e),
        // Unreachable with the whole file at hand; reported rather than assumed.
        Err(Stop::NeedMore(at)) => Err(scanner.at(hdu).truncated(
            bytes.len() as u64,
            format!("header needs {at} bytes but the file has {}", bytes.len()),
        )),
    }
}

/// Byte offset of the next HDU's header: after this one's data, padded to a block.
pub(crate) fn next_header_offset(h: &Header<'_>) -> Result<u64> {
    let len = hdu_data_len(h)?;
    h.data_offset
        .checked_add(len)
        .map(pad_to_block)
        .ok_or_else(|| h.loc.header(h.start, "data size overflows"))
}

/// Validates a BINTABLE header and works out its row layout.
fn bintable_layout(h: &Header<'_>, source: &str) -> Result<BinTableLayout> {
    let loc = h.loc;
    let first = h.cards.first().map_or("", |c| c.key);
    if first != "XTENSION" {
        return Err(loc.header(
            h.start,
            format!("expected an extension header starting with XTENSION, found '{first}'"),
        ));
    }
    let xtension = h.string("XTENSION")?.unwrap_or_default();
    if xtension != "BINTABLE" {
        let what = match xtension.as_str() {
            "IMAGE" => "an image",
            "TABLE" => "an ASCII table",
            _ => "not a binary table",
        };
        return Err(loc.unsupported(
            h.start,
            format!(
                "first extension is {what} (XTENSION = '{xtension}'); only BINTABLE is supported"
            ),
        ));
    }
    h.int_in("BITPIX", 8..=8)?;
    h.int_in("NAXIS", 2..=2)?;
    let (naxis1, naxis1_at) = h.required_int("NAXIS1")?;
    if naxis1 <= 0 {
        return Err(loc.header(
            naxis1_at,
            format!("NAXIS1 = {naxis1}: a row must have at least one byte"),
        ));
    }
    let nrows = h.int_in("NAXIS2", 0..=i64::MAX)?.unsigned_abs();
    let heap_size = h.int_in("PCOUNT", 0..=i64::MAX)?.unsigned_abs();
    h.int_in("GCOUNT", 1..=1)?;
    let tfields = h.int_in("TFIELDS", 0..=MAX_FIELDS)?;
    h.check_no_column_keywords_past(tfields)?;

    let mut columns: Vec<ColumnDesc> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut offset: usize = 0;
    for n in 1..=tfields {
        let (text, tform_at) = h.required_string(&format!("TFORM{n}"))?;
        let name = match h.string(&format!("TTYPE{n}"))? {
            Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => format!("COL{n}"),
        };
        let tform = TForm::parse_str(&text)
            .map_err(|m| loc.header(tform_at, format!("column {n} ('{name}'): {m}")))?;
        let tscal = h.float(&format!("TSCAL{n}"))?.unwrap_or(1.0);
        let tzero = h.float(&format!("TZERO{n}"))?.unwrap_or(0.0);
        let kind = ValueKind::classify(&name, &text, tform, tscal, tzero)
            .map_err(|m| loc.unsupported(tform_at, m))?;
        let field_offset = offset;
        offset = tform
            .checked_width()
            .and_then(|w| offset.checked_add(w))
            .ok_or_else(|| {
                loc.header(
                    tform_at,
                    "the TFORMs add up to more bytes than fit in memory",
                )
            })?;
        if tform.repeat == 0 {
            continue;
        }
        let arrow_name = name.to_lowercase();
        if let Some(prev) = names.insert(arrow_name.clone(), n as usize) {
            return Err(loc.header(
                tform_at,
                format!("columns {prev} and {n} are both named '{arrow_name}' (ignoring case)"),
            ));
        }
        let unit = h
            .string(&format!("TUNIT{n}"))?
            .filter(|u| !u.trim().is_empty());
        columns.push(ColumnDesc {
            name,
            arrow_name,
            tform,
            offset: field_offset,
            tscal,
            tzero,
            tnull: h.int(&format!("TNULL{n}"))?.map(|(v, _)| v),
            unit,
            data_type: kind.data_type(tform.repeat),
        });
    }
    if naxis1.unsigned_abs() != offset as u64 {
        return Err(loc.header(
            naxis1_at,
            format!("NAXIS1 = {naxis1} but the TFORMs add up to {offset} bytes"),
        ));
    }
    let row_len = offset;
    // Keep every later offset computation in range of u64.
    (row_len as u64)
        .checked_mul(nrows)
        .and_then(|d| d.checked_add(heap_size))
        .and_then(|d| d.checked_add(h.data_offset))
        .ok_or_else(|| {
            loc.header(
                naxis1_at,
                format!("table size overflows: NAXIS2 = {nrows} rows of {row_len} bytes plus a heap of {heap_size} bytes"),
            )
        })?;
    Ok(BinTableLayout {
        source: source.to_owned(),
        hdu: h.loc.hdu,
        header_offset: h.start,
        data_offset: h.data_offset,
        row_len,
        nrows,
        heap_size,
        columns,
    })
}

/// One 80-byte header card.
#[derive(Debug)]
pub(crate) struct Card<'a> {
    /// Keyword, trailing spaces trimmed.
    key: &'a str,
    /// Bytes 11–80 when the card has a value indicator (`= ` in bytes 9–10).
    value: Option<&'a [u8]>,
    /// Byte offset of the card in the file.
    offset: u64,
}

impl<'a> Card<'a> {
    fn parse(raw: &'a [u8], offset: u64, loc: Location<'_>) -> Result<Self> {
        let (key, rest) = raw.split_at(raw.len().min(8));
        let key = std::str::from_utf8(key)
            .ok()
            .filter(|k| k.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or_else(|| loc.header(offset, "header card keyword is not ASCII text"))?
            .trim_end_matches(' ');
        let value = rest.strip_prefix(b"= ");
        Ok(Card { key, value, offset })
    }
}

/// A parsed header value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Logical(bool),
    /// Integers that do not fit `i64` are read as [`Value::Float`].
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Logical(b) => f.write_str(if *b { "T" } else { "F" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "'{s}'"),
        }
    }
}

/// Parses a card's value field (after `= `); `None` if the value is empty.
fn parse_value(field: &[u8]) -> std::result::Result<Option<Value>, String> {
    let text = field.trim_ascii_start();
    if let Some(quoted) = text.strip_prefix(b"'") {
        return parse_string(quoted).map(|s| Some(Value::Str(s)));
    }
    let token = text
        .split(|&b| b == b'/')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let shown = || String::from_utf8_lossy(token).into_owned();
    match token {
        b"" => Ok(None),
        b"T" => Ok(Some(Value::Logical(true))),
        b"F" => Ok(Some(Value::Logical(false))),
        _ if !token
            .iter()
            .all(|b| b.is_ascii_digit() || b"+-.EeDd".contains(b)) =>
        {
            Err(format!("cannot parse value '{}'", shown()))
        }
        _ => {
            // All ASCII by the check above.
            let s = std::str::from_utf8(token).map_err(|_| shown())?;
            let is_int = s
                .strip_prefix(['+', '-'])
                .unwrap_or(s)
                .bytes()
                .all(|b| b.is_ascii_digit());
            if is_int {
                if let Ok(i) = s.parse::<i64>() {
                    return Ok(Some(Value::Int(i)));
                }
            }
            s.replace(['D', 'd'], "E")
                .parse::<f64>()
                .map(|f| Some(Value::Float(f)))
                .map_err(|_| format!("cannot parse value '{s}'"))
        }
    }
}

/// Parses a quoted string after its opening quote: `''` is a quote, trailing
/// spaces are not significant, and only a comment may follow.
fn parse_string(mut rest: &[u8]) -> std::result::Result<String, String> {
    let mut out = Vec::new();
    loop {
        let Some(q) = rest.iter().position(|&b| b == b'\'') else {
            return Err("string value has no closing quote".to_owned());
        };
        let (chunk, after) = rest.split_at(q);
        out.extend_from_slice(chunk);
        let after = after.get(1..).unwrap_or_default();
        match after.strip_prefix(b"'") {
            Some(more) => {
                out.push(b'\'');
                rest = more;
            }
            None => {
                let tail = after.trim_ascii_start();
                if !tail.is_empty() && !tail.starts_with(b"/") {
                    return Err("unexpected text after the string value".to_owned());
                }
                let s = String::from_utf8_lossy(&out);
                return Ok(s.trim_end_matches(' ').to_owned());
            }
        }
    }
}

/// The cards of one header, with keyword lookup.
///
/// Lookups fail when a keyword appears twice or its value has the wrong type;
/// the error names the card's byte offset.
#[derive(Debug)]
pub struct Header<'a> {
    pub(crate) loc: Location<'a>,
    /// Byte offset of the first card.
    start: u64,
    /// Byte offset just past the END card's block: where the data starts.
    pub(crate) data_offset: u64,
    cards: Vec<Card<'a>>,
    /// Keyword → (index of its first valued card, whether it appears again).
    index: HashMap<&'a str, (usize, bool)>,
}

impl<'a> Header<'a> {
    fn new(loc: Location<'a>, start: u64, data_offset: u64, cards: Vec<Card<'a>>) -> Self {
        let mut index: HashMap<&str, (usize, bool)> = HashMap::with_capacity(cards.len());
        for (i, card) in cards.iter().enumerate() {
            if card.value.is_some() {
                index
                    .entry(card.key)
                    .and_modify(|e| e.1 = true)
                    .or_insert((i, false));
            }
        }
        Header {
            loc,
            start,
            data_offset,
            cards,
            index,
        }
    }

    /// The value of `key` and its card's offset. Duplicates of a keyword we
    /// read are an error: which one is meant is unclear.
    fn value(&self, key: &str) -> Result<Option<(Value, u64)>> {
        let Some(&(i, dup)) = self.index.get(key) else {
            return Ok(None);
        };
        let Some(card) = self.cards.get(i) else {
            return Ok(None);
        };
        if dup {
            return Err(self
                .loc
                .header(card.offset, format!("keyword {key} appears more than once")));
        }
        let field = card.value.unwrap_or_default();
        parse_value(field)
            .map(|v| v.map(|v| (v, card.offset)))
            .map_err(|m| self.loc.header(card.offset, format!("{key}: {m}")))
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<(i64, u64)>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Int(i), at)) => Ok(Some((i, at))),
            Some((v, at)) => Err(self
                .loc
                .header(at, format!("{key} = {v} is not an integer"))),
        }
    }

    pub(crate) fn required_int(&self, key: &str) -> Result<(i64, u64)> {
        self.int(key)?.ok_or_else(|| self.missing(key))
    }

    /// A required integer that must lie in `range`.
    pub(crate) fn int_in(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
        let (v, at) = self.required_int(key)?;
        self.check_range(key, v, at, range)
    }

    pub(crate) fn optional_int_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>> {
        self.int(key)?
            .map(|(v, at)| self.check_range(key, v, at, range))
            .transpose()
    }

    fn check_range(
        &self,
        key: &str,
        v: i64,
        at: u64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64> {
        if range.contains(&v) {
            return Ok(v);
        }
        let expected = match (range.start(), range.end()) {
            (a, b) if a == b => format!("must be {a}"),
            (a, &i64::MAX) => format!("must be at least {a}"),
            (a, b) => format!("must be between {a} and {b}"),
        };
        Err(self.loc.header(at, format!("{key} = {v}: {expected}")))
    }

    /// The integer value of `key`, if present.
    pub fn integer(&self, key: &str) -> Result<Option<i64>> {
        Ok(self.int(key)?.map(|(v, _)| v))
    }

    /// Byte offset of the header's first card in the file.
    pub fn offset(&self) -> u64 {
        self.start
    }

    /// The keywords of the header's valued cards, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.cards
            .iter()
            .filter(|c| c.value.is_some())
            .map(|c| c.key)
    }

    /// The value of `key` as a number (integers are converted), if present.
    pub fn float(&self, key: &str) -> Result<Option<f64>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Int(i), _)) => Ok(Some(i as f64)),
            Some((Value::Float(f), _)) => Ok(Some(f)),
            Some((v, at)) => Err(self.loc.header(at, format!("{key} = {v} is not a number"))),
        }
    }

    /// The logical value of `key`, if present.
    pub fn logical(&self, key: &str) -> Result<Option<bool>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Logical(b), _)) => Ok(Some(b)),
            Some((v, at)) => Err(self.loc.header(at, format!("{key} = {v} is not T or F"))),
        }
    }

    /// The string value of `key` (trailing spaces trimmed), if present.
    pub fn string(&self, key: &str) -> Result<Option<String>> {
        Ok(self.string_at(key)?.map(|(s, _)| s))
    }

    pub(crate) fn string_at(&self, key: &str) -> Result<Option<(String, u64)>> {
        match self.value(key)? {
            None => Ok(None),
            Some((Value::Str(s), at)) => Ok(Some((s, at))),
            Some((v, at)) => Err(self.loc.header(at, format!("{key} = {v} is not a string"))),
        }
    }

    pub(crate) fn required_string(&self, key: &str) -> Result<(String, u64)> {
        self.string_at(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn missing(&self, key: &str) -> FitsError {
        self.loc
            .header(self.start, format!("missing required keyword {key}"))
    }

    /// Column keywords numbered past TFIELDS mean TFIELDS is wrong.
    fn check_no_column_keywords_past(&self, tfields: i64) -> Result<()> {
        for card in &self.cards {
            let Some(n) = ["TTYPE", "TFORM"]
                .iter()
                .find_map(|p| card.key.strip_prefix(p))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if n > tfields {
                return Err(self.loc.header(
                    card.offset,
                    format!("TFIELDS = {tfields} but {} is present", card.key),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> std::result::Result<Option<Value>, String> {
        parse_value(s.as_bytes())
    }

    #[test]
    fn parses_values() {
        assert_eq!(
            value("                   T / c"),
            Ok(Some(Value::Logical(true)))
        );
        assert_eq!(value("F"), Ok(Some(Value::Logical(false))));
        assert_eq!(
            value("                  383 / width"),
            Ok(Some(Value::Int(383)))
        );
        assert_eq!(value("-128"), Ok(Some(Value::Int(-128))));
        assert_eq!(value("+7"), Ok(Some(Value::Int(7))));
        assert_eq!(value("1.5D2"), Ok(Some(Value::Float(150.0))));
        assert_eq!(value("  -2.5E-1 /"), Ok(Some(Value::Float(-0.25))));
        assert_eq!(value("1."), Ok(Some(Value::Float(1.0))));
        // 2^63 does not fit i64 but is exact as f64.
        assert_eq!(
            value("9223372036854775808"),
            Ok(Some(Value::Float(9_223_372_036_854_775_808.0)))
        );
        assert_eq!(value("       / no value"), Ok(None));
        assert_eq!(value(""), Ok(None));
        assert!(value("(1.0, 2.0)").is_err());
        assert!(value("nan").is_err());
        assert!(value("1 2").is_err());
    }

    #[test]
    fn parses_strings() {
        let s = |v: &str| {
            value(v).map(|v| match v {
                Some(Value::Str(s)) => s,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            s("'BINTABLE'           / binary table"),
            Ok("BINTABLE".into())
        );
        assert_eq!(s("'PSF     '"), Ok("PSF".into()));
        assert_eq!(s("'  lead'"), Ok("  lead".into()));
        assert_eq!(s("'it''s'"), Ok("it's".into()));
        assert_eq!(s("''''"), Ok("'".into()));
        assert_eq!(s("'a/b' / c"), Ok("a/b".into()));
        assert_eq!(s("''"), Ok(String::new()));
        assert!(value("'open").is_err());
        assert!(value("'x' y").is_err());
    }

    #[test]
    fn card_keyword_and_value_indicator() {
        let loc = Location {
            source: "f",
            hdu: 0,
        };
        let raw = format!("{:<80}", "NAXIS1  =                  383 / width");
        let c = Card::parse(raw.as_bytes(), 0, loc).unwrap();
        assert_eq!(c.key, "NAXIS1");
        assert!(c.value.is_some());
        let raw = format!("{:<80}", "COMMENT = not a value");
        let c = Card::parse(raw.as_bytes(), 0, loc).unwrap();
        assert_eq!(c.key, "COMMENT");
        let raw = format!("{:<80}", "HISTORY  x");
        assert!(Card::parse(raw.as_bytes(), 0, loc).unwrap().value.is_none());
        let mut bad = raw.into_bytes();
        bad[0] = 0xff;
        assert!(Card::parse(&bad, 0, loc).is_err());
    }
}
