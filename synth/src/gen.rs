//! Row generation: synthetic but plausible DR10 sweep rows written straight into
//! a big-endian row buffer.

use crate::rng::Rng;
use crate::sky::{wise_coadd_id, BrickGrid, SkyBox};

/// Tractor morphological type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjType {
    Psf,
    Rex,
    Exp,
    Dev,
    Ser,
    Dup,
}

impl ObjType {
    pub fn code(self) -> &'static [u8; 3] {
        match self {
            ObjType::Psf => b"PSF",
            ObjType::Rex => b"REX",
            ObjType::Exp => b"EXP",
            ObjType::Dev => b"DEV",
            ObjType::Ser => b"SER",
            ObjType::Dup => b"DUP",
        }
    }

    /// Drawn with PSF 45%, REX 30%, EXP 12%, DEV 8%, SER 4%, DUP 1%.
    fn draw(rng: &mut Rng) -> ObjType {
        let u = rng.f64();
        if u < 0.45 {
            ObjType::Psf
        } else if u < 0.75 {
            ObjType::Rex
        } else if u < 0.87 {
            ObjType::Exp
        } else if u < 0.95 {
            ObjType::Dev
        } else if u < 0.99 {
            ObjType::Ser
        } else {
            ObjType::Dup
        }
    }
}

/// Galactic extinction coefficients A_band / E(B-V) for g, r, i, z (approximate
/// DECam values) and W1..W4.
pub const EXT_COEFF: [f64; 8] = [3.214, 2.165, 1.592, 1.211, 0.184, 0.113, 0.0241, 0.00910];

/// Knots of the piecewise-linear cumulative distribution of the z magnitude:
/// 3% brighter than 20, 10% brighter than 21, density rising toward 24.
const MAG_Z_CDF: [(f64, f64); 8] = [
    (16.0, 0.0),
    (18.0, 0.005),
    (19.0, 0.012),
    (20.0, 0.03),
    (21.0, 0.10),
    (22.0, 0.28),
    (23.0, 0.60),
    (24.0, 1.0),
];

fn draw_mag_z(rng: &mut Rng) -> f64 {
    let u = rng.f64();
    for w in MAG_Z_CDF.windows(2) {
        let ((m0, c0), (m1, c1)) = (w[0], w[1]);
        if u < c1 {
            return m0 + (m1 - m0) * (u - c0) / (c1 - c0);
        }
    }
    MAG_Z_CDF[MAG_Z_CDF.len() - 1].0
}

/// Number of exposures in g, r or z: 3.5% have 1-2, most 3-8, a tail to 15.
fn draw_nobs(rng: &mut Rng) -> i16 {
    let u = rng.f64();
    if u < 0.035 {
        rng.int(1, 2) as i16
    } else if u < 0.925 {
        rng.int(3, 8) as i16
    } else {
        rng.int(9, 15) as i16
    }
}

/// How a band's measured flux is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    No,
    Nan,
    Negative,
}

/// The properties that drive a row; everything else is derived while encoding.
#[derive(Debug, Clone)]
pub struct Latent {
    pub ty: ObjType,
    pub ra: f64,
    pub dec: f64,
    /// Observed AB magnitudes g, r, i, z, W1, W2, W3, W4.
    pub mag: [f64; 8],
    bad: [Bad; 4],
    /// NOBS g, r, i, z.
    pub nobs: [i16; 4],
    pub ebv: f64,
    /// r-band seeing FWHM, arcsec.
    pub seeing: f64,
    pub shape_r: f64,
    pub e1: f64,
    pub e2: f64,
    pub sersic: f64,
    pub maskbits: i32,
}

/// Per-file state for row generation.
pub struct FileGen<'a> {
    pub sky: SkyBox,
    pub grid: &'a BrickGrid,
    /// Median E(B-V) of the file's region.
    pub ebv_median: f64,
    sin_lo: f64,
    sin_hi: f64,
}

/// Half-light radius of an extended object, arcsec: 0.25 plus a log-normal, at most 5.
fn draw_radius(rng: &mut Rng, median: f64) -> f64 {
    (0.25 + rng.lognormal(median, 0.55)).min(5.0)
}

