//! Throughput of the per-cutout statistics on one core:
//! `cargo run --release --example bench_stats [n_cutouts]`.
//! A few hundred synthetic cutouts are generated once and reused.

use lenspipe_validate::rng::SplitMix64;
use lenspipe_validate::stats::{StatsComputer, StatsParams};
use lenspipe_validate::synth::SynthCutout;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut rng = SplitMix64::new(1);
    let pool: Vec<Vec<f32>> = (0..300)
        .map(|_| SynthCutout::default().generate(&mut rng))
        .collect();
    let mut sc = StatsComputer::new(101, 101, StatsParams::default());
    // Warm-up.
    let mut checksum = 0.0f64;
    for img in &pool {
        checksum += sc.compute(img).map(|s| s.bands[1].bg_sigma).unwrap_or(0.0);
    }
    let t = Instant::now();
    for i in 0..n {
        let s = sc.compute(&pool[i % pool.len()]).expect("valid cutout");
        checksum += s.centroid_offset_px + (s.content_hash & 1) as f64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "stats: {n} cutouts in {secs:.3} s = {:.0} cutouts/s (one core; checksum {checksum:.3})",
        n as f64 / secs
    );
}
