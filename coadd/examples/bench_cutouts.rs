//! Cutouts per second from coadd bricks, one thread, targets grouped by
//! brick as the cutout stage groups them:
//! `bench_cutouts ROOT TARGETS.csv native|lanczos3` with a CSV of
//! `brickname,ra,dec`. Prints one JSON line.

use std::collections::BTreeMap;
use std::time::Instant;

use lenspipe_coadd::files::map_file;
use lenspipe_coadd::{brick_path, BrickImages, CutoutSpec, Resampling};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, targets, resampling] = args.as_slice() else {
        eprintln!("usage: bench_cutouts ROOT TARGETS.csv native|lanczos3");
        std::process::exit(2);
    };
    let resampling = match resampling.as_str() {
        "native" => Resampling::Native,
        "lanczos3" => Resampling::Lanczos3,
        other => panic!("unknown resampling {other}"),
    };
    let text = std::fs::read_to_string(targets).expect("targets CSV");
    let mut by_brick: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        by_brick
            .entry(f[0].to_string())
            .or_default()
            .push((f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    // Within a brick, in declination order, as the cutout stage orders them.
    for targets in by_brick.values_mut() {
        targets.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    }
    let spec = CutoutSpec {
        size: 101,
        pixscale: 0.262,
        bands: "grz".into(),
        resampling,
    };
    let started = Instant::now();
    let (mut n, mut checksum) = (0usize, 0f64);
    for (brick, targets) in &by_brick {
        // Mapping the files is part of the work, as in the stage.
        let files = "grz"
            .chars()
            .map(|b| {
                let path = std::path::PathBuf::from(format!("{root}/{}", brick_path(brick, b)));
                (b, map_file(&path).expect("map brick file"))
            })
            .collect();
        let mut images = BrickImages::new(brick, files).expect("brick");
        for (ra, dec) in targets {
            let cutout = images.cutout(*ra, *dec, &spec).expect("cutout");
            // The first band's centre pixel, as bench/cutouts_fitsio.py sums it.
            checksum += cutout.pixels[(spec.size / 2) * spec.size + spec.size / 2] as f64;
            n += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"tool\": \"lenspipe-coadd\", \"resampling\": \"{}\", \"cutouts\": {n}, \"seconds\": {seconds:.3}, \"per_s\": {:.1}, \"checksum\": {checksum:.9}}}",
        resampling.as_str(),
        n as f64 / seconds
    );
}