fn draw_ellipticity(rng: &mut Rng) -> (f64, f64) {
    // |e| < 0.7, roughly uniform in the disk.
    let r = 0.7 * rng.f64().sqrt() * 0.999;
    let phi = rng.range(0.0, std::f64::consts::TAU);
    (r * phi.cos(), r * phi.sin())
}

impl<'a> FileGen<'a> {
    pub fn new(sky: SkyBox, grid: &'a BrickGrid, rng: &mut Rng) -> Self {
        FileGen {
            sky,
            grid,
            ebv_median: rng.lognormal(0.045, 0.6).clamp(0.012, 0.2),
            sin_lo: (sky.dec_lo as f64).to_radians().sin(),
            sin_hi: (sky.dec_hi as f64).to_radians().sin(),
        }
    }

    /// Draws a background object, uniform on the sphere within the box.
    pub fn draw(&self, rng: &mut Rng) -> Latent {
        let ra = rng.range(self.sky.ra_lo as f64, self.sky.ra_hi as f64);
        let dec = rng.range(self.sin_lo, self.sin_hi).asin().to_degrees();
        let ty = ObjType::draw(rng);
        let mag_z = draw_mag_z(rng);
        let gr = if rng.chance(0.10) {
            rng.range(-0.2, 0.4)
        } else {
            rng.triangular(0.4, 2.0)
        };
        let rz = (0.1 + 0.5 * gr + rng.range(-0.3, 0.3)).clamp(-0.3, 2.2);
        let mag = self.mags(rng, mag_z, gr, rz);

        let mut bad = [Bad::No; 4];
        for (b, slot) in bad.iter_mut().enumerate() {
            let u = rng.f64();
            // z: 0.1% NaN, 0.2% negative (plus DUP rows with zero flux, ~1%); g, r, i: 0.1% / 0.5%.
            let (p_nan, p_neg) = if b == 3 {
                (0.001, 0.003)
            } else {
                (0.001, 0.006)
            };
            *slot = if u < p_nan {
                Bad::Nan
            } else if u < p_neg {
                Bad::Negative
            } else {
                Bad::No
            };
        }

        let has_i = rng.chance(0.4);
        let nobs = [
            draw_nobs(rng),
            draw_nobs(rng),
            if has_i { rng.int(1, 6) as i16 } else { 0 },
            draw_nobs(rng),
        ];
        let ebv = (self.ebv_median * (0.2 * rng.normal()).exp()).clamp(0.01, 0.3);
        let seeing = rng.triangular(0.85, 1.75);

        let (shape_r, (e1, e2), sersic) = match ty {
            ObjType::Psf | ObjType::Dup => (0.0, (0.0, 0.0), 0.0),
            ObjType::Rex => (draw_radius(rng, 0.45), (0.0, 0.0), 1.0),
            ObjType::Exp => (draw_radius(rng, 0.8), draw_ellipticity(rng), 1.0),
            ObjType::Dev => (draw_radius(rng, 0.9), draw_ellipticity(rng), 4.0),
            ObjType::Ser => (
                draw_radius(rng, 0.8),
                draw_ellipticity(rng),
                rng.range(0.5, 6.0),
            ),
        };

        // MASKBITS: ~4% with one of the bits the selection excludes, ~4% with other bits.
        let mut maskbits = 0i32;
        if rng.chance(0.04) {
            const EXCL: [i32; 7] = [1, 5, 6, 7, 11, 12, 13];
            maskbits |= 1 << EXCL[rng.int(0, 6) as usize];
        }
        if rng.chance(0.04) {
            const OTHER: [i32; 7] = [8, 9, 8, 9, 2, 4, 10];
            maskbits |= 1 << OTHER[rng.int(0, 6) as usize];
        }

        Latent {
            ty,
            ra,
            dec,
            mag,
            bad,
            nobs,
            ebv,
            seeing,
            shape_r,
            e1,
            e2,
            sersic,
            maskbits,
        }
    }

    fn mags(&self, rng: &mut Rng, mag_z: f64, gr: f64, rz: f64) -> [f64; 8] {
        let mag_r = mag_z + rz;
        let mag_g = mag_r + gr;
        let mag_i = mag_z + 0.45 * rz;
        let w1 = mag_z - rng.range(0.2, 1.4);
        let w2 = w1 + rng.range(0.0, 0.6);
        let w3 = w2 - rng.range(-1.0, 1.5);
        let w4 = w3 - rng.range(-0.5, 1.0);
        [mag_g, mag_r, mag_i, mag_z, w1, w2, w3, w4]
    }

