//! Tile-compressed images (the FITS tiled-image convention), read one
//! tile at a time so that a cutout decodes only the tiles it touches.
//!
//! Supported, with `ZNAXIS = 2`:
//! - `ZBITPIX = -32`, `ZCMPTYPE = 'RICE_1'` (32-bit integers, any
//!   `BLOCKSIZE`), quantised with `NO_DITHER`, `SUBTRACTIVE_DITHER_1` or
//!   `SUBTRACTIVE_DITHER_2`; `ZSCALE`/`ZZERO`/`ZBLANK` as per-tile columns or
//!   header keywords (DR10's image and invvar bricks);
//! - `ZBITPIX = 8, 16, 32`, `ZCMPTYPE = 'HCOMPRESS_1'` without smoothing,
//!   `BSCALE`/`BZERO` applied (DR10's maskbits bricks). Pixels come out as
//!   float32 like every image here: exact for integers below 2^24 in
//!   magnitude, which holds every DR10 mask bit.
//!
//! Tiles stored losslessly in `GZIP_COMPRESSED_DATA` (those that could not
//! be quantised) need an inflate function from the caller
//! ([`TiledImage::with_inflate`]): the crate itself has no gzip dependency.
//!
//! Pixel coordinates are 0-based, `x` along FITS axis 1 and `y` along axis 2;
//! pixel buffers are row-major (`y` major).

use crate::column::TForm;
use crate::dither::{Dequantizer, Dither};
use crate::error::{Location, Result};
use crate::header::{next_header_offset, read_header_at, Header};
use crate::{hcompress, rice};

/// How tiles are coded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Codec {
    /// RICE_1 of quantised float32 pixels.
    Rice,
    /// HCOMPRESS_1 of integer pixels, then `value * bscale + bzero`.
    Hcompress { bscale: f64, bzero: f64 },
}

/// Inflates gzip data (the whole member) for tiles stored losslessly.
pub type Inflate = fn(&[u8]) -> std::result::Result<Vec<u8>, String>;

/// Where one tile's bytes are in the heap: (length, offset from the heap start).
type Descriptor = (u64, u64);

/// Per-tile entries of the compressed table.
#[derive(Debug, Clone)]
struct TileEntry {
    rice: Descriptor,
    gzip: Option<Descriptor>,
    scale: f64,
    zero: f64,
    blank: Option<i32>,
}

/// A tile-compressed float32 image HDU over the bytes of a whole FITS file.
///
/// `B` is anything that derefs to the file's bytes (`&[u8]`, `Vec<u8>`,
/// `bytes::Bytes`), so the image can own its buffer.
pub struct TiledImage<B> {
    bytes: B,
    source: String,
    hdu: usize,
    header_offset: u64,
    width: usize,
    height: usize,
    tile_width: usize,
    tile_height: usize,
    tiles_x: usize,
    codec: Codec,
    dither: Dither,
    dither_seed: i64,
    blocksize: usize,
    heap_offset: u64,
    tiles: Vec<TileEntry>,
    inflate: Option<Inflate>,
}

impl<B> std::fmt::Debug for TiledImage<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiledImage")
            .field("source", &self.source)
            .field("hdu", &self.hdu)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("tile_width", &self.tile_width)
            .field("tile_height", &self.tile_height)
            .field("dither", &self.dither)
            .finish_non_exhaustive()
    }
}

impl<B: AsRef<[u8]>> TiledImage<B> {
    /// Opens the first HDU that holds a compressed image (`ZIMAGE = T`).
    pub fn open(bytes: B, source: &str) -> Result<Self> {
        let (hdu, offset) = {
            let data = bytes.as_ref();
            let mut offset = 0u64;
            let mut hdu = 0usize;
            loop {
                if offset >= data.len() as u64 {
                    return Err(Location { source, hdu }.data(
                        offset,
                        "file has no tile-compressed image HDU (no header with ZIMAGE = T)",
                    ));
                }
                let h = read_header_at(data, offset, hdu, source)?;
                if h.logical("ZIMAGE")? == Some(true) {
                    break (hdu, offset);
                }
                offset = next_header_offset(&h)?;
                hdu += 1;
            }
        };
        Self::open_at(bytes, source, hdu, offset)
    }

