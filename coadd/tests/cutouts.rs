//! Cutouts from bricks written by astropy (`tests/py/make_bricks.py`).
//!
//! Needs `python3` with `astropy` and `numpy`.

use std::path::{Path, PathBuf};
use std::process::Command;

use lenspipe_coadd::{
    brick_file, brick_path, BrickImages, BrickIndex, CoaddError, CoaddKind, CutoutSpec, Resampling,
    SURVEY_BRICKS,
};

const SIZE: usize = 101;

fn make_bricks(root: &Path, args: &[&str]) -> serde_free::Report {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/make_bricks.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(root)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); pip install astropy numpy"));
    assert!(
        out.status.success(),
        "make_bricks.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_free::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Just enough JSON for the script's report: {"brick": [[x, y], ...], ...}.
mod serde_free {
    pub type Report = Vec<(String, Vec<(f64, f64)>)>;

    pub fn parse(s: &str) -> Report {
        let mut out = Vec::new();
        for part in s.trim().trim_matches(['{', '}']).split("]], ") {
            let (name, rest) = part.split_once(':').unwrap();
            let nums: Vec<f64> = rest
                .split(|c: char| !(c.is_ascii_digit() || "-.eE".contains(c)))
                .filter(|t| !t.is_empty())
                .map(|t| t.parse().unwrap())
                .collect();
            let pts = nums.chunks(2).map(|c| (c[0], c[1])).collect();
            out.push((name.trim().trim_matches('"').to_owned(), pts));
        }
        out
    }
}

fn read(root: &Path, rel: &str) -> Option<Vec<u8>> {
    std::fs::read(root.join(rel)).ok()
}

fn open_brick(root: &Path, brick: &str, bands: &str) -> Result<BrickImages<Vec<u8>>, CoaddError> {
    let files = bands
        .chars()
        .map(|b| (b, read(root, &brick_path(brick, b))))
        .collect();
    BrickImages::new(brick, files)
}

fn astropy_pixels(root: &Path, brick: &str, band: char) -> Vec<f32> {
    let raw = std::fs::read(root.join(brick_path(brick, band) + ".f32")).unwrap();
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Flux-weighted centroid and flux within `r` pixels of the centre.
fn centroid(plane: &[f32], size: usize, r: f64) -> (f64, f64, f64) {
    let c = (size / 2) as f64;
    let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f64 - c, y as f64 - c);
            if dx.hypot(dy) <= r {
                let v = f64::from(plane[y * size + x]);
                sx += v * x as f64;
                sy += v * y as f64;
                s += v;
            }
        }
    }
    (sx / s, sy / s, s)
}

const SOURCES: &[(f64, f64)] = &[(150.0031, 2.0042), (149.9987, 1.9968), (150.0052, 1.9951)];

