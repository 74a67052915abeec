//! Cutouts from one brick's band images, decoding tiles lazily.
//!
//! Targets are processed grouped by brick, so a [`BrickImages`] keeps
//! recently used decoded tiles (least recently used evicted) for the next
//! nearby target.
//!
//! `native` cutouts are the brick's own pixels; `lanczos3` ones are
//! resampled onto the viewer's grid (see the `resample` module).

use std::collections::HashMap;

use lenspipe_fits::tiled::copy_overlap;
use lenspipe_fits::TiledImage;

use crate::bricks::CoaddKind;
use crate::error::{CoaddError, Result};
use crate::resample::Geometry;
use crate::wcs::Tan;

/// How brick pixels become cutout pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resampling {
    /// The brick's own pixels around the nearest pixel to the target.
    Native,
    /// Lanczos-3 onto a TAN grid centred on the target (the viewer's grid).
    Lanczos3,
}

impl Resampling {
    /// The name configurations and the `cutout_resampling` column use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lanczos3 => "lanczos3",
            Self::Native => "native",
        }
    }
}

/// What cutout to make.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutSpec {
    /// Width and height in pixels.
    pub size: usize,
    /// Output pixel scale, arcsec (`Lanczos3` only).
    pub pixscale: f64,
    /// Band letters, in output order, e.g. `"grz"`.
    pub bands: String,
    pub resampling: Resampling,
}

/// A cutout: `bands × size × size` pixels (CHW) and which bands have data.
#[derive(Debug, Clone, PartialEq)]
pub struct Cutout {
    pub pixels: Vec<f32>,
    /// False for a band without a file or with only zero pixels (no coverage).
    pub has_data: Vec<bool>,
}

/// A decoded tile and when it was last used.
type Used = (Vec<f32>, u64);

/// Decoded tiles of one band, least recently used evicted first. An
/// evicted tile's buffer is reused for the next decode, so once the cache
/// is full no tile allocates.
struct TileCache {
    tiles: HashMap<(usize, usize), Used>,
    clock: u64,
    capacity: usize,
}

impl TileCache {
    fn get<B: AsRef<[u8]>>(
        &mut self,
        image: &TiledImage<B>,
        tx: usize,
        ty: usize,
    ) -> Result<&[f32]> {
        self.clock += 1;
        let clock = self.clock;
        if !self.tiles.contains_key(&(tx, ty)) {
            let mut buffer = Vec::new();
            if self.tiles.len() >= self.capacity {
                if let Some(oldest) = self
                    .tiles
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| *k)
                {
                    buffer = self
                        .tiles
                        .remove(&oldest)
                        .map(|(b, _)| b)
                        .unwrap_or_default();
                }
            }
            let (_, _, w, h) = image.tile_rect(tx, ty);
            buffer.resize(w * h, 0.0);
            image.decode_tile_into(tx, ty, &mut buffer)?;
            self.tiles.insert((tx, ty), (buffer, clock));
        }
        match self.tiles.get_mut(&(tx, ty)) {
            Some((tile, used)) => {
                *used = clock;
                Ok(tile.as_slice())
            }
            None => Err(CoaddError::Invalid(format!(
                "tile ({tx}, {ty}) left the cache"
            ))),
        }
    }
}

/// One band's image, WCS and tile cache.
struct Band<B> {
    image: TiledImage<B>,
    wcs: Tan,
    cache: TileCache,
}

impl<B: AsRef<[u8]>> Band<B> {
    /// The pixel grid: WCS and size. Bands on one grid are resampled
    /// together.
    fn grid(&self) -> (Tan, usize, usize) {
        (self.wcs, self.image.width(), self.image.height())
    }