    /// Opens HDU number `hdu` (0 = primary), which must be a compressed image.
    pub fn open_hdu(bytes: B, source: &str, hdu: usize) -> Result<Self> {
        let offset = {
            let data = bytes.as_ref();
            let mut offset = 0u64;
            for n in 0..hdu {
                let h = read_header_at(data, offset, n, source)?;
                offset = next_header_offset(&h)?;
            }
            offset
        };
        Self::open_at(bytes, source, hdu, offset)
    }

    fn open_at(bytes: B, source: &str, hdu: usize, header_offset: u64) -> Result<Self> {
        let layout = {
            let h = read_header_at(bytes.as_ref(), header_offset, hdu, source)?;
            Layout::parse(&h, bytes.as_ref())?
        };
        Ok(TiledImage {
            bytes,
            source: source.to_owned(),
            hdu,
            header_offset,
            width: layout.width,
            height: layout.height,
            tile_width: layout.tile_width,
            tile_height: layout.tile_height,
            tiles_x: layout.width.div_ceil(layout.tile_width),
            codec: layout.codec,
            dither: layout.dither,
            dither_seed: layout.dither_seed,
            blocksize: layout.blocksize,
            heap_offset: layout.heap_offset,
            tiles: layout.tiles,
            inflate: None,
        })
    }

    /// Sets the function that inflates `GZIP_COMPRESSED_DATA` tiles.
    pub fn with_inflate(mut self, inflate: Inflate) -> Self {
        self.inflate = Some(inflate);
        self
    }

