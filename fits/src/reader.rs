//! Reading a FITS binary table through [`std::io::Read`] + [`Seek`].

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::decode::RowDecoder;
use crate::error::{ErrorKind, FitsError, Location, Result};
use crate::header::{scan_headers_sized, BinTableLayout, HeaderScan};

/// Bytes read for the headers at first; legacy-survey headers are about 50 KB.
const HEADER_PROBE_LEN: u64 = 64 << 10;
/// Caps the bytes read for one batch, whatever the batch size, so that tables
/// of very wide rows do not allocate huge buffers.
const MAX_BATCH_BYTES: usize = 256 << 20;

/// Which columns to read.
#[derive(Debug, Clone, Default)]
enum Columns {
    #[default]
    All,
    Indices(Vec<usize>),
    Names(Vec<String>),
}

/// Configures and builds a [`Reader`], like `arrow_csv::ReaderBuilder`.
///
/// ```no_run
/// # fn main() -> lenspipe_fits::Result<()> {
/// let file = std::fs::File::open("sweep-000m005-005p000.fits").unwrap();
/// let reader = lenspipe_fits::ReaderBuilder::new()
///     .with_columns(&["ra", "dec", "flux_g"])
///     .with_batch_size(8192)
///     .build(file, "sweep-000m005-005p000.fits")?;
/// for batch in reader {
///     println!("{} rows", batch?.num_rows());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReaderBuilder {
    batch_size: usize,
    columns: Columns,
    row_range: Option<Range<u64>>,
}

impl Default for ReaderBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ReaderBuilder {
    /// All columns and rows, in batches of 65536 rows.
    pub fn new() -> Self {
        Self {
            batch_size: 65536,
            columns: Columns::All,
            row_range: None,
        }
    }

    /// Rows per batch (a value of 0 is taken as 1). Batches of very wide rows
    /// may hold fewer rows, to stay under 256 MiB of row bytes.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Reads the columns at these indices of [`BinTableLayout::columns`], in
    /// this order. Replaces any earlier [`with_columns`](Self::with_columns).
    pub fn with_projection(mut self, projection: Vec<usize>) -> Self {
        self.columns = Columns::Indices(projection);
        self
    }

    /// Reads the columns with these Arrow (lower-case) names, in this order.
    /// Replaces any earlier [`with_projection`](Self::with_projection).
    pub fn with_columns(mut self, names: &[&str]) -> Self {
        self.columns = Columns::Names(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Reads only rows `range.start..range.end` (0-based), which must lie within the table.
    pub fn with_row_range(mut self, range: Range<u64>) -> Self {
        self.row_range = Some(range);
        self
    }

    /// Reads the headers of `reader` (named `source` in errors), checks the
    /// file is long enough for the table, and returns a batch iterator.
    pub fn build<R: Read + Seek>(self, mut reader: R, source: &str) -> Result<Reader<R>> {
        let (layout, file_size) = read_layout_sized(&mut reader, source)?;
        layout.check_file_size(file_size)?;
        let projection = match self.columns {
            Columns::All => None,
            Columns::Indices(indices) => Some(indices),
            Columns::Names(names) => Some(resolve_names(&layout, &names)?),
        };
        let rows = self.row_range.unwrap_or(0..layout.nrows);
        // Validates the range against the table.
        layout.row_byte_range(rows.clone())?;
        let layout = Arc::new(layout);
        let decoder = RowDecoder::new(Arc::clone(&layout), projection)?;
        let batch_rows = self
            .batch_size
            .min((MAX_BATCH_BYTES / layout.row_len).max(1));
        Ok(Reader {
            reader,
            decoder,
            layout,
            next_row: rows.start,
            end_row: rows.end,
            batch_rows,
            buffer: Vec::new(),
            failed: false,
        })
    }
}

/// Reads the headers of a FITS file and returns its binary-table layout,
/// after checking the file holds all the table's bytes.
pub fn read_layout<R: Read + Seek>(r: &mut R, source: &str) -> Result<BinTableLayout> {
    let (layout, file_size) = read_layout_sized(r, source)?;
    layout.check_file_size(file_size)?;
    Ok(layout)
}

/// The layout and the file size; reads a 64 KiB prefix, more if the headers need it.
fn read_layout_sized<R: Read + Seek>(r: &mut R, source: &str) -> Result<(BinTableLayout, u64)> {
    let io_err = |offset, e| FitsError::io(source, 0, offset, e);
    let file_size = r.seek(SeekFrom::End(0)).map_err(|e| io_err(0, e))?;
    r.seek(SeekFrom::Start(0)).map_err(|e| io_err(0, e))?;
    let mut prefix = Vec::new();
    let mut probe = HeaderProbe::new(file_size, source);
    loop {
        // `want` never exceeds the file size, so this allocation is bounded by it.
        let (have, want) = (prefix.len() as u64, probe.want());
        r.by_ref()
            .take(want - have)
            .read_to_end(&mut prefix)
            .map_err(|e| io_err(have, e))?;
        if let Some(layout) = probe.feed(&prefix)? {
            return Ok((layout, file_size));
        }
    }
}

/// The loop that reads a file's headers, apart from the reading itself: the
/// same decisions serve local files and byte ranges from object storage.
///
/// Start with the first [`want`](Self::want) bytes of the file; [`feed`](Self::feed)
/// the prefix read so far until it returns the layout, reading up to
/// [`want`](Self::want) bytes after each `None`.
#[derive(Debug, Clone)]
pub struct HeaderProbe<'a> {
    file_size: u64,
    want: u64,
    source: &'a str,
}

impl<'a> HeaderProbe<'a> {
    /// A probe of a file of `file_size` bytes, named `source` in errors.
    pub fn new(file_size: u64, source: &'a str) -> Self {
        Self {
            file_size,
            want: HEADER_PROBE_LEN.min(file_size),
            source,
        }
    }

