//! Rice decoding of 32-bit integers, as in the FITS tiled-image convention's
//! `RICE_1` (Pence, Seaman & White 2009; White & Greenfield 1999).
//!
//! Stream layout: the first value as 4 big-endian bytes, then blocks of
//! `blocksize` pixel differences. Each block starts with a 5-bit code `fs + 1`:
//! 0 means every difference is zero, 26 means differences are stored raw in
//! 32 bits, anything else means each difference is a unary-coded high part
//! (zeros ended by a one) followed by `fs` low bits. Differences are zigzag
//! mapped (even → non-negative, odd → negative) and accumulate modulo 2^32.
//!
//! The decoder keeps 57 to 63 bits in a 64-bit word refilled eight bytes at
//! a time, so a typical pixel (a unary run and its low bits within the
//! word) costs one leading-zero count and three shifts, with no branch per
//! bit; long runs and the last bytes of a stream take a slower path.

/// Bits of the per-block code for 32-bit pixels.
const FS_BITS: u32 = 5;
/// The code value (minus one) that marks a block of raw 32-bit differences.
const FS_MAX: i64 = 25;

/// Reads bits most-significant first from a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Loaded bits, left-aligned. Bits below the first `len` are either zero
    /// or the true bits of the bytes that follow, so OR-ing a reload is exact.
    buf: u64,
    /// Number of valid bits in `buf` (at most 63).
    len: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            buf: 0,
            len: 0,
        }
    }

    /// Tops `buf` up to at least 57 valid bits where the data allows.
    /// Away from the stream's end there is no branch on `len`: the next
    /// eight bytes are loaded every time and only whole missing bytes are
    /// taken (none when `len` is already above 56), which costs less than
    /// the mispredictions of testing first.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let w = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.buf |= w >> self.len;
            let bytes = (63 - self.len) >> 3;
            self.pos += bytes as usize;
            self.len += bytes << 3;
        } else {
            self.refill_tail();
        }
    }

    /// The last bytes of the stream, one at a time.
    #[cold]
    fn refill_tail(&mut self) {
        // At most 63 bits, as in `refill`: a shift by `len` stays in range.
        while self.len <= 55 {
            let Some(&b) = self.data.get(self.pos) else {
                return;
            };
            self.buf |= u64::from(b) << (56 - self.len);
            self.len += 8;
            self.pos += 1;
        }
    }

    /// The next `n` bits (0 ≤ n ≤ 32) as an integer.
    #[inline(always)]
    fn read(&mut self, n: u32) -> Result<u32, String> {
        if n == 0 {
            return Ok(0);
        }
        if self.len < n {
            self.refill();
            if self.len < n {
                return Err(self.ended());
            }
        }
        let v = (self.buf >> (64 - n)) as u32;
        self.buf <<= n;
        self.len -= n;
        Ok(v)
    }

    /// Counts zero bits up to the next one bit, consuming both.
    fn unary(&mut self) -> Result<u64, String> {
        let mut zeros = 0u64;
        loop {
            if self.len == 0 {
                self.refill();
                if self.len == 0 {
                    return Err(self.ended());
                }
            }
            let z = self.buf.leading_zeros();
            if z < self.len {
                self.buf = self.buf << z << 1;
                self.len -= z + 1;
                return Ok(zeros + u64::from(z));
            }
            // Runs can be long: an outlier in a quiet block is coded in unary.
            zeros += u64::from(self.len);
            self.buf = 0;
            self.len = 0;
        }
    }

    /// One difference of a block with `fs` low bits (fs ≤ 24).
    #[inline(always)]
    fn difference(&mut self, fs: u32) -> Result<u32, String> {
        self.refill();
        let z = self.buf.leading_zeros();
        let used = z + 1 + fs;
        if used <= self.len {
            // The whole code is in the word, and used ≤ len ≤ 63 keeps
            // every shift in range. The next code's bits depend on one
            // shift of `buf`; the low bits are taken off that path.
            let low = ((self.buf << z << 1) >> 1) >> (63 - fs);
            self.buf <<= used;
            self.len -= used;
            let d = (u64::from(z) << fs) | low;
            return u32::try_from(d).map_err(|_| self.too_big());
        }
        self.difference_slow(fs)
    }

    #[cold]
    fn difference_slow(&mut self, fs: u32) -> Result<u32, String> {
        let high = self.unary()?;
        let low = u64::from(self.read(fs)?);
        high.checked_mul(1 << fs)
            .and_then(|h| u32::try_from(h | low).ok())
            .ok_or_else(|| self.too_big())
    }

    fn too_big(&self) -> String {
        format!(
            "corrupt Rice data: a difference exceeds 32 bits near byte {}",
            self.pos + 4
        )
    }

    fn ended(&self) -> String {
        format!(
            "Rice data ends after {} bytes, before all pixels were decoded",
            self.data.len() + 4
        )
    }
}