    /// The compressed HDU's header cards (including the image's WCS keywords).
    pub fn header(&self) -> Result<Header<'_>> {
        read_header_at(
            self.bytes.as_ref(),
            self.header_offset,
            self.hdu,
            &self.source,
        )
    }

    /// Image width in pixels (`ZNAXIS1`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image height in pixels (`ZNAXIS2`).
    pub fn height(&self) -> usize {
        self.height
    }

    /// Tile width and height (`ZTILE1`, `ZTILE2`); edge tiles may be smaller.
    pub fn tile_shape(&self) -> (usize, usize) {
        (self.tile_width, self.tile_height)
    }

    /// Number of tiles along x and y.
    pub fn tile_grid(&self) -> (usize, usize) {
        (self.tiles_x, self.height.div_ceil(self.tile_height))
    }

    /// The pixel rectangle `(x0, y0, w, h)` of tile `(tx, ty)`.
    pub fn tile_rect(&self, tx: usize, ty: usize) -> (usize, usize, usize, usize) {
        let x0 = tx * self.tile_width;
        let y0 = ty * self.tile_height;
        (
            x0,
            y0,
            self.tile_width.min(self.width.saturating_sub(x0)),
            self.tile_height.min(self.height.saturating_sub(y0)),
        )
    }

    /// The source name given at open, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn loc(&self) -> Location<'_> {
        Location {
            source: &self.source,
            hdu: self.hdu,
        }
    }

    /// Decodes tile `(tx, ty)`: its pixels row-major, `tile_rect` sized.
    pub fn decode_tile(&self, tx: usize, ty: usize) -> Result<Vec<f32>> {
        let (_, _, w, h) = self.tile_rect(tx, ty);
        let mut out = vec![0f32; w * h];
        self.decode_tile_into(tx, ty, &mut out)?;
        Ok(out)
    }

    /// Decodes tile `(tx, ty)` into `out`, which must hold exactly its
    /// `tile_rect` pixels (row-major). Rice tiles allocate nothing: the
    /// integers are decoded into `out` and unquantised there block by block.
    pub fn decode_tile_into(&self, tx: usize, ty: usize, out: &mut [f32]) -> Result<()> {
        let (nx, ny) = self.tile_grid();
        if tx >= nx || ty >= ny {
            return Err(self.loc().data(
                self.heap_offset,
                format!("tile ({tx}, {ty}) is outside the {nx}×{ny} tile grid"),
            ));
        }
        let index = ty * nx + tx;
        let (_, _, w, h) = self.tile_rect(tx, ty);
        let n = w * h;
        if out.len() != n {
            return Err(self.loc().data(
                self.heap_offset,
                format!(
                    "tile ({tx}, {ty}) has {n} pixels but the buffer holds {}",
                    out.len()
                ),
            ));
        }
        let entry = self.tiles.get(index).ok_or_else(|| {
            self.loc()
                .data(self.heap_offset, format!("tile {index} has no table row"))
        })?;
        if let (Codec::Hcompress { bscale, bzero }, true) = (self.codec, entry.rice.0 > 0) {
            let data = self.heap_slice(entry.rice, index, "COMPRESSED_DATA")?;
            let at = self.heap_offset + entry.rice.1;
            let tile = hcompress::decode(data, false)
                .map_err(|m| self.loc().data(at, format!("tile ({tx}, {ty}): {m}")))?;
            if (tile.rows, tile.cols) != (h, w) {
                return Err(self.loc().data(
                    at,
                    format!(
                        "tile ({tx}, {ty}) decodes to {} x {} pixels, expected {w} x {h}",
                        tile.cols, tile.rows
                    ),
                ));
            }
            for (o, v) in out.iter_mut().zip(&tile.values) {
                *o = (*v as f64 * bscale + bzero) as f32;
            }
            return Ok(());
        }
        if entry.rice.0 > 0 {
            let data = self.heap_slice(entry.rice, index, "COMPRESSED_DATA")?;
            // The dither sequence is keyed by the 1-based tile row plus ZDITHER0 - 1.
            let row = index as i64 + self.dither_seed;
            let mut dq = Dequantizer::new(entry.scale, entry.zero, self.dither, row, entry.blank);
            return rice::decode_in_place(data, out, self.blocksize, |block| dq.apply(block))
                .map_err(|m| {
                    self.loc().data(
                        self.heap_offset + entry.rice.1,
                        format!("tile ({tx}, {ty}): {m}"),
                    )
                });
        }
        match entry.gzip {
            Some(d) if d.0 > 0 => self.gzip_tile(d, index, out),
            _ => Err(self.loc().data(
                self.heap_offset,
                format!("tile ({tx}, {ty}) has no data in COMPRESSED_DATA or GZIP_COMPRESSED_DATA"),
            )),
        }
    }

    /// A losslessly stored tile: gzip of the big-endian float32 pixels.
    fn gzip_tile(&self, d: Descriptor, index: usize, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let at = self.heap_offset + d.1;
        let inflate = self.inflate.ok_or_else(|| {
            self.loc().unsupported(
                at,
                format!("tile {index} is stored in GZIP_COMPRESSED_DATA but no inflate function was set"),
            )
        })?;
        let raw = inflate(self.heap_slice(d, index, "GZIP_COMPRESSED_DATA")?)
            .map_err(|m| self.loc().data(at, format!("tile {index}: gzip: {m}")))?;
        if raw.len() != n * 4 {
            return Err(self.loc().data(
                at,
                format!(
                    "tile {index}: gzip data inflates to {} bytes, expected {} float32 pixels",
                    raw.len(),
                    n
                ),
            ));
        }
        for (o, b) in out.iter_mut().zip(raw.chunks_exact(4)) {
            *o = f32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }

    fn heap_slice(&self, (len, off): Descriptor, index: usize, column: &str) -> Result<&[u8]> {
        let data = self.bytes.as_ref();
        let start = self.heap_offset.saturating_add(off);
        let end = start.saturating_add(len);
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| data.get(s..e))
            .ok_or_else(|| {
                self.loc().truncated(
                    data.len() as u64,
                    format!(
                        "file ends at byte {} but tile {index}'s {column} is at bytes {start}..{end}",
                        data.len()
                    ),
                )
            })
    }

    /// Reads the pixel rectangle at `(x0, y0)` of `w × h` pixels (which must
    /// lie within the image), decoding only the tiles it touches.
    pub fn read_region(&self, x0: usize, y0: usize, w: usize, h: usize) -> Result<Vec<f32>> {
        if x0.checked_add(w).is_none_or(|e| e > self.width)
            || y0.checked_add(h).is_none_or(|e| e > self.height)
        {
            return Err(self.loc().data(
                self.header_offset,
                format!(
                    "region {w}×{h} at ({x0}, {y0}) is not within the {}×{} image",
                    self.width, self.height
                ),
            ));
        }
        let mut out = vec![0f32; w * h];
        if w == 0 || h == 0 {
            return Ok(out);
        }
        for ty in y0 / self.tile_height..=(y0 + h - 1) / self.tile_height {
            for tx in x0 / self.tile_width..=(x0 + w - 1) / self.tile_width {
                let tile = self.decode_tile(tx, ty)?;
                copy_overlap(&tile, self.tile_rect(tx, ty), &mut out, (x0, y0, w, h));
            }
        }
        Ok(out)
    }
}