    /// Bytes of the file's start the next [`feed`](Self::feed) should hold.
    pub fn want(&self) -> u64 {
        self.want
    }

    /// Scans `prefix` (the file's first bytes, at least [`want`](Self::want)
    /// of them): the layout once the headers are complete, `None` when more
    /// bytes are needed. A short prefix means the file shrank while read.
    pub fn feed(&mut self, prefix: &[u8]) -> Result<Option<BinTableLayout>> {
        let (source, file_size) = (self.source, self.file_size);
        if (prefix.len() as u64) < self.want {
            return Err(Location { source, hdu: 0 }.truncated(
                prefix.len() as u64,
                format!("file shrank while reading: expected {file_size} bytes"),
            ));
        }
        match scan_headers_sized(prefix, file_size, source)? {
            HeaderScan::Complete(layout) => Ok(Some(layout)),
            // scan_headers_sized asks only for bytes the file has.
            HeaderScan::NeedMore { at_least } => {
                let next = (at_least as u64)
                    .max(self.want.saturating_mul(2))
                    .min(file_size);
                if next <= self.want {
                    return Err(Location { source, hdu: 0 }.truncated(
                        file_size,
                        format!("file ends ({file_size} bytes) inside its FITS header"),
                    ));
                }
                self.want = next;
                Ok(None)
            }
        }
    }
}

/// Resolves Arrow column names to indices in the layout.
fn resolve_names(layout: &BinTableLayout, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|name| {
            layout.column_index(name).ok_or_else(|| {
                let known: Vec<&str> = layout
                    .columns
                    .iter()
                    .map(|c| c.arrow_name.as_str())
                    .collect();
                layout.location().data(
                    layout.header_offset,
                    format!(
                        "no column named '{name}'; the columns are: {}",
                        known.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// An iterator of [`RecordBatch`]es read from a FITS binary table.
///
/// After an error the iterator ends.
#[derive(Debug)]
pub struct Reader<R> {
    reader: R,
    decoder: RowDecoder,
    layout: Arc<BinTableLayout>,
    next_row: u64,
    end_row: u64,
    batch_rows: usize,
    /// Row bytes of the current batch, reused between batches.
    buffer: Vec<u8>,
    failed: bool,
}

impl<R> Reader<R> {
    /// The schema of the batches (projected columns only).
    pub fn schema(&self) -> SchemaRef {
        self.decoder.schema()
    }

    /// The table's layout (all columns).
    pub fn layout(&self) -> &Arc<BinTableLayout> {
        &self.layout
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl<R: Read + Seek> Reader<R> {
    fn read_batch(&mut self) -> Result<RecordBatch> {
        let first = self.next_row;
        let n = (self.end_row - first).min(self.batch_rows as u64);
        let bytes = self.layout.row_byte_range(first..first + n)?;
        let len = usize::try_from(bytes.end - bytes.start).map_err(|_| {
            self.layout
                .location()
                .data(bytes.start, "batch does not fit in memory")
        })?;
        let io_err = |e| FitsError::io(&self.layout.source, self.layout.hdu, bytes.start, e);
        self.reader
            .seek(SeekFrom::Start(bytes.start))
            .map_err(io_err)?;
        self.buffer.resize(len, 0);
        self.reader.read_exact(&mut self.buffer).map_err(|e| {
            let mut err = io_err(e);
            if err.kind == ErrorKind::Truncated {
                // The size was checked at build time: the file shrank since.
                err.message = format!(
                    "file ends inside rows {first}..{} ({len} bytes from byte {})",
                    first + n,
                    bytes.start
                );
            }
            err
        })?;
        let batch = self.decoder.decode(&self.buffer, first)?;
        self.next_row = first + n;
        Ok(batch)
    }
}

impl<R: Read + Seek> Iterator for Reader<R> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next_row >= self.end_row {
            return None;
        }
        let batch = self.read_batch();
        self.failed = batch.is_err();
        Some(batch)
    }
}
