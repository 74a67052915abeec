//! The viewer's cutout file: a primary HDU holding a float32 cube, and,
//! when the request says `invvar`, an image extension holding the inverse
//! variance cube on the same grid.
//!
//! Layout (as the viewer writes it): `BITPIX = -32`, `NAXIS = 3`,
//! `NAXIS1 = NAXIS2 = size`, `NAXIS3 = len(bands)`, `BANDS = 'grz'`, and a TAN
//! WCS centred on the target. Pixels are big-endian float32 in nanomaggies;
//! FITS axis 1 varies fastest, so the data is plane-major then row-major:
//! CHW with rows along FITS axis 2. The viewer marks the cubes with
//! `IMAGETYP = 'IMAGE'` and `'INVVAR'` (legacysurvey/imagine, `write_cutout`),
//! and writes the invvar HDU only for layers that have invvar files.

use std::collections::HashMap;

/// FITS block size: headers and data are padded to multiples of it.
pub const BLOCK: usize = 2880;
const CARD: usize = 80;

/// Why a cutout file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitsError {
    #[error("not a FITS file (no SIMPLE = T at byte 0)")]
    NotFits,
    #[error("what follows the image is not an image extension (no XTENSION = 'IMAGE')")]
    NotImageExtension,
    #[error("header has no END card within {0} bytes")]
    NoEnd(usize),
    #[error("missing or malformed header card {0}")]
    MissingCard(&'static str),
    #[error("header card {key} is {found}, expected {expected}")]
    Mismatch {
        key: &'static str,
        found: String,
        expected: String,
    },
    #[error("data truncated: {have} bytes after the header, need {need}")]
    Truncated { have: usize, need: usize },
    #[error("image of {got} values does not match {size}x{size}x{planes}")]
    WrongLength {
        got: usize,
        size: usize,
        planes: usize,
    },
}

/// What goes into the header of an encoded cutout.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutGeometry {
    pub ra: f64,
    pub dec: f64,
    pub size: usize,
    pub pixscale: f64,
    pub bands: String,
}

/// A parsed header: keyword -> raw value text (strings unquoted).
#[derive(Debug, Clone, Default)]
pub struct Header {
    cards: HashMap<String, String>,
    /// Bytes taken by the header blocks (where the data starts).
    pub data_offset: usize,
}

impl Header {
    /// The raw value of a card (string values without quotes, trailing
    /// blanks removed).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.cards.get(key).map(String::as_str)
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.replace(['D', 'd'], "E").parse().ok()
    }
}

/// Encodes a cutout the way the viewer does. `data` is CHW, `size*size*bands`.
pub fn encode(geom: &CutoutGeometry, data: &[f32]) -> Result<Vec<u8>, FitsError> {
    encode_hdu(geom, Hdu::Primary, Data::Float(data))
}

/// Encodes a cutout with the extra HDUs the viewer adds when a request has
/// `invvar` (the invvar cube) and `maskbits` (one int32 plane), in that
/// order, each only when given.
pub fn encode_planes(geom: &CutoutGeometry, planes: &Planes) -> Result<Vec<u8>, FitsError> {
    let mut out = encode(geom, &planes.image)?;
    if let Some(invvar) = &planes.invvar {
        out.extend(encode_hdu(geom, Hdu::Invvar, Data::Float(invvar))?);
    }
    if let Some(bits) = &planes.maskbits {
        out.extend(encode_hdu(geom, Hdu::Maskbits, Data::Int(bits))?);
    }
    Ok(out)
}

/// Which HDU of the answer is encoded.
#[derive(Clone, Copy, PartialEq)]
enum Hdu {
    Primary,
    Invvar,
    Maskbits,
}

impl Hdu {
    fn imagetyp(self) -> &'static str {
        match self {
            Hdu::Primary => "IMAGE",
            Hdu::Invvar => "INVVAR",
            Hdu::Maskbits => "MASKBITS",
        }
    }
}

