//! Tile-compressed images against astropy: `tests/py/make_tiled.py` writes
//! RICE_1 and HCOMPRESS_1 files and astropy's decompression of each; every
//! pixel decoded here must have the same f32 bits (NaN matching NaN).
//!
//! Needs `python3` with `astropy` and `numpy`; without them the tests fail
//! (they are not skipped) and say what to install.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use lenspipe_fits::{ErrorKind, TiledImage};

struct Case {
    name: String,
    width: usize,
    height: usize,
    fits: Vec<u8>,
    expected: Vec<f32>,
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn make_cases(dir: &Path) -> Vec<Case> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/make_tiled.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); pip install astropy numpy"));
    assert!(
        out.status.success(),
        "make_tiled.py failed (pip install astropy numpy):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = f[0].to_owned();
            let raw = std::fs::read(dir.join(format!("{name}.f32"))).unwrap();
            Case {
                fits: std::fs::read(dir.join(format!("{name}.fits"))).unwrap(),
                expected: raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                width: f[1].parse().unwrap(),
                height: f[2].parse().unwrap(),
                name,
            }
        })
        .collect()
}

fn assert_same_bits(name: &str, got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{name} {what}: pixel count");
    let mut bad = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        if !same {
            if bad < 5 {
                eprintln!(
                    "{name} {what}: pixel {i}: got {g:e} ({:#x}), astropy {w:e} ({:#x})",
                    g.to_bits(),
                    w.to_bits()
                );
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0, "{name} {what}: {bad} pixels differ from astropy");
}

#[test]
fn decodes_bit_for_bit_like_astropy() {
    let dir = tempfile::tempdir().unwrap();
    let cases = make_cases(dir.path());
    assert_eq!(cases.len(), 9);
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.name.starts_with("hcompress"))
            .count(),
        3
    );
    for c in &cases {
        let img = TiledImage::open(c.fits.as_slice(), &c.name)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_inflate(gunzip);
        assert_eq!((img.width(), img.height()), (c.width, c.height));
        let all = img
            .read_region(0, 0, c.width, c.height)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_same_bits(&c.name, &all, &c.expected, "whole image");

        // A rectangle straddling tile boundaries, and single tiles.
        let (x0, y0, w, h) = (c.width / 3, c.height / 4, c.width / 2, c.height / 2);
        let part = img.read_region(x0, y0, w, h).unwrap();
        let want: Vec<f32> = (y0..y0 + h)
            .flat_map(|y| c.expected[y * c.width + x0..y * c.width + x0 + w].to_vec())
            .collect();
        assert_same_bits(&c.name, &part, &want, "region");
        let (nx, ny) = img.tile_grid();
        let (tx, ty) = (nx - 1, ny - 1);
        let tile = img.decode_tile(tx, ty).unwrap();
        let (tx0, ty0, tw, th) = img.tile_rect(tx, ty);
        let want: Vec<f32> = (ty0..ty0 + th)
            .flat_map(|y| c.expected[y * c.width + tx0..y * c.width + tx0 + tw].to_vec())
            .collect();
        assert_same_bits(&c.name, &tile, &want, "last tile");
    }
    let zeros = &cases[0];
    let img = TiledImage::open(zeros.fits.as_slice(), "z").unwrap();
    let px = img.read_region(20, 10, 1, 1).unwrap();
    assert_eq!(px[0].to_bits(), 0, "dither 2 keeps exact zeros");
    assert!(img.read_region(30, 150, 1, 1).unwrap()[0].is_nan());
    let h = img.header().unwrap();
    assert_eq!(h.string("CTYPE1").unwrap().as_deref(), Some("RA---TAN"));
    assert_eq!(h.float("CRVAL1").unwrap(), Some(150.0));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases = make_cases(dir.path());
    let c = &cases[0];

    // Gzip tiles without an inflate function.
    let special = cases
        .iter()
        .find(|c| c.name.starts_with("special"))
        .unwrap();
    let img = TiledImage::open(special.fits.as_slice(), "s").unwrap();
    let e = img
        .read_region(0, 0, special.width, special.height)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");

    // Truncated heap: the table rows are intact, the last tiles are not.
    let cut = c.fits.len() - 2880 - 20_000;
    let img = TiledImage::open(&c.fits[..cut], "cut.fits").unwrap();
    let e = img.read_region(0, 0, c.width, c.height).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Truncated, "{e}");
    assert!(e.to_string().contains("cut.fits: HDU 1"), "{e}");
    assert!(img.decode_tile(0, 0).is_ok());

    // Every truncation point and corrupted byte: errors, never panics.
    for n in (0..c.fits.len()).step_by(997) {
        if let Ok(img) = TiledImage::open(&c.fits[..n], "t") {
            let _ = img.read_region(0, 0, c.width, c.height);
        }
    }
    let mut bytes = c.fits.clone();
    for i in (2880 * 2..bytes.len()).step_by(131) {
        bytes[i] ^= 0x5a;
    }
    if let Ok(img) = TiledImage::open(bytes.as_slice(), "x") {
        let _ = img.read_region(0, 0, c.width, c.height);
    }
    // The same for HCOMPRESS tiles, byte by byte through the first tiles.
    for h in cases.iter().filter(|c| c.name.starts_with("hcompress")) {
        let start = data_offset_of_hdu1(&h.fits);
        for i in start..(start + 4000).min(h.fits.len()) {
            let mut bytes = h.fits.clone();
            bytes[i] ^= 0xa5;
            if let Ok(img) = TiledImage::open(bytes.as_slice(), "hx") {
                let _ = img.decode_tile(0, 0);
            }
        }
        for n in (start..h.fits.len()).step_by(101) {
            if let Ok(img) = TiledImage::open(&h.fits[..n], "ht") {
                let _ = img.read_region(0, 0, h.width, h.height);
            }
        }
    }

    // Header problems.
    let with = |from: &str, to: &str| {
        let text = String::from_utf8_lossy(&c.fits).replacen(from, to, 1);
        text.into_bytes()
    };
    let gz = with("ZCMPTYPE= 'RICE_1  '", "ZCMPTYPE= 'GZIP_1  '");
    let e = TiledImage::open(gz.as_slice(), "g").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("GZIP_1"), "{e}");
    // A descriptor pointing past the heap.
    let mut bad = c.fits.clone();
    let data_offset = data_offset_of_hdu1(&c.fits);
    bad[data_offset + 4..data_offset + 8].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = TiledImage::open(bad.as_slice(), "d").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Data);
    assert!(
        e.message.contains("tile 0: COMPRESSED_DATA descriptor"),
        "{e}"
    );
    // Region outside the image.
    let img = TiledImage::open(c.fits.as_slice(), "d").unwrap();
    assert!(img.read_region(c.width - 1, 0, 2, 1).is_err());
    assert!(img.decode_tile(99, 0).is_err());
}