    /// A lens-galaxy-like object at (`ra`, `dec`): DEV or SER, z mag 17-19.5, red
    /// colours, NOBS 3-12 in g/r/z, MASKBITS 0, SHAPE_R 1-3 arcsec, finite fluxes.
    pub fn draw_lens_host(&self, rng: &mut Rng, ra: f64, dec: f64) -> Latent {
        let mut l = self.draw(rng);
        l.ra = ra;
        l.dec = dec;
        l.ty = if rng.chance(0.5) {
            ObjType::Dev
        } else {
            ObjType::Ser
        };
        let mag_z = rng.range(17.0, 19.5);
        let gr = rng.range(1.2, 1.9);
        let rz = rng.range(0.7, 1.1);
        l.mag = self.mags(rng, mag_z, gr, rz);
        l.bad = [Bad::No; 4];
        l.nobs[0] = rng.int(3, 12) as i16;
        l.nobs[1] = rng.int(3, 12) as i16;
        l.nobs[3] = rng.int(3, 12) as i16;
        l.maskbits = 0;
        l.shape_r = rng.range(1.0, 3.0);
        let (e1, e2) = draw_ellipticity(rng);
        l.e1 = e1 * 0.5;
        l.e2 = e2 * 0.5;
        l.sersic = if l.ty == ObjType::Dev {
            4.0
        } else {
            rng.range(2.5, 6.0)
        };
        l
    }
}

/// Appends big-endian values to a row. In debug builds every value is checked
/// against the schema (name and TFORM), so the encoder cannot drift from
/// [`crate::dr10_columns`].
pub struct Enc<'b> {
    buf: &'b mut [u8],
    pos: usize,
    #[cfg(debug_assertions)]
    col: usize,
    #[cfg(debug_assertions)]
    schema: &'b [lenspipe_fits::ColumnSpec],
}

impl<'b> Enc<'b> {
    #[allow(unused_variables)]
    pub fn new(buf: &'b mut [u8], schema: &'b [lenspipe_fits::ColumnSpec]) -> Self {
        Enc {
            buf,
            pos: 0,
            #[cfg(debug_assertions)]
            col: 0,
            #[cfg(debug_assertions)]
            schema,
        }
    }

    #[inline(always)]
    #[allow(unused_variables)]
    fn check(&mut self, name: &str, tform: &str) {
        #[cfg(debug_assertions)]
        {
            let c = &self.schema[self.col];
            assert_eq!(
                (c.name.as_str(), c.tform.as_str()),
                (name, tform),
                "encoder out of step with schema at column {}",
                self.col + 1
            );
            self.col += 1;
        }
    }

    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.buf[self.pos..self.pos + N].copy_from_slice(&bytes);
        self.pos += N;
    }

    #[inline(always)]
    pub fn i16(&mut self, name: &str, v: i16) {
        self.check(name, "I");
        self.put(v.to_be_bytes());
    }
    #[inline(always)]
    pub fn i32(&mut self, name: &str, v: i32) {
        self.check(name, "J");
        self.put(v.to_be_bytes());
    }
    #[inline(always)]
    pub fn i64(&mut self, name: &str, v: i64) {
        self.check(name, "K");
        self.put(v.to_be_bytes());
    }
    #[inline(always)]
    pub fn u8(&mut self, name: &str, v: u8) {
        self.check(name, "B");
        self.put([v]);
    }
    #[inline(always)]
    pub fn bool(&mut self, name: &str, v: bool) {
        self.check(name, "L");
        self.put([if v { b'T' } else { b'F' }]);
    }
    #[inline(always)]
    pub fn f32(&mut self, name: &str, v: f64) {
        self.check(name, "E");
        self.put((v as f32).to_be_bytes());
    }
    #[inline(always)]
    pub fn f64(&mut self, name: &str, v: f64) {
        self.check(name, "D");
        self.put(v.to_be_bytes());
    }
    #[inline(always)]
    pub fn f32s<const N: usize>(&mut self, name: &str, tform: &str, v: [f64; N]) {
        self.check(name, tform);
        for x in v {
            self.put((x as f32).to_be_bytes());
        }
    }
    #[inline(always)]
    pub fn text<const N: usize>(&mut self, name: &str, tform: &str, v: [u8; N]) {
        self.check(name, tform);
        self.put(v);
    }
    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.pos
    }
}