fn setup(root: &Path) -> serde_free::Report {
    let sources: Vec<String> = SOURCES
        .iter()
        .map(|(ra, dec)| format!(r#"{{"ra": {ra}, "dec": {dec}, "flux": 5.0, "sigma": 1.5}}"#))
        .collect();
    make_bricks(
        root,
        &[
            "--bricks",
            r#"[{"name": "1500p020", "ra": 150.0, "dec": 2.0, "unique_deg": 0.02},
                {"name": "0000p000", "ra": 0.0, "dec": 0.0, "unique_deg": 0.02}]"#,
            "--sources",
            &format!("[{}]", sources.join(",")),
            "--zero-band",
            "z",
            "--dump",
        ],
    )
}

#[test]
fn cutouts_from_astropy_bricks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let report = setup(root);
    let index = BrickIndex::from_fits(&read(root, SURVEY_BRICKS).unwrap(), SURVEY_BRICKS).unwrap();
    let mut brick = open_brick(root, "1500p020", "grz").unwrap();
    let wcs = brick.wcs('g').unwrap();

    // WCS against astropy, both directions.
    let (_, astropy_xy) = report.iter().find(|(n, _)| n == "1500p020").unwrap();
    for (&(ra, dec), &(ax, ay)) in SOURCES.iter().zip(astropy_xy) {
        let (x, y) = wcs.world_to_pixel(ra, dec).unwrap();
        assert!(
            (x - ax).abs() < 1e-8 && (y - ay).abs() < 1e-8,
            "{x},{y} vs {ax},{ay}"
        );
        let (r, d) = wcs.pixel_to_world(ax, ay);
        assert!((r - ra).abs() * 3600.0 < 1e-6 && (d - dec).abs() * 3600.0 < 1e-6);
    }

    for (i, &(ra, dec)) in SOURCES.iter().enumerate() {
        assert_eq!(index.find(ra, dec).unwrap().name, "1500p020");
        // Native: the brick's own pixels, bit for bit.
        let spec = CutoutSpec {
            size: SIZE,
            pixscale: 0.262,
            bands: "grz".into(),
            resampling: Resampling::Native,
        };
        let c = brick.cutout(ra, dec, &spec).unwrap();
        assert_eq!(c.pixels.len(), 3 * SIZE * SIZE);
        assert_eq!(c.has_data, vec![true, true, false], "z is all zero");
        let (x, y) = astropy_xy[i];
        let (x0, y0) = (x.round() as i64 - 50, y.round() as i64 - 50);
        for (b, band) in ['g', 'r'].into_iter().enumerate() {
            let full = astropy_pixels(root, "1500p020", band);
            for yy in 0..SIZE {
                for xx in 0..SIZE {
                    let (bx, by) = (x0 + xx as i64, y0 + yy as i64);
                    let want = if (0..400).contains(&bx) && (0..400).contains(&by) {
                        full[by as usize * 400 + bx as usize]
                    } else {
                        0.0
                    };
                    let got = c.pixels[b * SIZE * SIZE + yy * SIZE + xx];
                    assert_eq!(got.to_bits(), want.to_bits(), "native {band} ({xx},{yy})");
                }
            }
        }
        // Lanczos-3: source centred, flux kept.
        let spec = CutoutSpec {
            resampling: Resampling::Lanczos3,
            ..spec
        };
        let c = brick.cutout(ra, dec, &spec).unwrap();
        assert_eq!(c.has_data, vec![true, true, false]);
        for b in 0..2 {
            let plane = &c.pixels[b * SIZE * SIZE..(b + 1) * SIZE * SIZE];
            let (cx, cy, flux) = centroid(plane, SIZE, 8.0);
            assert!(
                (cx - 50.0).abs() < 0.15 && (cy - 50.0).abs() < 0.15,
                "centroid {cx},{cy}"
            );
            assert!((flux - 5.0).abs() / 5.0 < 0.03, "flux {flux}");
        }
    }

    // A target at the corner of the unique area still has a full cutout.
    let b = index.find(150.0, 2.0).unwrap().clone();
    let (ra, dec) = (b.ra1 + 1e-6, b.dec2 - 1e-6);
    assert_eq!(index.find(ra, dec).unwrap().name, "1500p020");
    for resampling in [Resampling::Native, Resampling::Lanczos3] {
        let spec = CutoutSpec {
            size: SIZE,
            pixscale: 0.262,
            bands: "gr".into(),
            resampling,
        };
        let c = brick.cutout(ra, dec, &spec).unwrap();
        assert_eq!(c.has_data, vec![true, true]);
        let zeros = c.pixels.iter().filter(|&&p| p == 0.0).count();
        assert!(
            zeros < 5,
            "{resampling:?}: {zeros} zero pixels at the unique-area edge"
        );
    }

    // Brick lookup across RA = 0 and off the footprint.
    assert_eq!(index.find(359.995, 0.001).unwrap().name, "0000p000");
    assert_eq!(index.find(0.005, -0.001).unwrap().name, "0000p000");
    assert_eq!(index.find(-0.005, 0.0).unwrap().name, "0000p000");
    let e = index.find(10.0, 0.0).unwrap_err();
    assert_eq!(e.status(), "off_footprint");

    // A missing band is reported as no data; all bands missing is missing_brick.
    let mut partial = open_brick(root, "1500p020", "gi").unwrap();
    let spec = CutoutSpec {
        size: SIZE,
        pixscale: 0.262,
        bands: "gi".into(),
        resampling: Resampling::Lanczos3,
    };
    assert_eq!(
        partial.cutout(150.0, 2.0, &spec).unwrap().has_data,
        vec![true, false]
    );
    let e = open_brick(root, "1500p020", "iy").err().unwrap();
    assert_eq!(e.status(), "missing_brick");
    let e = open_brick(root, "9999p999", "grz").err().unwrap();
    assert_eq!(e.status(), "missing_brick");
}

/// The invvar files (legacypipe's compression: RICE_1, quantize_level 16)
/// are cut like the images: native invvar equals astropy's decompressed
/// pixels bit for bit, and a band of zero invvar stays zero.
#[test]
fn invvar_files_are_cut_like_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_bricks(
        root,
        &[
            "--bricks",
            r#"[{"name": "1500p020", "ra": 150.0, "dec": 2.0}]"#,
            "--invvar",
            "--zero-invvar-band",
            "z",
            "--dump",
        ],
    );
    let brick = "1500p020";
    let files = "grz"
        .chars()
        .map(|b| (b, read(root, &brick_file(brick, CoaddKind::Invvar, b))))
        .collect();
    let mut invvar = BrickImages::of_kind(brick, CoaddKind::Invvar, files).unwrap();
    assert_eq!(invvar.kind(), CoaddKind::Invvar);
    let spec = CutoutSpec {
        size: SIZE,
        pixscale: 0.262,
        bands: "grz".into(),
        resampling: Resampling::Native,
    };
    let (ra, dec) = (150.0031, 2.0042);
    let c = invvar.cutout(ra, dec, &spec).unwrap();
    let (x, y) = invvar.wcs('g').unwrap().world_to_pixel(ra, dec).unwrap();
    let (x0, y0) = (x.round() as usize - 50, y.round() as usize - 50);
    for (b, band) in "grz".chars().enumerate() {
        let raw =
            std::fs::read(root.join(brick_file(brick, CoaddKind::Invvar, band) + ".f32")).unwrap();
        let full: Vec<f32> = raw
            .chunks_exact(4)
            .map(|v| f32::from_le_bytes(v.try_into().unwrap()))
            .collect();
        for yy in 0..SIZE {
            for xx in 0..SIZE {
                let want = full[(y0 + yy) * 400 + x0 + xx];
                let got = c.pixels[b * SIZE * SIZE + yy * SIZE + xx];
                assert_eq!(got.to_bits(), want.to_bits(), "invvar {band} ({xx},{yy})");
            }
        }
    }
    assert!(c.pixels[..SIZE * SIZE].iter().all(|v| *v > 1e5));
    assert!(c.pixels[2 * SIZE * SIZE..].iter().all(|v| *v == 0.0));
}