    /// Pixels of the rectangle at (x0, y0), `w × h`; zero off the image.
    fn region(&mut self, x0: i64, y0: i64, w: usize, h: usize) -> Result<Vec<f32>> {
        let mut out = vec![0f32; w * h];
        let (iw, ih) = (self.image.width() as i64, self.image.height() as i64);
        let cx0 = x0.clamp(0, iw);
        let cy0 = y0.clamp(0, ih);
        let cx1 = (x0 + w as i64).clamp(0, iw);
        let cy1 = (y0 + h as i64).clamp(0, ih);
        if cx0 >= cx1 || cy0 >= cy1 {
            return Ok(out);
        }
        let (tw, th) = self.image.tile_shape();
        let clip = (
            cx0 as usize,
            cy0 as usize,
            (cx1 - cx0) as usize,
            (cy1 - cy0) as usize,
        );
        let mut buf = vec![0f32; clip.2 * clip.3];
        for ty in clip.1 / th..=(clip.1 + clip.3 - 1) / th {
            for tx in clip.0 / tw..=(clip.0 + clip.2 - 1) / tw {
                let tile = self.cache.get(&self.image, tx, ty)?;
                copy_overlap(tile, self.image.tile_rect(tx, ty), &mut buf, clip);
            }
        }
        let (ox, oy) = ((cx0 - x0) as usize, (cy0 - y0) as usize);
        for (r, row) in buf.chunks_exact(clip.2).enumerate() {
            let d = (oy + r) * w + ox;
            out[d..d + clip.2].copy_from_slice(row);
        }
        Ok(out)
    }
}

/// The band images of one brick (its `image` files, or another per-band
/// kind on the same grid such as `invvar`), as file bytes from the caller.
pub struct BrickImages<B> {
    brick: String,
    kind: CoaddKind,
    bands: Vec<(char, Option<Band<B>>)>,
}

/// Decoded tiles kept per band by default: three rows of a DR10 brick's
/// 36 x 36 tiles of 100 px (4.3 MB a band). A 101-pixel cutout spans at
/// most two tile rows, so targets swept across a brick in declination order
/// decode each tile about once.
pub const DEFAULT_TILE_CAPACITY: usize = 108;

impl<B: AsRef<[u8]>> BrickImages<B> {
    /// Opens a brick's band files: `(band, bytes)` with `None` for a file
    /// that does not exist. All missing is [`CoaddError::MissingBrick`].
    pub fn new(brick: &str, files: Vec<(char, Option<B>)>) -> Result<Self> {
        Self::of_kind(brick, CoaddKind::Image, files)
    }

    /// Opens a brick's band files of `kind` (`invvar` files are cut and
    /// resampled exactly as the images are, like the viewer does; the one
    /// `maskbits` file is given as a single band and, being bits, is
    /// sampled at the nearest pixel on a resampled grid).
    pub fn of_kind(brick: &str, kind: CoaddKind, files: Vec<(char, Option<B>)>) -> Result<Self> {
        if files.iter().all(|(_, f)| f.is_none()) {
            return Err(CoaddError::MissingBrick {
                brick: brick.to_owned(),
            });
        }
        let mut bands = Vec::with_capacity(files.len());
        for (band, file) in files {
            let opened = match file {
                None => None,
                Some(bytes) => {
                    let source = crate::bricks::brick_file(brick, kind, band);
                    let image = TiledImage::open(bytes, &source)?.with_inflate(gunzip);
                    let wcs = Tan::from_header(&image.header()?)?;
                    Some(Band {
                        image,
                        wcs,
                        cache: TileCache {
                            tiles: HashMap::new(),
                            clock: 0,
                            capacity: DEFAULT_TILE_CAPACITY,
                        },
                    })
                }
            };
            bands.push((band, opened));
        }
        Ok(BrickImages {
            brick: brick.to_owned(),
            kind,
            bands,
        })
    }

    /// Sets how many decoded tiles each band keeps.
    pub fn with_tile_capacity(mut self, tiles: usize) -> Self {
        for b in self.bands.iter_mut().filter_map(|(_, b)| b.as_mut()) {
            b.cache.capacity = tiles.max(1);
        }
        self
    }

    /// The brick's name.
    pub fn brick(&self) -> &str {
        &self.brick
    }

    /// Which of the brick's files these are.
    pub fn kind(&self) -> CoaddKind {
        self.kind
    }

    /// The WCS of a band's image, if the band has a file.
    pub fn wcs(&self, band: char) -> Option<Tan> {
        self.bands
            .iter()
            .find(|(b, _)| *b == band)
            .and_then(|(_, i)| i.as_ref().map(|i| i.wcs))
    }