/// Where the first tile-compressed image HDU's data ends (padded to 2880
/// bytes), from the file's first bytes: the length the file needs. Errors
/// when `prefix` ends before that HDU's header does, so a caller can refuse
/// a remote file far larger than its headers say before fetching it.
pub fn compressed_extent(prefix: &[u8], source: &str) -> Result<u64> {
    let mut offset = 0u64;
    let mut hdu = 0usize;
    loop {
        if offset >= prefix.len() as u64 {
            return Err(Location { source, hdu }.truncated(
                prefix.len() as u64,
                format!(
                    "no tile-compressed image header (ZIMAGE = T) in the first {} bytes",
                    prefix.len()
                ),
            ));
        }
        let h = read_header_at(prefix, offset, hdu, source)?;
        let next = next_header_offset(&h)?;
        if h.logical("ZIMAGE")? == Some(true) {
            return Ok(next);
        }
        offset = next;
        hdu += 1;
    }
}

/// Copies the overlap of a tile (`src`, covering `src_rect`) into a region
/// buffer (`dst`, covering `dst_rect`); rects are `(x0, y0, w, h)`.
pub fn copy_overlap(
    src: &[f32],
    src_rect: (usize, usize, usize, usize),
    dst: &mut [f32],
    dst_rect: (usize, usize, usize, usize),
) {
    let (sx, sy, sw, sh) = src_rect;
    let (dx, dy, dw, dh) = dst_rect;
    let x_lo = sx.max(dx);
    let x_hi = (sx + sw).min(dx + dw);
    let y_lo = sy.max(dy);
    let y_hi = (sy + sh).min(dy + dh);
    if x_lo >= x_hi || y_lo >= y_hi {
        return;
    }
    let n = x_hi - x_lo;
    for y in y_lo..y_hi {
        let s = (y - sy) * sw + (x_lo - sx);
        let d = (y - dy) * dw + (x_lo - dx);
        if let (Some(from), Some(to)) = (src.get(s..s + n), dst.get_mut(d..d + n)) {
            to.copy_from_slice(from);
        }
    }
}

/// What [`TiledImage`] needs from the header and the table rows.
struct Layout {
    width: usize,
    height: usize,
    tile_width: usize,
    tile_height: usize,
    codec: Codec,
    dither: Dither,
    dither_seed: i64,
    blocksize: usize,
    heap_offset: u64,
    tiles: Vec<TileEntry>,
}

/// A table column the decoder reads: byte offset in the row and TFORM.
#[derive(Clone, Copy)]
struct Col {
    offset: usize,
    tform: TForm,
}