/// An HDU's pixels: float32 cubes, or the int32 maskbits plane.
enum Data<'a> {
    Float(&'a [f32]),
    Int(&'a [i32]),
}

fn encode_hdu(geom: &CutoutGeometry, hdu: Hdu, data: Data<'_>) -> Result<Vec<u8>, FitsError> {
    let planes = match data {
        Data::Float(_) => geom.bands.chars().count(),
        Data::Int(_) => 1,
    };
    let len = match data {
        Data::Float(v) => v.len(),
        Data::Int(v) => v.len(),
    };
    if len != geom.size * geom.size * planes {
        return Err(FitsError::WrongLength {
            got: len,
            size: geom.size,
            planes,
        });
    }
    let crpix = (geom.size as f64 + 1.0) / 2.0;
    let cd = geom.pixscale / 3600.0;
    let mut cards = vec![match hdu {
        Hdu::Primary => logical("SIMPLE", true),
        _ => string("XTENSION", "IMAGE"),
    }];
    match data {
        Data::Float(_) => cards.extend([
            int("BITPIX", -32),
            int("NAXIS", 3),
            int("NAXIS1", geom.size as i64),
            int("NAXIS2", geom.size as i64),
            int("NAXIS3", planes as i64),
        ]),
        Data::Int(_) => cards.extend([
            int("BITPIX", 32),
            int("NAXIS", 2),
            int("NAXIS1", geom.size as i64),
            int("NAXIS2", geom.size as i64),
        ]),
    }
    match hdu {
        Hdu::Primary => cards.push(logical("EXTEND", true)),
        _ => cards.extend([int("PCOUNT", 0), int("GCOUNT", 1)]),
    }
    cards.push(string("BANDS", &geom.bands));
    for (i, b) in geom.bands.chars().enumerate() {
        cards.push(string(&format!("BAND{i}"), &b.to_string()));
    }
    cards.extend([
        string("CTYPE1", "RA---TAN"),
        string("CTYPE2", "DEC--TAN"),
        real("CRVAL1", geom.ra),
        real("CRVAL2", geom.dec),
        real("CRPIX1", crpix),
        real("CRPIX2", crpix),
        real("CD1_1", -cd),
        real("CD1_2", 0.0),
        real("CD2_1", 0.0),
        real("CD2_2", cd),
        int("IMAGEW", geom.size as i64),
        int("IMAGEH", geom.size as i64),
        string("IMAGETYP", hdu.imagetyp()),
        format!("{:<80}", "END"),
    ]);
    let mut out = Vec::with_capacity(padded(cards.len() * CARD) + padded(len * 4));
    for c in &cards {
        out.extend_from_slice(c.as_bytes());
    }
    out.resize(padded(out.len()), b' ');
    match data {
        Data::Float(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
        Data::Int(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
    }
    out.resize(padded(out.len()), 0);
    Ok(out)
}

/// Header blocks a cutout answer may have. The viewer's header is one or two
/// blocks (about 30 cards); the allowance leaves room for a longer header
/// from another deployment without letting a runaway answer through.
pub const HEADER_BLOCKS_ALLOWED: usize = 16;

/// The most bytes a valid answer for `size` x `size` pixels in `bands`
/// planes can have: the padded float32 data plus the header allowance, for
/// each of `hdus` HDUs (the image, and the invvar and maskbits HDUs when
/// asked for; a maskbits plane is never larger than a cube). Anything
/// longer is refused unread.
pub fn answer_budget(size: usize, bands: usize, hdus: usize) -> u64 {
    let data = padded(
        size.saturating_mul(size)
            .saturating_mul(bands.max(1))
            .saturating_mul(4),
    );
    ((data + HEADER_BLOCKS_ALLOWED * BLOCK) * hdus.max(1)) as u64
}

/// Decodes and checks a cutout against what was asked: `size` x `size`
/// pixels and exactly the requested `bands` in that order. Returns CHW data.
pub fn decode(bytes: &[u8], size: usize, bands: &str) -> Result<Vec<f32>, FitsError> {
    let header = parse_header(bytes)?;
    decode_cube(bytes, &header, size, bands)
}

/// A cutout's planes: the image and, when asked for and sent, its inverse
/// variance (both CHW float32) and its maskbits (`size` x `size` int32).
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub image: Vec<f32>,
    pub invvar: Option<Vec<f32>>,
    pub maskbits: Option<Vec<i32>>,
}

impl Planes {
    /// An image alone.
    pub fn image_only(image: Vec<f32>) -> Self {
        Self {
            image,
            invvar: None,
            maskbits: None,
        }
    }
}

/// Decodes an answer to a request with `invvar` and/or `maskbits`: the
/// image as [`decode`], then each HDU after it, told apart by `IMAGETYP`
/// (`INVVAR`: a cube like the image; `MASKBITS`: one int32 plane; without
/// the card, by its shape) and checked against the grid. A plane the
/// answer lacks (a layer without those files) is `None`.
pub fn decode_planes(bytes: &[u8], size: usize, bands: &str) -> Result<Planes, FitsError> {
    let primary = parse_header(bytes)?;
    let mut planes = Planes::image_only(decode_cube(bytes, &primary, size, bands)?);
    let mut at = primary.data_offset + padded(planes.image.len() * 4);
    loop {
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.iter().all(|&b| b == 0 || b == b' ') {
            return Ok(planes);
        }
        let header = parse_header_of(rest, HeaderKind::Extension)?;
        let kind = match header.get("IMAGETYP") {
            Some(kind) => kind.to_ascii_uppercase(),
            None if header.get_i64("NAXIS") == Some(2) => "MASKBITS".into(),
            None => "INVVAR".into(),
        };
        let taken = match kind.as_str() {
            "INVVAR" if planes.invvar.is_none() => {
                let cube = decode_cube(rest, &header, size, bands)?;
                let len = cube.len() * 4;
                planes.invvar = Some(cube);
                len
            }
            "MASKBITS" if planes.maskbits.is_none() => {
                let bits = decode_mask(rest, &header, size)?;
                let len = bits.len() * 4;
                planes.maskbits = Some(bits);
                len
            }
            _ => {
                return Err(FitsError::Mismatch {
                    key: "IMAGETYP",
                    found: kind,
                    expected: "one INVVAR and one MASKBITS HDU at most".into(),
                })
            }
        };
        at += header.data_offset + padded(taken);
    }
}

/// The int32 maskbits plane of one HDU, checked against the grid.
fn decode_mask(bytes: &[u8], header: &Header, size: usize) -> Result<Vec<i32>, FitsError> {
    expect_int(header, "BITPIX", 32)?;
    expect_int(header, "NAXIS", 2)?;
    expect_int(header, "NAXIS1", size as i64)?;
    expect_int(header, "NAXIS2", size as i64)?;
    expect_unscaled(header)?;
    Ok(words(bytes, header, size * size)?
        .map(i32::from_be_bytes)
        .collect())
}

/// The first `n` big-endian 4-byte values of an HDU's data.
fn words<'a>(
    bytes: &'a [u8],
    header: &Header,
    n: usize,
) -> Result<impl Iterator<Item = [u8; 4]> + 'a, FitsError> {
    let need = n * 4;
    let body = bytes.get(header.data_offset..).unwrap_or_default();
    if body.len() < need {
        return Err(FitsError::Truncated {
            have: body.len(),
            need,
        });
    }
    Ok(body[..need]
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]]))
}

