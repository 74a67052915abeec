//! Client and server behaviour apart from injected faults.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lenspipe_viewer::fits_image::{decode, parse_header, Planes};
use lenspipe_viewer::rgb::viewer_rgb;
use lenspipe_viewer::server::{
    serve, CutoutProvider, CutoutRequest, FaultKind, FaultRule, Faults, Format, ProviderError,
    StatsSnapshot, CUTOUT_PATHS,
};
use lenspipe_viewer::{CutoutStatus, ViewerClient, ViewerConfig};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_all_keeps_order_and_pixels() {
    // Latency makes requests overlap, so the concurrency limit is reached.
    let server = start(Faults {
        latency_ms: 30,
        rules: vec![
            FaultRule::new(FaultKind::Unavailable { retry_after: None }).fraction(0.2),
            FaultRule::new(FaultKind::Html).fraction(0.1),
        ],
    })
    .await;
    let cfg = test_config(server.url());
    let client = ViewerClient::new(cfg.clone()).unwrap();
    let targets = targets(60);
    let got = client.fetch_all(&targets).await;
    assert_eq!(got.len(), targets.len());
    for (f, &(ra, dec)) in got.iter().zip(&targets) {
        let served = image_of(
            &SynthProvider,
            (ra, dec),
            cfg.size,
            cfg.pixscale,
            &cfg.bands,
        );
        assert_eq!(f.image.as_ref(), Some(&served));
        assert!(f.attempts == 1 || f.attempts == 2);
    }
    let body = reqwest::get(format!("http://{}/stats", server.local_addr()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats: StatsSnapshot = serde_json::from_slice(&body).unwrap();
    let attempts: u32 = got.iter().map(|f| f.attempts).sum();
    assert_eq!(stats.requests, attempts as u64);
    assert!(stats.faults_injected > 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(
        stats.max_in_flight, cfg.concurrency,
        "limit not reached or exceeded"
    );
    let mine = client.stats();
    assert_eq!((mine.open, mine.max_open), (0, cfg.concurrency));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_like_the_viewer() {
    let server = start(Faults::default()).await;
    let http = reqwest::Client::new();
    let get = |path_query: String| {
        let http = http.clone();
        async move {
            let r = http.get(path_query).send().await.unwrap();
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (status, ctype, r.bytes().await.unwrap())
        }
    };
    let base = format!("http://{}", server.local_addr());

    // The FITS answer, on both routes, with the viewer's WCS cards.
    for route in ["/viewer/fits-cutout", "/fits-cutout"] {
        let (status, ctype, body) = get(format!(
            "{base}{route}?ra=150.5&dec=2.25&size=9&layer={LAYER}&pixscale=0.262&bands=gz"
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(ctype.as_deref(), Some("image/fits"));
        let px = decode(&body, 9, "gz").unwrap();
        assert_eq!(px, image_of(&SynthProvider, (150.5, 2.25), 9, 0.262, "gz"));
        let h = parse_header(&body).unwrap();
        assert_eq!(h.get_f64("CRVAL1"), Some(150.5));
        assert_eq!(h.get_f64("CRVAL2"), Some(2.25));
        assert_eq!(h.get_f64("CRPIX1"), Some(5.0));
        assert_eq!(h.get_f64("CD1_1"), Some(-0.262 / 3600.0));
    }
    // Bad bands: silently the default 4 bands, as the real viewer does.
    let (status, _, body) = get(format!(
        "{base}/viewer/fits-cutout?ra=1&dec=2&size=5&layer={LAYER}&bands=g,r"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(parse_header(&body).unwrap().get("BANDS"), Some("griz"));
    assert!(decode(&body, 5, "griz").is_ok());
    // Unknown layer: 200 with text.
    let (status, _, body) = get(format!(
        "{base}/viewer/fits-cutout?ra=1&dec=2&layer=ls-dr99"
    ))
    .await;
    assert_eq!((status, &body[..]), (200, &b"no such layer"[..]));
    // Off the footprint: 500.
    let (status, _, _) = get(format!(
        "{base}/viewer/fits-cutout?ra=1&dec=85&size=5&layer={LAYER}"
    ))
    .await;
    assert_eq!(status, 500);
    // Parameter validation.
    for q in [
        "dec=2",
        "ra=x&dec=2",
        "ra=1&dec=95",
        "ra=1&dec=2&size=0",
        "ra=1&dec=2&size=-3",
        "ra=1&dec=2&pixscale=0",
        "ra=1&dec=2&pixscale=nan",
    ] {
        let (status, _, _) = get(format!("{base}/viewer/fits-cutout?{q}")).await;
        assert_eq!(status, 400, "{q}");
    }
    // Oversized requests are clamped like the viewer's maximum.
    let (status, _, body) = get(format!(
        "{base}/viewer/fits-cutout?ra=1&dec=2&size=4000&layer={LAYER}&bands=g"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(parse_header(&body).unwrap().get_i64("NAXIS1"), Some(3000));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_maps_viewer_failures() {
    let server = start(Faults::default()).await;
    // Unknown layer: not retried, bad_response.
    let mut cfg = test_config(server.url());
    cfg.layer = "ls-dr99".into();
    let f = ViewerClient::new(cfg).unwrap().fetch(1.0, 2.0).await;
    assert_eq!((f.status, f.attempts), (CutoutStatus::BadResponse, 1));
    // Off the footprint: a 500 on every attempt.
    let client = ViewerClient::new(test_config(server.url())).unwrap();
    let f = client.fetch(1.0, 85.0).await;
    assert_eq!((f.status, f.attempts), (CutoutStatus::OffFootprint, 4));
    assert_eq!(f.status.as_str(), "off_footprint");
    // Nothing listening: transport errors, retried, then bad_response.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/viewer/fits-cutout",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let f = ViewerClient::new(test_config(dead))
        .unwrap()
        .fetch(1.0, 2.0)
        .await;
    assert_eq!((f.status, f.attempts), (CutoutStatus::BadResponse, 4));
    // Invalid bands never reach the network.
    let mut cfg = test_config(server.url());
    cfg.bands = "g,r".into();
    assert!(ViewerClient::new(cfg).is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_spaces_requests() {
    let server = start(Faults::default()).await;
    let cfg = ViewerConfig {
        rate_per_s: 20.0,
        concurrency: 8,
        ..test_config(server.url())
    };
    let client = ViewerClient::new(cfg).unwrap();
    let n = 30;
    let t0 = Instant::now();
    let got = client.fetch_all(&targets(n)).await;
    let took = t0.elapsed();
    assert!(got.iter().all(|f| f.status.has_image()));
    // The first request goes at once, then one every 1/R seconds: a floor
    // that load cannot break. How closely the limiter keeps to its pace is
    // tested on a paused clock in `rate.rs`.
    let floor = Duration::from_secs_f64((n - 1) as f64 / 20.0);
    assert!(took >= floor, "{n} requests at 20/s took {took:?}");
    server.shutdown().await.unwrap();
}

/// Pixels like a real sky in nanomaggies: faint, with the g band rising
/// towards the north edge, so the JPEG's orientation can be checked.
struct GradientSky;

impl CutoutProvider for GradientSky {
    fn cutout(&self, r: &CutoutRequest) -> Result<Planes, ProviderError> {
        let (size, bands) = (r.size, r.bands.as_str());
        let mut out = Vec::new();
        for band in bands.chars() {
            for y in 0..size {
                for x in 0..size {
                    out.push(match band {
                        'g' => 0.4 * y as f32 / size as f32,
                        'r' => 0.05 + 0.01 * x as f32 / size as f32,
                        _ => 0.02,
                    });
                }
            }
        }
        Ok(Planes::image_only(out))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_url_form_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(listener, Arc::new(GradientSky), Faults::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let size = 21;
    let query = format!("ra=150.5&dec=2.25&size={size}&layer={LAYER}&pixscale=0.262&bands=grz");
    let pixels = image_of(&GradientSky, (150.5, 2.25), size, 0.262, "grz");
    let want_rgb = viewer_rgb(&pixels, "grz", size, size).unwrap();
    let mut forms = 0;
    for prefix in ["/viewer", ""] {
        for (path, format) in CUTOUT_PATHS {
            for slash in ["", "/"] {
                let url = format!("{base}{prefix}/{path}{slash}?{query}");
                let resp = reqwest::get(&url).await.unwrap();
                assert_eq!(resp.status(), 200, "{url}");
                let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
                let body = resp.bytes().await.unwrap();
                assert_eq!(ctype, format.content_type(), "{url}");
                if format == Format::Fits {
                    assert_eq!(decode(&body, size, "grz").unwrap(), pixels, "{url}");
                } else {
                    let mut dec = jpeg_decoder::Decoder::new(&body[..]);
                    let rgb = dec.decode().unwrap();
                    let info = dec.info().unwrap();
                    assert_eq!((info.width, info.height), (size as u16, size as u16));
                    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
                    // North up: the JPEG's first row is the cutout's last.
                    let row = 3 * size;
                    let mut diff = 0u64;
                    for (y, got) in rgb.chunks_exact(row).enumerate() {
                        let want = &want_rgb[(size - 1 - y) * row..(size - y) * row];
                        diff += got
                            .iter()
                            .zip(want)
                            .map(|(a, b)| a.abs_diff(*b) as u64)
                            .sum::<u64>();
                    }
                    let mean = diff as f64 / rgb.len() as f64;
                    assert!(
                        mean < 4.0,
                        "{url}: JPEG differs from the colour mapping by {mean} levels"
                    );
                    let blue = |y: usize| {
                        rgb[y * row..(y + 1) * row]
                            .chunks(3)
                            .map(|p| p[2] as u32)
                            .sum::<u32>()
                    };
                    assert!(blue(0) > blue(size - 1), "{url}: north is not up");
                }
                forms += 1;
            }
        }
    }
    assert_eq!(forms, 16);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_answers_are_refused_unread() {
    let server = start(Faults {
        latency_ms: 0,
        rules: vec![
            FaultRule::new(FaultKind::Endless).fraction(0.5).first(100),
            FaultRule::new(FaultKind::Oversized {
                content_length: 10 << 30,
            })
            .fraction(0.5)
            .first(100),
        ],
    })
    .await;
    let cfg = test_config(server.url());
    let client = ViewerClient::new(cfg.clone()).unwrap();
    let got = client.fetch_all(&targets(8)).await;
    for f in &got {
        assert_eq!(
            (f.status, f.attempts, f.image.is_none()),
            (CutoutStatus::BadResponse, cfg.max_retries + 1, true)
        );
    }
    let attempts: u64 = got.iter().map(|f| f.attempts as u64).sum();
    let stats = client.stats();
    // Each attempt reads at most its budget and the chunk that crossed it;
    // an oversized Content-Length is refused before any byte is read.
    let most = attempts * (client.answer_budget() + (1 << 20));
    assert!(
        stats.body_bytes <= most,
        "read {} bytes over {attempts} attempts, bound {most}",
        stats.body_bytes
    );
    assert!(
        stats.body_bytes > 0,
        "the endless answers were never read at all"
    );
    assert_eq!(server.stats().requests, attempts);
    server.shutdown().await.unwrap();
}
