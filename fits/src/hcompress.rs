//! HCOMPRESS_1 tile decoding, as the FITS tiled-image convention defines
//! it (White 1992; Pence et al. 2009): the H-transform coefficients of an
//! integer tile are coded as bit planes, each plane of each quadrant as a
//! quadtree of 4-bit nybbles under a fixed Huffman code (or stored
//! directly), then one sign bit per non-zero coefficient; decoding
//! rebuilds the coefficients and inverts the H-transform. With `SCALE = 0`
//! (what DR10's maskbits use) the round trip is lossless.
//!
//! Layout of a tile's bytes: the magic `DD 99`; `nx`, `ny`, `scale`
//! (big-endian 32-bit); the sum of all pixels (big-endian 64-bit); the bit
//! plane counts of the three quadrant kinds (one byte each); then the bit
//! stream, most significant bit first. `nx` counts rows and `ny` columns
//! (columns vary fastest, as FITS axis 1 does).

/// A decoded tile: `rows × cols` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<i64>,
}

const MAGIC: [u8; 2] = [0xDD, 0x99];
/// Bytes before the bit stream.
const HEADER_LEN: usize = 2 + 4 * 3 + 8 + 3;

/// Decodes one HCOMPRESS_1 tile. `smooth` is `ZVAL2` (SMOOTH); smoothing
/// on decode is not supported (writers default to 0).
pub fn decode(bytes: &[u8], smooth: bool) -> Result<Tile, String> {
    if smooth {
        return Err("HCOMPRESS smoothing on decode (SMOOTH != 0) is not supported".into());
    }
    if bytes.len() < HEADER_LEN || bytes[..2] != MAGIC {
        return Err("not an HCOMPRESS stream (no DD 99 magic)".into());
    }
    let int =
        |at: usize| i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (nx, ny, scale) = (int(2), int(6), int(10));
    if nx <= 0 || ny <= 0 || (nx as i64) * (ny as i64) > 1 << 26 {
        return Err(format!("HCOMPRESS tile of {nx} x {ny} pixels"));
    }
    let sum_all = i64::from_be_bytes(bytes[14..22].try_into().map_err(|_| "short header")?);
    let planes = [bytes[22], bytes[23], bytes[24]];
    if planes.iter().any(|&p| p > 62) {
        return Err(format!("HCOMPRESS stream: {planes:?} bit planes"));
    }
    let (nx, ny) = (nx as usize, ny as usize);
    let mut a = vec![0i64; nx * ny];
    let mut bits = Bits::new(&bytes[HEADER_LEN..]);
    decode_coefficients(&mut bits, &mut a, nx, ny, planes)?;
    a[0] = sum_all;
    if scale > 1 {
        for v in a.iter_mut() {
            *v = v.wrapping_mul(i64::from(scale));
        }
    }
    inverse_h_transform(&mut a, nx, ny);
    Ok(Tile {
        rows: nx,
        cols: ny,
        values: a,
    })
}