impl Layout {
    fn parse(h: &Header<'_>, data: &[u8]) -> Result<Layout> {
        let loc = h.loc;
        let start = h.offset();
        if h.string("XTENSION")?.as_deref() != Some("BINTABLE") {
            return Err(loc.header(start, "ZIMAGE = T but the HDU is not a BINTABLE"));
        }
        let ctype = h.string("ZCMPTYPE")?.unwrap_or_default();
        let zbitpix = h.required_int("ZBITPIX")?.0;
        let codec = match ctype.as_str() {
            "RICE_1" | "RICE_ONE" if zbitpix == -32 => Codec::Rice,
            "RICE_1" | "RICE_ONE" => {
                return Err(loc.unsupported(
                    start,
                    format!("ZBITPIX = {zbitpix}: RICE_1 is read for float32 images (-32) only"),
                ))
            }
            "HCOMPRESS_1" if matches!(zbitpix, 8 | 16 | 32) => {
                if hcompress_smoothing(h)? {
                    return Err(
                        loc.unsupported(start, "HCOMPRESS_1 with SMOOTH != 0 is not supported")
                    );
                }
                Codec::Hcompress {
                    bscale: h.float("BSCALE")?.unwrap_or(1.0),
                    bzero: h.float("BZERO")?.unwrap_or(0.0),
                }
            }
            "HCOMPRESS_1" => {
                return Err(loc.unsupported(
                    start,
                    format!(
                    "ZBITPIX = {zbitpix}: HCOMPRESS_1 is read for integer images (8, 16, 32) only"
                ),
                ))
            }
            _ => {
                return Err(loc.unsupported(
                    start,
                    format!("ZCMPTYPE = '{ctype}': only RICE_1 and HCOMPRESS_1 are supported"),
                ))
            }
        };
        let znaxis = h.required_int("ZNAXIS")?.0;
        if znaxis != 2 {
            return Err(loc.unsupported(
                start,
                format!("ZNAXIS = {znaxis}: only 2-d images are supported"),
            ));
        }
        let width = positive(h, "ZNAXIS1", None)?;
        let height = positive(h, "ZNAXIS2", None)?;
        let tile_width = positive(h, "ZTILE1", Some(width))?;
        let tile_height = positive(h, "ZTILE2", Some(1))?;
        let (blocksize, bytepix) = rice_params(h)?;
        if codec == Codec::Rice && bytepix != 4 {
            return Err(loc.unsupported(
                start,
                format!("BYTEPIX = {bytepix}: only 4-byte Rice coding is supported"),
            ));
        }
        let dither = match h.string("ZQUANTIZ")?.as_deref() {
            None | Some("NO_DITHER") => Dither::None,
            Some("SUBTRACTIVE_DITHER_1") => Dither::Subtractive1,
            Some("SUBTRACTIVE_DITHER_2") => Dither::Subtractive2,
            Some(other) => {
                return Err(loc.unsupported(
                    start,
                    format!("ZQUANTIZ = '{other}' is not a known quantisation method"),
                ))
            }
        };
        // Absent ZDITHER0 is taken as 1, the first valid seed.
        let dither_seed = h.optional_int_in("ZDITHER0", 1..=10_000)?.unwrap_or(1);

        let naxis1 = h.int_in("NAXIS1", 0..=i64::MAX)?.unsigned_abs();
        let nrows = h.int_in("NAXIS2", 0..=i64::MAX)?.unsigned_abs();
        let pcount = h.int_in("PCOUNT", 0..=i64::MAX)?.unsigned_abs();
        let ntiles = width.div_ceil(tile_width) * height.div_ceil(tile_height);
        if nrows != ntiles as u64 {
            return Err(loc.header(
                start,
                format!("NAXIS2 = {nrows} rows but the image has {ntiles} tiles"),
            ));
        }
        let table_len = naxis1
            .checked_mul(nrows)
            .ok_or_else(|| loc.header(start, "table size overflows"))?;
        let theap = h
            .optional_int_in("THEAP", 0..=i64::MAX)?
            .map_or(table_len, |t| t.unsigned_abs());
        let heap_end = table_len.saturating_add(pcount);
        if theap < table_len || theap > heap_end {
            return Err(loc.header(
                start,
                format!("THEAP = {theap} is outside the table's {heap_end} data bytes"),
            ));
        }
        let heap_len = heap_end - theap;
        let heap_offset = h.data_offset.saturating_add(theap);

        let cols = Columns::parse(h, naxis1)?;
        let rows_end = h.data_offset.saturating_add(table_len);
        let rows = usize::try_from(h.data_offset)
            .ok()
            .zip(usize::try_from(rows_end).ok())
            .and_then(|(s, e)| data.get(s..e))
            .ok_or_else(|| {
                loc.truncated(
                    data.len() as u64,
                    format!(
                        "file ends at byte {} inside the tile table (bytes {}..{rows_end})",
                        data.len(),
                        h.data_offset
                    ),
                )
            })?;
        let scale_kw = h.float("ZSCALE")?;
        let zero_kw = h.float("ZZERO")?;
        let blank_kw = h
            .optional_int_in("ZBLANK", i64::from(i32::MIN)..=i64::from(i32::MAX))?
            .map(|b| b as i32);
        let mut tiles = Vec::with_capacity(ntiles);
        for (i, row) in rows.chunks_exact(naxis1 as usize).enumerate() {
            let row_at = h.data_offset + i as u64 * naxis1;
            let check = |d: Descriptor, col: &Col, name: &str| -> Result<Descriptor> {
                if d.0.checked_add(d.1).is_none_or(|e| e > heap_len) {
                    return Err(loc.data(
                        row_at + col.offset as u64,
                        format!(
                            "tile {i}: {name} descriptor (length {}, offset {}) points outside the {heap_len}-byte heap",
                            d.0, d.1
                        ),
                    ));
                }
                Ok(d)
            };
            let rice = check(descriptor(row, &cols.data), &cols.data, "COMPRESSED_DATA")?;
            let gzip = cols
                .gzip
                .as_ref()
                .map(|c| check(descriptor(row, c), c, "GZIP_COMPRESSED_DATA"))
                .transpose()?;
            // Integer tiles are not quantised: no ZSCALE or ZZERO.
            let unquantised = matches!(codec, Codec::Hcompress { .. });
            let scale = match (&cols.scale, scale_kw) {
                (Some(c), _) => number(row, c),
                (None, Some(v)) => v,
                (None, None) if unquantised => 1.0,
                (None, None) => return Err(h.missing("ZSCALE")),
            };
            let zero = match (&cols.zero, zero_kw) {
                (Some(c), _) => number(row, c),
                (None, Some(v)) => v,
                (None, None) if unquantised => 0.0,
                (None, None) => return Err(h.missing("ZZERO")),
            };
            let blank = match &cols.blank {
                Some(c) => Some(number(row, c) as i32),
                None => blank_kw,
            };
            tiles.push(TileEntry {
                rice,
                gzip,
                scale,
                zero,
                blank,
            });
        }
        Ok(Layout {
            width,
            height,
            tile_width,
            tile_height,
            codec,
            dither,
            dither_seed,
            blocksize,
            heap_offset,
            tiles,
        })
    }
}

