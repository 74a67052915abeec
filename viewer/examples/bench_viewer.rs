//! Throughput of the client against the local server with 100 ms injected
//! latency: ideal is concurrency / latency = 16 / 0.1 s = 160 cutouts/s.
//!
//!     cargo run --release --example bench_viewer [-- --hold SECONDS]
//!
//! `--hold` keeps the server up afterwards (its URL is printed) so that
//! `bench/sequential_requests.py` can be run against the same API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lenspipe_viewer::fits_image::Planes;
use lenspipe_viewer::server::{serve, CutoutProvider, CutoutRequest, Faults, ProviderError};
use lenspipe_viewer::{ViewerClient, ViewerConfig};

const N: usize = 400;
const CONCURRENCY: usize = 16;
const LATENCY_MS: u64 = 100;

struct Flat;

impl CutoutProvider for Flat {
    fn cutout(&self, r: &CutoutRequest) -> Result<Planes, ProviderError> {
        let v = (r.ra + r.dec) as f32;
        Ok(Planes::image_only(vec![
            v;
            r.size
                * r.size
                * r.bands.chars().count()
        ]))
    }
}

/// The same targets as `bench/sequential_requests.py`.
fn targets() -> Vec<(f64, f64)> {
    (0..N)
        .map(|i| (150.0 + i as f64 * 0.01, 2.0 + i as f64 * 0.005))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hold = std::env::args()
        .skip_while(|a| a != "--hold")
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let faults = Faults {
        latency_ms: LATENCY_MS,
        rules: Vec::new(),
    };
    let server = serve(listener, Arc::new(Flat), faults).await?;
    let cfg = ViewerConfig {
        url: server.url(),
        concurrency: CONCURRENCY,
        rate_per_s: f64::INFINITY,
        timeout_s: 10.0,
        ..ViewerConfig::default()
    };
    let client = ViewerClient::new(cfg)?;
    let t0 = Instant::now();
    let got = client.fetch_all(&targets()).await;
    let secs = t0.elapsed().as_secs_f64();
    let ok = got.iter().filter(|f| f.status.has_image()).count();
    let rate = N as f64 / secs;
    let ideal = CONCURRENCY as f64 / (LATENCY_MS as f64 / 1000.0);
    let stats = server.stats();
    println!(
        "{N} cutouts ({ok} ok) in {secs:.2} s: {rate:.1} cutouts/s, {:.2} of ideal {ideal:.0}/s \
         (server: {} requests, max {} in flight)",
        rate / ideal,
        stats.requests,
        stats.max_in_flight
    );
    if let Some(hold) = hold {
        println!("serving at {} for {hold} s", server.url());
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    server.shutdown().await?;
    Ok(())
}