/// The bit stream, most significant bit of each byte first.
struct Bits<'a> {
    data: &'a [u8],
    next: usize,
    byte: u32,
    left: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            next: 0,
            byte: 0,
            left: 0,
        }
    }

    /// Drops what is left of the current byte: the next read starts a new one.
    fn align(&mut self) {
        self.left = 0;
    }

    fn bit(&mut self) -> Result<u32, String> {
        if self.left == 0 {
            let b = self
                .data
                .get(self.next)
                .ok_or("HCOMPRESS stream ends early")?;
            self.byte = u32::from(*b);
            self.next += 1;
            self.left = 8;
        }
        self.left -= 1;
        Ok((self.byte >> self.left) & 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn nybble(&mut self) -> Result<u8, String> {
        Ok(self.bits(4)? as u8)
    }

    /// One 4-bit quadtree value under the format's fixed Huffman code:
    /// 1, 2, 4, 8 in 3 bits; 3, 5, 10, 12, 15 in 4; 6, 7, 9, 11, 13 in 5;
    /// 0 and 14 in 6.
    fn huffman(&mut self) -> Result<u8, String> {
        let c = self.bits(3)?;
        if c < 4 {
            return Ok(1 << c);
        }
        let c = (c << 1) | self.bit()?;
        match c {
            8 => return Ok(3),
            9 => return Ok(5),
            10 => return Ok(10),
            11 => return Ok(12),
            12 => return Ok(15),
            _ => {}
        }
        let c = (c << 1) | self.bit()?;
        match c {
            26 => return Ok(6),
            27 => return Ok(7),
            28 => return Ok(9),
            29 => return Ok(11),
            30 => return Ok(13),
            _ => {}
        }
        let c = (c << 1) | self.bit()?;
        Ok(if c == 62 { 0 } else { 14 })
    }
}

/// Fills `a` (`nx` rows of `ny`) with the coefficient magnitudes of the four
/// quadrants, then their signs.
fn decode_coefficients(
    bits: &mut Bits<'_>,
    a: &mut [i64],
    nx: usize,
    ny: usize,
    planes: [u8; 3],
) -> Result<(), String> {
    let (nx2, ny2) = (nx.div_ceil(2), ny.div_ceil(2));
    let quadrants = [
        (0, nx2, ny2, planes[0]),
        (ny2, nx2, ny / 2, planes[1]),
        (ny * nx2, nx / 2, ny2, planes[1]),
        (ny * nx2 + ny2, nx / 2, ny / 2, planes[2]),
    ];
    for (offset, qx, qy, n) in quadrants {
        let quadrant = if qx == 0 || qy == 0 {
            &mut []
        } else {
            &mut a[offset..]
        };
        quadtree_decode(bits, quadrant, ny, qx, qy, n)?;
    }
    if bits.nybble()? != 0 {
        return Err("HCOMPRESS stream: no end code after the bit planes".into());
    }
    bits.align();
    for v in a.iter_mut() {
        if *v != 0 && bits.bit()? == 1 {
            *v = -*v;
        }
    }
    Ok(())
}

/// `ceil(log2(n))` for n ≥ 1, 0 for n ≤ 1.
fn log2_ceil(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// Reads the bit planes of one quadrant (`qx` rows of `qy`, stride `n` in
/// `a`), most significant plane first.
fn quadtree_decode(
    bits: &mut Bits<'_>,
    a: &mut [i64],
    n: usize,
    qx: usize,
    qy: usize,
    planes: u8,
) -> Result<(), String> {
    if qx == 0 || qy == 0 {
        return if planes == 0 {
            Ok(())
        } else {
            Err("HCOMPRESS stream: bit planes for an empty quadrant".into())
        };
    }
    let log2n = log2_ceil(qx.max(qy));
    let mut scratch = vec![0u8; qx.div_ceil(2) * qy.div_ceil(2)];
    for bit in (0..u32::from(planes)).rev() {
        match bits.nybble()? {
            // The plane stored directly, four pixels a nybble.
            0 => {
                for s in scratch.iter_mut() {
                    *s = bits.nybble()?;
                }
            }
            0xF => {
                scratch[0] = bits.huffman()?;
                let (mut nx, mut ny, mut fx, mut fy) = (1usize, 1usize, qx, qy);
                let mut c = 1usize << log2n;
                for _ in 1..log2n {
                    c >>= 1;
                    nx <<= 1;
                    ny <<= 1;
                    if fx <= c {
                        nx -= 1;
                    } else {
                        fx -= c;
                    }
                    if fy <= c {
                        ny -= 1;
                    } else {
                        fy -= c;
                    }
                    quadtree_expand(bits, &mut scratch, nx, ny)?;
                }
            }
            other => {
                return Err(format!(
                    "HCOMPRESS stream: bit plane code {other:#x} is neither 0 nor 0xf"
                ))
            }
        }
        insert_bits(&scratch, qx, qy, a, n, bit);
    }
    Ok(())
}

/// Spreads each 4-bit value of the `(nx+1)/2 × (ny+1)/2` level into its
/// 2×2 block of the `nx × ny` level (in place, stride `ny`), then reads a
/// new 4-bit value for every non-zero cell, last cell first.
fn quadtree_expand(bits: &mut Bits<'_>, b: &mut [u8], nx: usize, ny: usize) -> Result<(), String> {
    let (nx2, ny2) = (nx.div_ceil(2), ny.div_ceil(2));
    if b.len() < nx * ny {
        return Err("HCOMPRESS stream: quadtree larger than its quadrant".into());
    }
    // Backwards, so that the source values are read before they are overwritten.
    for i in (0..nx2).rev() {
        for j in (0..ny2).rev() {
            b[2 * (ny * i + j)] = b[ny2 * i + j];
        }
    }
    // Each value, now at its block's top-left cell, becomes one bit a cell.
    for_each_block(nx, ny, ny, |_, cells| {
        let v = b[cells[0].0];
        for &(at, shift) in cells {
            b[at] = (v >> shift) & 1;
        }
    });
    for k in (0..nx * ny).rev() {
        if b[k] != 0 {
            b[k] = bits.huffman()?;
        }
    }
    Ok(())
}

/// ORs bit plane `bit` of the `nx × ny` quadrant (stride `n` in `a`) from
/// 4-bit values, one per 2×2 block, row-major over the blocks.
fn insert_bits(values: &[u8], nx: usize, ny: usize, a: &mut [i64], n: usize, bit: u32) {
    for_each_block(nx, ny, n, |k, cells| {
        for &(at, shift) in cells {
            a[at] |= i64::from((values[k] >> shift) & 1) << bit;
        }
    });
}

/// Visits the 2×2 blocks of an `nx × ny` grid (row stride `n`) row-major,
/// with each block's index and its cells, each with the bit of the block's
/// 4-bit value it takes: 3 top-left, 2 top-right, 1 bottom-left, 0
/// bottom-right. Cells past an odd edge are left out.
fn for_each_block(nx: usize, ny: usize, n: usize, mut f: impl FnMut(usize, &[(usize, u32)])) {
    let mut k = 0;
    for i in (0..nx).step_by(2) {
        for j in (0..ny).step_by(2) {
            let s00 = n * i + j;
            let mut cells = [(s00, 3), (0, 0), (0, 0), (0, 0)];
            let mut m = 1;
            if j + 1 < ny {
                cells[m] = (s00 + 1, 2);
                m += 1;
            }
            if i + 1 < nx {
                cells[m] = (s00 + n, 1);
                m += 1;
                if j + 1 < ny {
                    cells[m] = (s00 + n + 1, 0);
                    m += 1;
                }
            }
            f(k, &cells[..m]);
            k += 1;
        }
    }
}

/// Moves the first half of the `len` elements at stride `stride` to the
/// even positions and the second half to the odd ones.
fn unshuffle(a: &mut [i64], start: usize, len: usize, stride: usize, tmp: &mut Vec<i64>) {
    let half = len.div_ceil(2);
    tmp.clear();
    tmp.extend((half..len).map(|i| a[start + i * stride]));
    for i in (0..half).rev() {
        a[start + 2 * i * stride] = a[start + i * stride];
    }
    for (k, v) in tmp.iter().enumerate() {
        a[start + (2 * k + 1) * stride] = *v;
    }
}

/// Rounds `v` to a multiple of the mask's unit: `rnd` added first
/// (`prnd` for v ≥ 0, `nrnd` below), then the low bits cleared.
fn round(v: i64, prnd: i64, nrnd: i64, mask: i64) -> i64 {
    v.wrapping_add(if v >= 0 { prnd } else { nrnd }) & mask
}

/// The inverse H-transform of `a` (`nx` rows of `ny`), in place.
fn inverse_h_transform(a: &mut [i64], nx: usize, ny: usize) {
    let log2n = log2_ceil(nx.max(ny));
    if log2n == 0 {
        return;
    }
    let mut tmp = Vec::with_capacity(nx.max(ny).div_ceil(2));
    let mut shift = 1;
    let mut bit0: i64 = 1 << (log2n - 1);
    let mut bit1 = bit0 << 1;
    let mut mask0 = -bit0;
    let mut mask1 = mask0 << 1;
    let mask2 = mask0 << 2;
    let mut prnd0 = bit0 >> 1;
    let mut prnd1 = bit1 >> 1;
    let prnd2 = (bit0 << 2) >> 1;
    let mut nrnd0 = prnd0 - 1;
    let mut nrnd1 = prnd1 - 1;
    let nrnd2 = prnd2 - 1;
    a[0] = round(a[0], prnd2, nrnd2, mask2);

    let (mut nxtop, mut nytop, mut nxf, mut nyf) = (1usize, 1usize, nx, ny);
    let mut c = 1usize << log2n;
    for k in (0..log2n).rev() {
        c >>= 1;
        nxtop <<= 1;
        nytop <<= 1;
        if nxf <= c {
            nxtop -= 1;
        } else {
            nxf -= c;
        }
        if nyf <= c {
            nytop -= 1;
        } else {
            nyf -= c;
        }
        // The last pass divides by 4 and rounds hc's low bit to nothing.
        if k == 0 {
            nrnd0 = 0;
            shift = 2;
        }
        for i in 0..nxtop {
            unshuffle(a, ny * i, nytop, 1, &mut tmp);
        }
        for j in 0..nytop {
            unshuffle(a, j, nxtop, ny, &mut tmp);
        }
        let (oddx, oddy) = (nxtop % 2, nytop % 2);
        let mut i = 0;
        while i + oddx < nxtop {
            let mut s00 = ny * i;
            let mut s10 = s00 + ny;
            let mut j = 0;
            while j + oddy < nytop {
                let mut h0 = a[s00];
                let mut hx = round(a[s10], prnd1, nrnd1, mask1);
                let mut hy = round(a[s00 + 1], prnd1, nrnd1, mask1);
                let hc = round(a[s10 + 1], prnd0, nrnd0, mask0);
                // hc's lowest kept bit belongs to hx and hy.
                let low0 = hc & bit0;
                hx = if hx >= 0 {
                    hx.wrapping_sub(low0)
                } else {
                    hx.wrapping_add(low0)
                };
                hy = if hy >= 0 {
                    hy.wrapping_sub(low0)
                } else {
                    hy.wrapping_add(low0)
                };
                // And the next bit of hc ^ hx ^ hy to h0, signs kept exact.
                let low1 = (hc ^ hx ^ hy) & bit1;
                h0 = if h0 >= 0 {
                    h0.wrapping_add(low0 - low1)
                } else if low0 == 0 {
                    h0.wrapping_add(low1)
                } else {
                    h0.wrapping_add(low0 - low1)
                };
                let (sx, dx) = (h0.wrapping_add(hx), h0.wrapping_sub(hx));
                let (sc, dc) = (hy.wrapping_add(hc), hy.wrapping_sub(hc));
                a[s10 + 1] = sx.wrapping_add(sc) >> shift;
                a[s10] = sx.wrapping_sub(sc) >> shift;
                a[s00 + 1] = dx.wrapping_add(dc) >> shift;
                a[s00] = dx.wrapping_sub(dc) >> shift;
                s00 += 2;
                s10 += 2;
                j += 2;
            }
            if oddy == 1 {
                let h0 = a[s00];
                let hx = round(a[s10], prnd1, nrnd1, mask1);
                let low1 = hx & bit1;
                let h0 = if h0 >= 0 {
                    h0.wrapping_sub(low1)
                } else {
                    h0.wrapping_add(low1)
                };
                a[s10] = h0.wrapping_add(hx) >> shift;
                a[s00] = h0.wrapping_sub(hx) >> shift;
            }
            i += 2;
        }
        if oddx == 1 {
            let mut s00 = ny * i;
            let mut j = 0;
            while j + oddy < nytop {
                let h0 = a[s00];
                let hy = round(a[s00 + 1], prnd1, nrnd1, mask1);
                let low1 = hy & bit1;
                let h0 = if h0 >= 0 {
                    h0.wrapping_sub(low1)
                } else {
                    h0.wrapping_add(low1)
                };
                a[s00 + 1] = h0.wrapping_add(hy) >> shift;
                a[s00] = h0.wrapping_sub(hy) >> shift;
                s00 += 2;
                j += 2;
            }
            if oddy == 1 {
                a[s00] >>= shift;
            }
        }
        bit1 = bit0;
        bit0 >>= 1;
        mask1 = mask0;
        mask0 >>= 1;
        prnd1 = prnd0;
        prnd0 >>= 1;
        nrnd1 = nrnd0;
        nrnd0 = prnd0 - 1;
    }
}