/// A required (or defaulted) positive integer keyword.
fn positive(h: &Header<'_>, key: &str, default: Option<usize>) -> Result<usize> {
    let v = match (h.optional_int_in(key, 1..=i64::from(u32::MAX))?, default) {
        (Some(v), _) => v as usize,
        (None, Some(d)) => d,
        (None, None) => return Err(h.missing(key)),
    };
    Ok(v)
}

/// Whether the `ZNAMEi`/`ZVALi` pairs ask HCOMPRESS to smooth (`SMOOTH`).
fn hcompress_smoothing(h: &Header<'_>) -> Result<bool> {
    for i in 1..=999 {
        let Some(name) = h.string(&format!("ZNAME{i}"))? else {
            return Ok(false);
        };
        if name == "SMOOTH" {
            return Ok(h.integer(&format!("ZVAL{i}"))?.unwrap_or(0) != 0);
        }
    }
    Ok(false)
}

/// `BLOCKSIZE` and `BYTEPIX` from the `ZNAMEi`/`ZVALi` pairs (defaults 32, 4).
fn rice_params(h: &Header<'_>) -> Result<(usize, i64)> {
    let mut blocksize = 32;
    let mut bytepix = 4;
    for i in 1..=999 {
        let Some(name) = h.string(&format!("ZNAME{i}"))? else {
            break;
        };
        if name != "BLOCKSIZE" && name != "BYTEPIX" {
            continue;
        }
        // Other ZVALs (e.g. NOISEBIT) may be floats; only read these two.
        let value = h.integer(&format!("ZVAL{i}"))?;
        match (name.as_str(), value) {
            ("BLOCKSIZE", Some(v)) if (1..=1 << 16).contains(&v) => blocksize = v as usize,
            ("BYTEPIX", Some(v)) => bytepix = v,
            ("BLOCKSIZE", _) => {
                return Err(h.loc.header(
                    h.offset(),
                    format!("ZVAL{i} (BLOCKSIZE) = {value:?} is not a valid block size"),
                ))
            }
            _ => {}
        }
    }
    Ok((blocksize, bytepix))
}