/// BSCALE and BZERO, when present, must leave values as stored.
fn expect_unscaled(header: &Header) -> Result<(), FitsError> {
    for (key, want) in [("BSCALE", 1.0), ("BZERO", 0.0)] {
        if let Some(v) = header.get_f64(key) {
            if v != want {
                return Err(FitsError::Mismatch {
                    key: if key == "BSCALE" { "BSCALE" } else { "BZERO" },
                    found: v.to_string(),
                    expected: want.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The float32 cube of one HDU whose header is `header`, checked against
/// what was asked.
fn decode_cube(
    bytes: &[u8],
    header: &Header,
    size: usize,
    bands: &str,
) -> Result<Vec<f32>, FitsError> {
    let planes = bands.chars().count();
    expect_int(header, "BITPIX", -32)?;
    expect_int(header, "NAXIS", 3)?;
    expect_int(header, "NAXIS1", size as i64)?;
    expect_int(header, "NAXIS2", size as i64)?;
    expect_int(header, "NAXIS3", planes as i64)?;
    expect_unscaled(header)?;
    let got_bands = header.get("BANDS").ok_or(FitsError::MissingCard("BANDS"))?;
    if got_bands != bands {
        return Err(FitsError::Mismatch {
            key: "BANDS",
            found: got_bands.to_string(),
            expected: bands.to_string(),
        });
    }
    Ok(words(bytes, header, size * size * planes)?
        .map(f32::from_be_bytes)
        .collect())
}

/// Which header is parsed: the primary one or an image extension.
#[derive(Clone, Copy, PartialEq)]
enum HeaderKind {
    Primary,
    Extension,
}

/// Parses the primary header. Requires `SIMPLE = T` as the first card.
pub fn parse_header(bytes: &[u8]) -> Result<Header, FitsError> {
    parse_header_of(bytes, HeaderKind::Primary)
}

/// Parses a header starting at byte 0 of `bytes`: the primary one
/// (`SIMPLE = T`) or an image extension (`XTENSION = 'IMAGE'`).
fn parse_header_of(bytes: &[u8], kind: HeaderKind) -> Result<Header, FitsError> {
    let first_ok = match kind {
        HeaderKind::Primary => {
            bytes.len() >= CARD
                && bytes.starts_with(b"SIMPLE  =")
                && value_text(&bytes[..CARD]) == "T"
        }
        HeaderKind::Extension => {
            bytes.len() >= CARD
                && bytes.starts_with(b"XTENSION=")
                && value_text(&bytes[..CARD]) == "IMAGE"
        }
    };
    if !first_ok {
        return Err(match kind {
            HeaderKind::Primary => FitsError::NotFits,
            HeaderKind::Extension => FitsError::NotImageExtension,
        });
    }
    let mut header = Header::default();
    for (i, card) in bytes.chunks_exact(CARD).enumerate() {
        let key = String::from_utf8_lossy(&card[..8]).trim_end().to_string();
        if key == "END" {
            header.data_offset = padded((i + 1) * CARD);
            return Ok(header);
        }
        if &card[8..10] == b"= " {
            header.cards.insert(key, value_text(card));
        }
    }
    Err(FitsError::NoEnd(bytes.len()))
}

/// The value of a `KEY = value / comment` card, strings unquoted.
fn value_text(card: &[u8]) -> String {
    let text = String::from_utf8_lossy(&card[10.min(card.len())..]);
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix('\'') {
        // A string: '' is an escaped quote; the first lone quote ends it.
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        return out.trim_end().to_string();
    }
    t.split('/').next().unwrap_or("").trim().to_string()
}

fn expect_int(h: &Header, key: &'static str, want: i64) -> Result<(), FitsError> {
    match h.get_i64(key) {
        None => Err(FitsError::MissingCard(key)),
        Some(v) if v == want => Ok(()),
        Some(v) => Err(FitsError::Mismatch {
            key,
            found: v.to_string(),
            expected: want.to_string(),
        }),
    }
}

fn padded(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

fn card(key: &str, value: &str) -> String {
    // Fixed format: value right-justified to column 30 when it fits.
    let mut c = format!("{key:<8}= {value:>20}");
    c.truncate(CARD);
    format!("{c:<80}")
}

fn logical(key: &str, v: bool) -> String {
    card(key, if v { "T" } else { "F" })
}

fn int(key: &str, v: i64) -> String {
    card(key, &v.to_string())
}

fn real(key: &str, v: f64) -> String {
    // Shortest round-trip text, with a decimal point and an upper-case E.
    let s = format!("{v:?}").to_uppercase();
    let s = if s.contains('.') {
        s
    } else if let Some(pos) = s.find('E') {
        format!("{}.0{}", &s[..pos], &s[pos..])
    } else {
        format!("{s}.0")
    };
    card(key, &s)
}

fn string(key: &str, v: &str) -> String {
    // Strings start at column 11, padded to at least 8 characters.
    let quoted = format!("'{:<8}'", v.replace('\'', "''"));
    let mut c = format!("{key:<8}= {quoted}");
    c.truncate(CARD);
    format!("{c:<80}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom() -> CutoutGeometry {
        CutoutGeometry {
            ra: 150.123456789,
            dec: -2.5,
            size: 5,
            pixscale: 0.262,
            bands: "grz".into(),
        }
    }

    fn data() -> Vec<f32> {
        (0..75).map(|i| i as f32 * 0.5 - 3.0).collect()
    }

    #[test]
    fn round_trip_and_header_cards() {
        let bytes = encode(&geom(), &data()).unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        assert_eq!(decode(&bytes, 5, "grz").unwrap(), data());
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.get("BANDS"), Some("grz"));
        assert_eq!(h.get("CTYPE1"), Some("RA---TAN"));
        assert_eq!(h.get("CTYPE2"), Some("DEC--TAN"));
        assert_eq!(h.get_f64("CRVAL1"), Some(150.123456789));
        assert_eq!(h.get_f64("CRVAL2"), Some(-2.5));
        assert_eq!(h.get_f64("CRPIX1"), Some(3.0));
        assert_eq!(h.get_f64("CRPIX2"), Some(3.0));
        assert_eq!(h.get_f64("CD1_1"), Some(-0.262 / 3600.0));
        assert_eq!(h.get_f64("CD2_2"), Some(0.262 / 3600.0));
        assert_eq!(h.get_f64("CD1_2"), Some(0.0));
        assert_eq!(h.get_f64("CD2_1"), Some(0.0));
        assert_eq!(h.data_offset, BLOCK);
        // Fixed-format mandatory cards: value ends in column 30.
        assert_eq!(&bytes[..30], b"SIMPLE  =                    T");
        assert_eq!(&bytes[80..110], b"BITPIX  =                  -32");
        // Big-endian first pixel.
        assert_eq!(&bytes[BLOCK..BLOCK + 4], &(-3.0f32).to_be_bytes());
    }

    #[test]
    fn refuses_wrong_answers() {
        let bytes = encode(&geom(), &data()).unwrap();
        assert!(matches!(
            decode(&bytes[..BLOCK + 100], 5, "grz"),
            Err(FitsError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&bytes, 5, "gr"),
            Err(FitsError::Mismatch { key: "NAXIS3", .. })
        ));
        assert!(matches!(
            decode(&bytes, 6, "grz"),
            Err(FitsError::Mismatch { key: "NAXIS1", .. })
        ));
        assert!(matches!(
            decode(&bytes, 5, "gri"),
            Err(FitsError::Mismatch { key: "BANDS", .. })
        ));
        assert_eq!(decode(b"", 5, "grz"), Err(FitsError::NotFits));
        assert_eq!(
            decode(b"<html><body>Server Error</body></html>", 5, "grz"),
            Err(FitsError::NotFits)
        );
        assert_eq!(decode(b"no such layer", 5, "grz"), Err(FitsError::NotFits));
        assert!(matches!(
            decode(&bytes[..800], 5, "grz"),
            Err(FitsError::NoEnd(_))
        ));
        let mut f64_image = bytes.clone();
        f64_image[80..160].copy_from_slice(int("BITPIX", -64).as_bytes());
        assert!(matches!(
            decode(&f64_image, 5, "grz"),
            Err(FitsError::Mismatch { key: "BITPIX", .. })
        ));
    }

    #[test]
    fn invvar_and_maskbits_hdus_round_trip_and_their_absence_is_none() {
        let invvar: Vec<f32> = (0..75).map(|i| 1.0 / (1.0 + i as f32)).collect();
        let bits: Vec<i32> = (0..25)
            .map(|i| if i % 3 == 0 { 1 << (i % 14) } else { 0 })
            .collect();
        let all = Planes {
            image: data(),
            invvar: Some(invvar.clone()),
            maskbits: Some(bits.clone()),
        };
        let bytes = encode_planes(&geom(), &all).unwrap();
        assert_eq!(
            bytes.len(),
            6 * BLOCK,
            "three headers and three data blocks"
        );
        assert_eq!(&bytes[2 * BLOCK..2 * BLOCK + 20], b"XTENSION= 'IMAGE   '");
        assert_eq!(decode_planes(&bytes, 5, "grz").unwrap(), all);
        // The image alone decodes as before.
        assert_eq!(decode(&bytes, 5, "grz").unwrap(), data());
        // A layer without invvar or maskbits answers the image only; either
        // extra HDU may come alone.
        let image_only = encode(&geom(), &data()).unwrap();
        assert_eq!(
            decode_planes(&image_only, 5, "grz").unwrap(),
            Planes::image_only(data())
        );
        let mask_only = Planes {
            invvar: None,
            ..all.clone()
        };
        let encoded = encode_planes(&geom(), &mask_only).unwrap();
        assert_eq!(decode_planes(&encoded, 5, "grz").unwrap(), mask_only);

        // Truncated, mislabelled, repeated or garbage extensions are refused.
        assert!(matches!(
            decode_planes(&bytes[..3 * BLOCK + 10], 5, "grz"),
            Err(FitsError::Truncated { .. })
        ));
        let card_at = |b: &[u8], block: usize| {
            (block * BLOCK..(block + 1) * BLOCK)
                .step_by(CARD)
                .find(|&i| b[i..].starts_with(b"IMAGETYP"))
                .unwrap()
        };
        let mut other = bytes.clone();
        let at = card_at(&bytes, 2);
        other[at..at + CARD].copy_from_slice(string("IMAGETYP", "MODEL").as_bytes());
        assert!(matches!(
            decode_planes(&other, 5, "grz"),
            Err(FitsError::Mismatch {
                key: "IMAGETYP",
                ..
            })
        ));
        let mut twice = bytes.clone();
        let at = card_at(&bytes, 4);
        twice[at..at + CARD].copy_from_slice(string("IMAGETYP", "INVVAR").as_bytes());
        assert!(decode_planes(&twice, 5, "grz").is_err());
        let mut garbage = bytes.clone();
        garbage[2 * BLOCK..2 * BLOCK + 8].copy_from_slice(b"GARBAGE!");
        assert_eq!(
            decode_planes(&garbage, 5, "grz"),
            Err(FitsError::NotImageExtension)
        );
        for n in (0..bytes.len()).step_by(97) {
            let _ = decode_planes(&bytes[..n], 5, "grz");
        }
    }

    #[test]
    fn encode_checks_length() {
        assert!(matches!(
            encode(&geom(), &[0.0; 10]),
            Err(FitsError::WrongLength { .. })
        ));
    }

    #[test]
    fn real_cards_are_fits_reals() {
        assert!(real("X", 1e-5).contains("1.0E-5"));
        assert!(real("X", 3.0).contains("3.0"));
        assert!(real("X", -7.277777777777778e-5).contains("-7.277777777777778E-5"));
    }
}