/// 10^x via `exp`, which is cheaper than `powf`.
#[inline]
fn pow10(x: f64) -> f64 {
    (x * std::f64::consts::LN_10).exp()
}

/// Flux in nanomaggies of an AB magnitude.
#[inline]
fn flux_of(mag: f64) -> f64 {
    pow10((22.5 - mag) * 0.4)
}

/// Inverse variance of a flux measured at a 5-sigma depth of `m5` magnitudes.
#[inline]
fn ivar_of_depth(m5: f64) -> f64 {
    let f5 = flux_of(m5);
    25.0 / (f5 * f5)
}

const BASE_DEPTH: [f64; 4] = [24.4, 23.9, 23.4, 23.0];
const BAND_SEEING: [f64; 4] = [1.10, 1.0, 0.95, 0.92];

/// Writes one row for `l` with object id `objid`. Returns the number of bytes written.
pub fn encode_row(
    l: &Latent,
    objid: i32,
    fg: &FileGen<'_>,
    rng: &mut Rng,
    enc: &mut Enc<'_>,
) -> usize {
    let ext = l.ty != ObjType::Psf && l.ty != ObjType::Dup;
    let is_dup = l.ty == ObjType::Dup;

    // Derived photometry.
    let mut flux = [0.0f64; 8];
    for (b, f) in flux.iter_mut().enumerate() {
        *f = flux_of(l.mag[b]);
    }
    let mut psfsize = [0.0f64; 4];
    let mut psfdepth = [0.0f64; 4];
    let mut galdepth = [0.0f64; 4];
    let mut ivar = [0.0f64; 8];
    for b in 0..4 {
        if l.nobs[b] == 0 {
            flux[b] = 0.0;
            continue;
        }
        psfsize[b] = (l.seeing * BAND_SEEING[b]).clamp(0.8, 2.0);
        let m5 = BASE_DEPTH[b] + 1.25 * (l.nobs[b] as f64 / 3.0).log10() - 0.8 * (psfsize[b] - 1.2)
            + 0.15 * rng.normal();
        psfdepth[b] = ivar_of_depth(m5);
        galdepth[b] = ivar_of_depth(m5 - 0.35);
        ivar[b] = if ext {
            galdepth[b] / (1.0 + (l.shape_r / psfsize[b]).powi(2) * 0.5)
        } else {
            psfdepth[b]
        };
    }
    let mut wdepth = [0.0f64; 4];
    for (b, wd) in wdepth.iter_mut().enumerate() {
        const W5: [f64; 4] = [20.5, 19.8, 16.7, 14.5];
        *wd = ivar_of_depth(W5[b] + 0.3 * rng.normal());
        ivar[4 + b] = *wd;
        // WISE fluxes are noisy (often negative in W3/W4).
        flux[4 + b] += rng.normal() / wd.sqrt();
    }
    // Signal-to-noise before corrupting fluxes.
    let snr2: f64 = (0..4).map(|b| flux[b] * flux[b] * ivar[b]).sum();
    if is_dup {
        flux = [0.0; 8];
        ivar = [0.0; 8];
    }
    for b in 0..4 {
        if l.nobs[b] == 0 {
            continue;
        }
        match l.bad[b] {
            Bad::No => {}
            Bad::Nan => flux[b] = f64::NAN,
            Bad::Negative => flux[b] = -rng.range(0.0, 2.0) / ivar[b].max(1e-6).sqrt(),
        }
    }

    let (brickid, brickname) = fg.grid.brick(l.ra, l.dec);
    let gaia = is_dup
        || (l.ty == ObjType::Psf && l.mag[1] < 20.8 && rng.chance(0.9))
        || (ext && l.mag[1] < 18.5 && rng.chance(0.3));

    enc.i16("RELEASE", 10000);
    enc.i32("BRICKID", brickid);
    enc.text("BRICKNAME", "8A", brickname);
    enc.i32("OBJID", objid);
    enc.bool("BRICK_PRIMARY", true);
    enc.i32("MASKBITS", l.maskbits);
    let fitbits = if rng.chance(0.1) {
        1i16 << rng.int(0, 12)
    } else {
        0
    };
    enc.i16("FITBITS", fitbits);
    enc.text("TYPE", "3A", *l.ty.code());
    enc.f64("RA", l.ra);
    enc.f64("DEC", l.dec);
    // Positional error ~ seeing / SNR, floor 5 mas.
    let sig_deg = ((l.seeing / snr2.max(1.0).sqrt()).max(0.005)) / 3600.0;
    let pos_ivar = 1.0 / (sig_deg * sig_deg);
    enc.f32("RA_IVAR", pos_ivar * rng.range(0.8, 1.2));
    enc.f32("DEC_IVAR", pos_ivar * rng.range(0.8, 1.2));
    enc.f32("BX", rng.range(-0.5, 3599.5));
    enc.f32("BY", rng.range(-0.5, 3599.5));
    let d = snr2.max(0.0);
    let dchisq = if ext {
        [d * 0.97, d, d * 1.002, d * 1.001, d * 1.003]
    } else {
        [d, d * 0.9995, d * 0.999, d * 0.999, d * 1.0001]
    };
    enc.f32s("DCHISQ", "5E", dchisq);
    enc.f32("EBV", l.ebv);
    let mjd_min = rng.range(56_300.0, 58_300.0);
    enc.f64("MJD_MIN", mjd_min);
    enc.f64("MJD_MAX", mjd_min + rng.range(0.0, 1_800.0));

    if gaia {
        let g = l.mag[1] + 0.2 - 0.1 * (l.mag[0] - l.mag[1]);
        let bright = (21.0 - g).max(0.1);
        let pm_sig = 0.02 + 0.3 / bright;
        enc.text("REF_CAT", "2A", *b"G2");
        enc.i64("REF_ID", (rng.next_u64() >> 2) as i64);
        enc.f32("PMRA", 5.0 * rng.normal());
        enc.f32("PMDEC", 5.0 * rng.normal());
        enc.f32("PARALLAX", 0.5 * rng.normal().abs());
        enc.f32("PMRA_IVAR", 1.0 / (pm_sig * pm_sig));
        enc.f32("PMDEC_IVAR", 1.0 / (pm_sig * pm_sig));
        enc.f32("PARALLAX_IVAR", 1.0 / (pm_sig * pm_sig) * 0.7);
        enc.f32("REF_EPOCH", 2016.0);
        enc.f32("GAIA_PHOT_G_MEAN_MAG", g);
        enc.f32("GAIA_PHOT_G_MEAN_FLUX_OVER_ERROR", 30.0 * bright * bright);
        enc.i16("GAIA_PHOT_G_N_OBS", rng.int(150, 600) as i16);
        enc.f32(
            "GAIA_PHOT_BP_MEAN_MAG",
            g + 0.3 + 0.3 * (l.mag[0] - l.mag[1]),
        );
        enc.f32("GAIA_PHOT_BP_MEAN_FLUX_OVER_ERROR", 8.0 * bright * bright);
        enc.i16("GAIA_PHOT_BP_N_OBS", rng.int(15, 70) as i16);
        enc.f32(
            "GAIA_PHOT_RP_MEAN_MAG",
            g - 0.5 - 0.3 * (l.mag[0] - l.mag[1]),
        );
        enc.f32("GAIA_PHOT_RP_MEAN_FLUX_OVER_ERROR", 10.0 * bright * bright);
        enc.i16("GAIA_PHOT_RP_N_OBS", rng.int(15, 70) as i16);
        enc.bool("GAIA_PHOT_VARIABLE_FLAG", rng.chance(0.01));
        enc.f32(
            "GAIA_ASTROMETRIC_EXCESS_NOISE",
            if ext {
                rng.range(0.5, 5.0)
            } else {
                rng.range(0.0, 0.5)
            },
        );
        enc.f32(
            "GAIA_ASTROMETRIC_EXCESS_NOISE_SIG",
            rng.range(0.0, if ext { 50.0 } else { 2.0 }),
        );
        let n_al = rng.int(100, 500) as i16;
        enc.i16("GAIA_ASTROMETRIC_N_OBS_AL", n_al);
        enc.i16(
            "GAIA_ASTROMETRIC_N_GOOD_OBS_AL",
            n_al - rng.int(0, 5) as i16,
        );
        enc.f32("GAIA_ASTROMETRIC_WEIGHT_AL", rng.range(0.001, 1.0));
        enc.bool("GAIA_DUPLICATED_SOURCE", is_dup || rng.chance(0.02));
        enc.f32("GAIA_A_G_VAL", 2.5 * l.ebv);
        enc.f32("GAIA_E_BP_MIN_RP_VAL", 1.3 * l.ebv);
        enc.f32("GAIA_PHOT_BP_RP_EXCESS_FACTOR", rng.range(1.1, 1.6));
        enc.f32("GAIA_ASTROMETRIC_SIGMA5D_MAX", pm_sig * 1.5);
        enc.u8(
            "GAIA_ASTROMETRIC_PARAMS_SOLVED",
            if rng.chance(0.8) { 31 } else { 3 },
        );
    } else {
        enc.text("REF_CAT", "2A", *b"  ");
        enc.i64("REF_ID", 0);
        for n in [
            "PMRA",
            "PMDEC",
            "PARALLAX",
            "PMRA_IVAR",
            "PMDEC_IVAR",
            "PARALLAX_IVAR",
            "REF_EPOCH",
        ] {
            enc.f32(n, 0.0);
        }
        enc.f32("GAIA_PHOT_G_MEAN_MAG", 0.0);
        enc.f32("GAIA_PHOT_G_MEAN_FLUX_OVER_ERROR", 0.0);
        enc.i16("GAIA_PHOT_G_N_OBS", 0);
        enc.f32("GAIA_PHOT_BP_MEAN_MAG", 0.0);
        enc.f32("GAIA_PHOT_BP_MEAN_FLUX_OVER_ERROR", 0.0);
        enc.i16("GAIA_PHOT_BP_N_OBS", 0);
        enc.f32("GAIA_PHOT_RP_MEAN_MAG", 0.0);
        enc.f32("GAIA_PHOT_RP_MEAN_FLUX_OVER_ERROR", 0.0);
        enc.i16("GAIA_PHOT_RP_N_OBS", 0);
        enc.bool("GAIA_PHOT_VARIABLE_FLAG", false);
        enc.f32("GAIA_ASTROMETRIC_EXCESS_NOISE", 0.0);
        enc.f32("GAIA_ASTROMETRIC_EXCESS_NOISE_SIG", 0.0);
        enc.i16("GAIA_ASTROMETRIC_N_OBS_AL", 0);
        enc.i16("GAIA_ASTROMETRIC_N_GOOD_OBS_AL", 0);
        enc.f32("GAIA_ASTROMETRIC_WEIGHT_AL", 0.0);
        enc.bool("GAIA_DUPLICATED_SOURCE", false);
        enc.f32("GAIA_A_G_VAL", 0.0);
        enc.f32("GAIA_E_BP_MIN_RP_VAL", 0.0);
        enc.f32("GAIA_PHOT_BP_RP_EXCESS_FACTOR", 0.0);
        enc.f32("GAIA_ASTROMETRIC_SIGMA5D_MAX", 0.0);
        enc.u8("GAIA_ASTROMETRIC_PARAMS_SOLVED", 0);
    }

    enc.f32("FLUX_G", flux[0]);
    enc.f32("FLUX_R", flux[1]);
    enc.f32("FLUX_I", flux[2]);
    enc.f32("FLUX_Z", flux[3]);
    enc.f32("FLUX_W1", flux[4]);
    enc.f32("FLUX_W2", flux[5]);
    enc.f32("FLUX_W3", flux[6]);
    enc.f32("FLUX_W4", flux[7]);
    enc.f32("FLUX_IVAR_G", ivar[0]);
    enc.f32("FLUX_IVAR_R", ivar[1]);
    enc.f32("FLUX_IVAR_I", ivar[2]);
    enc.f32("FLUX_IVAR_Z", ivar[3]);
    enc.f32("FLUX_IVAR_W1", ivar[4]);
    enc.f32("FLUX_IVAR_W2", ivar[5]);
    enc.f32("FLUX_IVAR_W3", ivar[6]);
    enc.f32("FLUX_IVAR_W4", ivar[7]);
    // Fraction of the flux in a 1.5" fiber: ~0.75 for point sources, less when extended.
    let fiber_frac = 0.78 / (1.0 + 0.6 * l.shape_r * l.shape_r);
    enc.f32("FIBERFLUX_G", flux[0] * fiber_frac);
    enc.f32("FIBERFLUX_R", flux[1] * fiber_frac);
    enc.f32("FIBERFLUX_I", flux[2] * fiber_frac);
    enc.f32("FIBERFLUX_Z", flux[3] * fiber_frac);
    let tot = 1.0 + rng.range(0.0, 0.2);
    enc.f32("FIBERTOTFLUX_G", flux[0] * fiber_frac * tot);
    enc.f32("FIBERTOTFLUX_R", flux[1] * fiber_frac * tot);
    enc.f32("FIBERTOTFLUX_I", flux[2] * fiber_frac * tot);
    enc.f32("FIBERTOTFLUX_Z", flux[3] * fiber_frac * tot);
    const MW: [&str; 8] = [
        "MW_TRANSMISSION_G",
        "MW_TRANSMISSION_R",
        "MW_TRANSMISSION_I",
        "MW_TRANSMISSION_Z",
        "MW_TRANSMISSION_W1",
        "MW_TRANSMISSION_W2",
        "MW_TRANSMISSION_W3",
        "MW_TRANSMISSION_W4",
    ];
    for (b, name) in MW.iter().enumerate() {
        enc.f32(name, pow10(-0.4 * EXT_COEFF[b] * l.ebv));
    }
    enc.i16("NOBS_G", l.nobs[0]);
    enc.i16("NOBS_R", l.nobs[1]);
    enc.i16("NOBS_I", l.nobs[2]);
    enc.i16("NOBS_Z", l.nobs[3]);
    let nw = rng.int(15, 250) as i16;
    enc.i16("NOBS_W1", nw);
    enc.i16("NOBS_W2", nw);
    enc.i16("NOBS_W3", nw / 10 + 5);
    enc.i16("NOBS_W4", nw / 10 + 5);
    const RCHISQ: [&str; 8] = [
        "RCHISQ_G",
        "RCHISQ_R",
        "RCHISQ_I",
        "RCHISQ_Z",
        "RCHISQ_W1",
        "RCHISQ_W2",
        "RCHISQ_W3",
        "RCHISQ_W4",
    ];
    for (b, name) in RCHISQ.iter().enumerate() {
        let v = if b < 4 && l.nobs[b] == 0 {
            0.0
        } else {
            rng.lognormal(1.0, 0.25)
        };
        enc.f32(name, v);
    }
    const FRACFLUX: [&str; 8] = [
        "FRACFLUX_G",
        "FRACFLUX_R",
        "FRACFLUX_I",
        "FRACFLUX_Z",
        "FRACFLUX_W1",
        "FRACFLUX_W2",
        "FRACFLUX_W3",
        "FRACFLUX_W4",
    ];
    let crowd = rng.f64();
    for (b, name) in FRACFLUX.iter().enumerate() {
        let v = if b < 4 && l.nobs[b] == 0 {
            0.0
        } else {
            0.1 * crowd * crowd * crowd * (1.0 + b as f64)
        };
        enc.f32(name, v);
    }
    let masked = if rng.chance(0.1) {
        rng.range(0.0, 0.3)
    } else {
        0.0
    };
    for (b, name) in [
        "FRACMASKED_G",
        "FRACMASKED_R",
        "FRACMASKED_I",
        "FRACMASKED_Z",
    ]
    .iter()
    .enumerate()
    {
        enc.f32(name, if l.nobs[b] == 0 { 0.0 } else { masked });
    }
    let fracin = 1.0 - 0.05 * rng.f64() * rng.f64();
    for (b, name) in ["FRACIN_G", "FRACIN_R", "FRACIN_I", "FRACIN_Z"]
        .iter()
        .enumerate()
    {
        enc.f32(name, if l.nobs[b] == 0 { 0.0 } else { fracin });
    }
    let anymask = if rng.chance(0.03) {
        1i16 << rng.int(0, 9)
    } else {
        0
    };
    let allmask_bits = [1 << 5, 1 << 6, 0, 1 << 7];
    for (b, name) in ["ANYMASK_G", "ANYMASK_R", "ANYMASK_I", "ANYMASK_Z"]
        .iter()
        .enumerate()
    {
        enc.i16(name, if l.nobs[b] == 0 { 0 } else { anymask });
    }
    for (b, name) in ["ALLMASK_G", "ALLMASK_R", "ALLMASK_I", "ALLMASK_Z"]
        .iter()
        .enumerate()
    {
        // ALLMASK is set where MASKBITS has the band's ALLMASK bit.
        let v = if allmask_bits[b] != 0 && l.maskbits & allmask_bits[b] != 0 {
            2
        } else {
            0
        };
        enc.i16(name, v);
    }
    enc.u8(
        "WISEMASK_W1",
        if l.maskbits & (1 << 8) != 0 { 1 } else { 0 },
    );
    enc.u8(
        "WISEMASK_W2",
        if l.maskbits & (1 << 9) != 0 { 1 } else { 0 },
    );
    enc.f32("PSFSIZE_G", psfsize[0]);
    enc.f32("PSFSIZE_R", psfsize[1]);
    enc.f32("PSFSIZE_I", psfsize[2]);
    enc.f32("PSFSIZE_Z", psfsize[3]);
    enc.f32("PSFDEPTH_G", psfdepth[0]);
    enc.f32("PSFDEPTH_R", psfdepth[1]);
    enc.f32("PSFDEPTH_I", psfdepth[2]);
    enc.f32("PSFDEPTH_Z", psfdepth[3]);
    enc.f32("GALDEPTH_G", galdepth[0]);
    enc.f32("GALDEPTH_R", galdepth[1]);
    enc.f32("GALDEPTH_I", galdepth[2]);
    enc.f32("GALDEPTH_Z", galdepth[3]);
    // Noise-equivalent area of the PSF (Gaussian: 4 pi sigma^2), arcsec^2.
    let mut nea = [0.0f64; 4];
    for b in 0..4 {
        let s = psfsize[b] / 2.3548;
        nea[b] = 4.0 * std::f64::consts::PI * s * s * (1.0 + l.shape_r * l.shape_r);
    }
    enc.f32("NEA_G", nea[0]);
    enc.f32("NEA_R", nea[1]);
    enc.f32("NEA_I", nea[2]);
    enc.f32("NEA_Z", nea[3]);
    let blob = 1.0 + crowd;
    enc.f32("BLOB_NEA_G", nea[0] * blob);
    enc.f32("BLOB_NEA_R", nea[1] * blob);
    enc.f32("BLOB_NEA_I", nea[2] * blob);
    enc.f32("BLOB_NEA_Z", nea[3] * blob);
    enc.f32("PSFDEPTH_W1", wdepth[0]);
    enc.f32("PSFDEPTH_W2", wdepth[1]);
    enc.f32("PSFDEPTH_W3", wdepth[2]);
    enc.f32("PSFDEPTH_W4", wdepth[3]);
    enc.text("WISE_COADD_ID", "8A", wise_coadd_id(l.ra, l.dec));
    enc.f32("WISE_X", rng.range(0.0, 2048.0));
    enc.f32("WISE_Y", rng.range(0.0, 2048.0));
    let snr = snr2.max(0.0).sqrt();
    enc.f32("SERSIC", l.sersic);
    enc.f32(
        "SERSIC_IVAR",
        if l.ty == ObjType::Ser {
            (snr * 0.05).powi(2) + 1.0
        } else {
            0.0
        },
    );
    enc.f32("SHAPE_R", l.shape_r);
    let shape_ivar = if ext {
        (snr / (1.0 + l.shape_r)).powi(2) + 0.1
    } else {
        0.0
    };
    enc.f32("SHAPE_R_IVAR", shape_ivar);
    let e_ivar = if ext && l.ty != ObjType::Rex {
        (snr * 0.1).powi(2) + 1.0
    } else {
        0.0
    };
    enc.f32("SHAPE_E1", l.e1);
    enc.f32("SHAPE_E1_IVAR", e_ivar);
    enc.f32("SHAPE_E2", l.e2);
    enc.f32("SHAPE_E2_IVAR", e_ivar);
    #[cfg(debug_assertions)]
    assert_eq!(
        enc.col,
        enc.schema.len(),
        "encoder wrote fewer columns than the schema has"
    );
    enc.written()
}