/// The columns the decoder reads.
struct Columns {
    data: Col,
    gzip: Option<Col>,
    scale: Option<Col>,
    zero: Option<Col>,
    blank: Option<Col>,
}

impl Columns {
    fn parse(h: &Header<'_>, naxis1: u64) -> Result<Columns> {
        let loc = h.loc;
        let tfields = h.int_in("TFIELDS", 0..=999)?;
        let mut offset = 0usize;
        let (mut data, mut gzip, mut scale, mut zero, mut blank) = (None, None, None, None, None);
        for n in 1..=tfields {
            let (text, at) = h.required_string(&format!("TFORM{n}"))?;
            let tform = TForm::parse_str(&text).map_err(|m| loc.header(at, m))?;
            let col = Col { offset, tform };
            let name = h.string(&format!("TTYPE{n}"))?.unwrap_or_default();
            let want = |ok: bool, what: &str| -> Result<Option<Col>> {
                if ok {
                    Ok(Some(col))
                } else {
                    Err(loc.unsupported(
                        at,
                        format!("column {name} has TFORM '{text}'; expected {what}"),
                    ))
                }
            };
            let heap_bytes = matches!(tform.code, 'P' | 'Q')
                && tform.repeat == 1
                && text.trim().trim_start_matches('1').get(1..2) == Some("B");
            match name.trim() {
                "COMPRESSED_DATA" => data = want(heap_bytes, "1PB or 1QB")?,
                "GZIP_COMPRESSED_DATA" => gzip = want(heap_bytes, "1PB or 1QB")?,
                "ZSCALE" => {
                    scale = want(
                        tform
                            == TForm {
                                repeat: 1,
                                code: 'D',
                            },
                        "1D",
                    )?
                }
                "ZZERO" => {
                    zero = want(
                        tform
                            == TForm {
                                repeat: 1,
                                code: 'D',
                            },
                        "1D",
                    )?
                }
                "ZBLANK" => {
                    blank = want(
                        tform
                            == TForm {
                                repeat: 1,
                                code: 'J',
                            },
                        "1J",
                    )?
                }
                _ => {}
            }
            offset = tform
                .checked_width()
                .and_then(|w| offset.checked_add(w))
                .ok_or_else(|| loc.header(at, "the TFORMs add up to too many bytes"))?;
        }
        if offset as u64 != naxis1 {
            return Err(loc.header(
                h.offset(),
                format!("NAXIS1 = {naxis1} but the TFORMs add up to {offset} bytes"),
            ));
        }
        let data = data.ok_or_else(|| {
            loc.header(h.offset(), "compressed image has no COMPRESSED_DATA column")
        })?;
        Ok(Columns {
            data,
            gzip,
            scale,
            zero,
            blank,
        })
    }
}

/// A `1PB` (two big-endian u32) or `1QB` (two u64) heap descriptor.
fn descriptor(row: &[u8], col: &Col) -> Descriptor {
    let o = col.offset;
    let be = |range: std::ops::Range<usize>| {
        row.get(range).map_or(0, |b| {
            b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x))
        })
    };
    match col.tform.code {
        'Q' => (be(o..o + 8), be(o + 8..o + 16)),
        _ => (be(o..o + 4), be(o + 4..o + 8)),
    }
}

/// A `1D` or `1J` value as f64 (columns were checked by [`Columns::parse`]).
fn number(row: &[u8], col: &Col) -> f64 {
    let o = col.offset;
    match col.tform.code {
        'J' => row.get(o..o + 4).map_or(0.0, |b| {
            f64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }),
        _ => row.get(o..o + 8).map_or(f64::NAN, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            f64::from_be_bytes(a)
        }),
    }
}
