//! Times tile decoding and cutouts on a brick image file:
//! `cargo run --example decode_speed -- IMAGE.fits.fz`.

use std::time::Instant;

use lenspipe_coadd::{BrickImages, CutoutSpec, Resampling};
use lenspipe_fits::TiledImage;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: decode_speed IMAGE.fits.fz");
    let bytes = std::fs::read(&path).expect("read image");
    let img = TiledImage::open(bytes.as_slice(), &path).expect("open");
    let (nx, ny) = img.tile_grid();
    let t = Instant::now();
    for ty in 0..ny {
        for tx in 0..nx {
            img.decode_tile(tx, ty).expect("decode");
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} tiles in {s:.3} s: {:.0} tiles/s",
        nx * ny,
        (nx * ny) as f64 / s
    );

    let mut brick = BrickImages::new("b", vec![('g', Some(bytes.clone()))]).expect("brick");
    let wcs = brick.wcs('g').expect("wcs");
    for resampling in [Resampling::Native, Resampling::Lanczos3] {
        let spec = CutoutSpec {
            size: 101,
            pixscale: 0.262,
            bands: "g".into(),
            resampling,
        };
        let t = Instant::now();
        let mut n = 0;
        for j in 0..20 {
            for i in 0..20 {
                let (ra, dec) =
                    wcs.pixel_to_world(100.0 + i as f64 * 170.0, 100.0 + j as f64 * 170.0);
                brick.cutout(ra, dec, &spec).expect("cutout");
                n += 1;
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{resampling:?}: {n} single-band cutouts in {s:.3} s: {:.0}/s",
            n as f64 / s
        );
    }
}