#[test]
fn the_extent_of_a_compressed_image_comes_from_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let cases = make_cases(dir.path());
    for c in &cases {
        // astropy writes the primary HDU and the compressed image, padded.
        let n = lenspipe_fits::tiled::compressed_extent(&c.fits, &c.name).unwrap();
        assert_eq!(n, c.fits.len() as u64, "{}", c.name);
        // The headers alone are enough: a prefix up to the table data.
        let data = data_offset_of_hdu1(&c.fits);
        let m = lenspipe_fits::tiled::compressed_extent(&c.fits[..data], &c.name).unwrap();
        assert_eq!(m, n, "{}", c.name);
    }
    // A prefix that ends inside the compressed image's header is an error.
    let c = &cases[0];
    let e = lenspipe_fits::tiled::compressed_extent(&c.fits[..2880], "p.fits").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Truncated, "{e}");
    assert!(e.to_string().contains("p.fits"), "{e}");
}

/// Decoding into a reused buffer gives the same pixels as a fresh one, and
/// a buffer of the wrong size is an error.
#[test]
fn tiles_decode_into_a_reused_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let cases = make_cases(dir.path());
    for c in cases.iter().filter(|c| !c.name.starts_with("special")) {
        let img = TiledImage::open(c.fits.as_slice(), &c.name).unwrap();
        let (nx, ny) = img.tile_grid();
        let mut buf = Vec::new();
        for ty in 0..ny {
            for tx in 0..nx {
                let (x0, y0, w, h) = img.tile_rect(tx, ty);
                buf.resize(w * h, f32::INFINITY);
                img.decode_tile_into(tx, ty, &mut buf).unwrap();
                let want: Vec<f32> = (y0..y0 + h)
                    .flat_map(|y| c.expected[y * c.width + x0..y * c.width + x0 + w].to_vec())
                    .collect();
                assert_same_bits(&c.name, &buf, &want, "reused buffer");
            }
        }
        let mut short = vec![0f32; 3];
        assert!(img.decode_tile_into(0, 0, &mut short).is_err());
    }
}

/// Where HDU 1's data starts: after the card block holding its END card.
fn data_offset_of_hdu1(file: &[u8]) -> usize {
    let end = (2880..file.len())
        .step_by(80)
        .find(|&i| &file[i..i + 8] == b"END     ")
        .unwrap();
    (end / 2880 + 1) * 2880
}