/// Undoes the zigzag mapping of a difference.
#[inline(always)]
fn unzigzag(d: u32) -> u32 {
    (d >> 1) ^ 0u32.wrapping_sub(d & 1)
}

/// Decodes `out.len()` pixels compressed with 32-bit Rice coding in blocks
/// of `blocksize` pixels. Each decoded integer is stored as the bits of an
/// `f32` (`f32::from_bits(v as u32)`), and `block` is called on each block
/// as soon as it is decoded, while it is in the first-level cache, to turn
/// the integers into pixel values in place. The error message says what is
/// wrong. Never inlined: it runs once per tile, and a profile then shows
/// decoding apart from its callers.
#[inline(never)]
pub(crate) fn decode_in_place(
    input: &[u8],
    out: &mut [f32],
    blocksize: usize,
    mut block: impl FnMut(&mut [f32]),
) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    if blocksize == 0 {
        return Err("Rice block size is 0".to_owned());
    }
    let first = input
        .get(..4)
        .ok_or_else(|| format!("Rice data is {} bytes, too short", input.len()))?;
    let mut last = u32::from_be_bytes([first[0], first[1], first[2], first[3]]);
    let mut bits = Bits::new(input.get(4..).unwrap_or_default());
    for chunk in out.chunks_mut(blocksize) {
        let fs = i64::from(bits.read(FS_BITS)?) - 1;
        if fs < 0 {
            chunk.fill(f32::from_bits(last));
        } else if fs == FS_MAX {
            for px in chunk.iter_mut() {
                last = last.wrapping_add(unzigzag(bits.read(32)?));
                *px = f32::from_bits(last);
            }
        } else if fs > FS_MAX {
            return Err(format!(
                "corrupt Rice data: block code {} is out of range near byte {}",
                fs + 1,
                bits.pos + 4
            ));
        } else {
            let fs = fs as u32;
            for px in chunk.iter_mut() {
                last = last.wrapping_add(unzigzag(bits.difference(fs)?));
                *px = f32::from_bits(last);
            }
        }
        block(chunk);
    }
    Ok(())
}

/// Decodes `out.len()` integers (see [`decode_in_place`]).
#[cfg(test)]
pub(crate) fn decode_i32(input: &[u8], out: &mut [i32], blocksize: usize) -> Result<(), String> {
    let mut bits = vec![0f32; out.len()];
    decode_in_place(input, &mut bits, blocksize, |_| {})?;
    for (o, b) in out.iter_mut().zip(&bits) {
        *o = b.to_bits() as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal MSB-first bit writer to build streams by hand.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        nbits: usize,
    }

    impl Writer {
        fn put(&mut self, value: u64, n: usize) {
            for i in (0..n).rev() {
                if self.nbits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (value >> i) & 1 == 1 {
                    let last = self.bytes.len() - 1;
                    self.bytes[last] |= 0x80 >> (self.nbits % 8);
                }
                self.nbits += 1;
            }
        }
    }

    fn zigzag(d: i32) -> u32 {
        if d >= 0 {
            (d as u32) << 1
        } else {
            ((!d) as u32) << 1 | 1
        }
    }

    #[test]
    fn zigzag_round_trips() {
        for d in [0, 1, -1, 2, -2, i32::MAX, i32::MIN, 12345, -54321] {
            assert_eq!(unzigzag(zigzag(d)) as i32, d);
        }
    }

    #[test]
    fn decodes_all_three_block_kinds() {
        let mut w = Writer::default();
        w.put(100, 32); // first pixel
                        // Block 1 (4 pixels): all equal to 100.
        w.put(0, 5);
        // Block 2: fs = 2, differences 3, -1, 0, 5.
        w.put(3, 5);
        for d in [3, -1, 0, 5] {
            let z = zigzag(d);
            w.put(0, (z >> 2) as usize);
            w.put(1, 1);
            w.put(u64::from(z & 3), 2);
        }
        // Block 3: raw differences.
        w.put(26, 5);
        for d in [i32::MIN, 7, -7, 1] {
            w.put(u64::from(zigzag(d)), 32);
        }
        let mut out = [0i32; 12];
        decode_i32(&w.bytes, &mut out, 4).unwrap();
        let mut expect = vec![100, 100, 100, 100];
        let mut last = 100i32;
        for d in [3, -1, 0, 5, i32::MIN, 7, -7, 1] {
            last = last.wrapping_add(d);
            expect.push(last);
        }
        assert_eq!(out.to_vec(), expect);
    }

    #[test]
    fn short_input_is_an_error() {
        let mut out = [0i32; 64];
        assert!(decode_i32(&[0, 0], &mut out, 32).is_err());
        assert!(decode_i32(&[0, 0, 0, 1, 0x20], &mut out, 32).is_err());
        // A block code beyond 26.
        assert!(decode_i32(&[0, 0, 0, 1, 0xf8, 0, 0, 0], &mut out, 32).is_err());
    }
}