    /// Makes the cutout of (ra, dec) described by `spec`.
    pub fn cutout(&mut self, ra: f64, dec: f64, spec: &CutoutSpec) -> Result<Cutout> {
        let n = spec.size * spec.size;
        if spec.size == 0 || spec.bands.is_empty() {
            return Err(CoaddError::Invalid(
                "cutout size and bands must not be empty".into(),
            ));
        }
        // Where each wanted band is among the brick's files.
        let wanted: Vec<Option<usize>> = spec
            .bands
            .chars()
            .map(|want| {
                self.bands
                    .iter()
                    .position(|(b, image)| *b == want && image.is_some())
            })
            .collect();
        let mut planes: Vec<Option<Vec<f32>>> = vec![None; wanted.len()];
        match spec.resampling {
            Resampling::Native => {
                for (plane, at) in planes.iter_mut().zip(&wanted) {
                    if let Some(band) = at.and_then(|i| self.bands[i].1.as_mut()) {
                        *plane = Some(native(band, ra, dec, spec.size)?);
                    }
                }
            }
            Resampling::Lanczos3 => self.resampled(ra, dec, spec, &wanted, &mut planes)?,
        }
        let mut pixels = Vec::with_capacity(n * planes.len());
        let mut has_data = Vec::with_capacity(planes.len());
        for plane in planes {
            let plane = plane.unwrap_or_else(|| vec![0f32; n]);
            has_data.push(plane.iter().any(|&p| p != 0.0 && !p.is_nan()));
            pixels.extend_from_slice(&plane);
        }
        Ok(Cutout { pixels, has_data })
    }

    /// The wanted bands on the viewer's grid, in one pass over the output
    /// pixels for all bands that share a WCS (every DR10 brick's g, r and
    /// z), so each pixel's taps are found once.
    fn resampled(
        &mut self,
        ra: f64,
        dec: f64,
        spec: &CutoutSpec,
        wanted: &[Option<usize>],
        planes: &mut [Option<Vec<f32>>],
    ) -> Result<()> {
        let mut done = vec![false; wanted.len()];
        for first in 0..wanted.len() {
            let Some(band) = wanted[first].and_then(|i| self.bands[i].1.as_ref()) else {
                continue;
            };
            if done[first] {
                continue;
            }
            let (wcs, width, height) = band.grid();
            let geometry = Geometry::new(wcs, width, height, ra, dec, spec.size, spec.pixscale);
            let mut group = Vec::new();
            let mut regions = Vec::new();
            for (k, at) in wanted.iter().enumerate().skip(first) {
                let Some(band) = at.and_then(|i| self.bands[i].1.as_mut()) else {
                    continue;
                };
                if done[k] || band.grid() != (wcs, width, height) {
                    continue;
                }
                done[k] = true;
                group.push(k);
                regions.push(match geometry.rect() {
                    Some((x0, y0, w, h)) => band.region(x0, y0, w, h)?,
                    None => Vec::new(),
                });
            }
            let regions: Vec<&[f32]> = regions.iter().map(Vec::as_slice).collect();
            let out = match self.kind {
                // Bits cannot be interpolated.
                CoaddKind::Maskbits => regions.iter().map(|r| geometry.nearest(r)).collect(),
                _ => geometry.lanczos3(&regions),
            };
            for (k, plane) in group.into_iter().zip(out) {
                planes[k] = Some(plane);
            }
        }
        Ok(())
    }
}

fn gunzip(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The brick pixel position of (ra, dec), or an error if it cannot be projected.
fn position(wcs: &Tan, ra: f64, dec: f64) -> Result<(f64, f64)> {
    wcs.world_to_pixel(ra, dec)
        .ok_or(CoaddError::OffFootprint { ra, dec })
}

fn native<B: AsRef<[u8]>>(band: &mut Band<B>, ra: f64, dec: f64, size: usize) -> Result<Vec<f32>> {
    let (x, y) = position(&band.wcs, ra, dec)?;
    let half = (size / 2) as i64;
    band.region(x.round() as i64 - half, y.round() as i64 - half, size, size)
}
