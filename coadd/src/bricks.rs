//! DR10 brick names, file paths and the brick that contains a position.

use std::io::{Cursor, Read};

use arrow::array::{Array, Float64Array, StringArray};
use lenspipe_fits::ReaderBuilder;

use crate::error::{CoaddError, Result};

/// A per-band coadd file of a brick, as DR10 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoaddKind {
    /// `-image-<band>`: the coadded pixels, nanomaggies.
    Image,
    /// `-invvar-<band>`: their inverse variance, 1/nanomaggies².
    Invvar,
    /// `-maskbits`: one bitmask plane for all bands (HCOMPRESS_1 integers).
    Maskbits,
}

impl CoaddKind {
    /// The file-name part DR10 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Invvar => "invvar",
            Self::Maskbits => "maskbits",
        }
    }
}

/// Path of a brick's coadd image, relative to the survey root:
/// `coadd/<AAA>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz`.
pub fn brick_path(brickname: &str, band: char) -> String {
    brick_file(brickname, CoaddKind::Image, band)
}

/// Path of a brick's coadd file of `kind`, relative to the survey root:
/// `coadd/<AAA>/<brick>/legacysurvey-<brick>-<kind>-<band>.fits.fz`, or
/// `...-maskbits.fits.fz` (one file for all bands: `band` is not used).
pub fn brick_file(brickname: &str, kind: CoaddKind, band: char) -> String {
    let aaa: String = brickname.chars().take(3).collect();
    let name = kind.as_str();
    match kind {
        CoaddKind::Maskbits => {
            format!("coadd/{aaa}/{brickname}/legacysurvey-{brickname}-{name}.fits.fz")
        }
        _ => format!("coadd/{aaa}/{brickname}/legacysurvey-{brickname}-{name}-{band}.fits.fz"),
    }
}

/// Path of the brick table, relative to the survey root.
pub const SURVEY_BRICKS: &str = "survey-bricks.fits.gz";

/// One row of the brick table.
#[derive(Debug, Clone, PartialEq)]
pub struct Brick {
    /// BRICKNAME, e.g. `1504p022`.
    pub name: String,
    /// Centre (RA, DEC), degrees.
    pub ra: f64,
    pub dec: f64,
    /// The brick's unique area: RA1 ≤ ra < RA2 (may wrap through 0), DEC1 ≤ dec < DEC2.
    pub ra1: f64,
    pub ra2: f64,
    pub dec1: f64,
    pub dec2: f64,
}

impl Brick {
    /// Whether (ra, dec) is in the brick's unique area.
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        let in_dec = self.dec1 <= dec && (dec < self.dec2 || (self.dec2 >= 90.0 && dec <= 90.0));
        let width = self.ra2 - self.ra1;
        let in_ra = width >= 360.0 || (ra - self.ra1).rem_euclid(360.0) < width.rem_euclid(360.0);
        in_dec && in_ra
    }
}

/// Bricks grouped into declination rows, each sorted by RA1, for lookup.
#[derive(Debug, Clone)]
pub struct BrickIndex {
    /// (DEC1, DEC2, bricks sorted by RA1 in [0, 360)).
    rows: Vec<(f64, f64, Vec<Brick>)>,
}

impl BrickIndex {
    /// Builds the index from brick rows.
    pub fn new(bricks: Vec<Brick>) -> BrickIndex {
        let mut bricks = bricks;
        bricks.sort_by(|a, b| a.dec1.total_cmp(&b.dec1).then(a.ra1.total_cmp(&b.ra1)));
        let mut rows: Vec<(f64, f64, Vec<Brick>)> = Vec::new();
        for b in bricks {
            match rows.last_mut() {
                Some((d1, d2, row)) if *d1 == b.dec1 && *d2 == b.dec2 => row.push(b),
                _ => rows.push((b.dec1, b.dec2, vec![b])),
            }
        }
        for (_, _, row) in &mut rows {
            row.sort_by(|a, b| a.ra1.rem_euclid(360.0).total_cmp(&b.ra1.rem_euclid(360.0)));
        }
        BrickIndex { rows }
    }

    /// Reads `survey-bricks.fits.gz` (gzipped or not) from its bytes.
    pub fn from_fits(bytes: &[u8], source: &str) -> Result<BrickIndex> {
        let plain;
        let data = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| CoaddError::Invalid(format!("{source}: gunzip: {e}")))?;
            plain = out;
            plain.as_slice()
        } else {
            bytes
        };
        let reader = ReaderBuilder::new()
            .with_columns(&["brickname", "ra", "dec", "ra1", "ra2", "dec1", "dec2"])
            .build(Cursor::new(data), source)?;
        let mut bricks = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| CoaddError::Invalid(format!("{source}: {e}")))?;
            let col = |name: &str| batch.column_by_name(name);
            let names = col("brickname")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| {
                    CoaddError::Invalid(format!("{source}: no BRICKNAME text column"))
                })?;
            let float = |name: &str| {
                col(name)
                    .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
                    .ok_or_else(|| {
                        CoaddError::Invalid(format!(
                            "{source}: no {} double column",
                            name.to_uppercase()
                        ))
                    })
            };
            let (ra, dec) = (float("ra")?, float("dec")?);
            let (ra1, ra2, dec1, dec2) =
                (float("ra1")?, float("ra2")?, float("dec1")?, float("dec2")?);
            for i in 0..batch.num_rows() {
                if names.is_null(i) {
                    continue;
                }
                bricks.push(Brick {
                    name: names.value(i).to_owned(),
                    ra: ra.value(i),
                    dec: dec.value(i),
                    ra1: ra1.value(i),
                    ra2: ra2.value(i),
                    dec1: dec1.value(i),
                    dec2: dec2.value(i),
                });
            }
        }
        Ok(BrickIndex::new(bricks))
    }

    /// The brick whose unique area contains (ra, dec), or `OffFootprint`.
    pub fn find(&self, ra: f64, dec: f64) -> Result<&Brick> {
        let off = || CoaddError::OffFootprint { ra, dec };
        let ra = ra.rem_euclid(360.0);
        let i = self.rows.partition_point(|(d1, _, _)| *d1 <= dec);
        let (_, _, row) = self
            .rows
            .get(i.checked_sub(1).ok_or_else(off)?)
            .ok_or_else(off)?;
        let j = row.partition_point(|b| b.ra1.rem_euclid(360.0) <= ra);
        // The candidate is the last brick starting at or before ra; a brick
        // wrapping through 0 is the row's last one.
        let candidates = [j.checked_sub(1), row.len().checked_sub(1)];
        candidates
            .into_iter()
            .flatten()
            .filter_map(|k| row.get(k))
            .find(|b| b.contains(ra, dec))
            .ok_or_else(off)
    }

    /// All bricks.
    pub fn bricks(&self) -> impl Iterator<Item = &Brick> {
        self.rows.iter().flat_map(|(_, _, r)| r.iter())
    }
}
