//! Client and server behaviour apart from injected faults.

mod common;

use std::time::{Duration, Instant};

use lenspipe_viewer::fits_image::{decode, parse_header};
use lenspipe_viewer::server::{CutoutProvider, FaultKind, FaultRule, Faults, StatsSnapshot};
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
        let served = SynthProvider
            .cutout(ra, dec, cfg.size, cfg.pixscale, &cfg.bands, LAYER)
            .unwrap();
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
        assert_eq!(
            px,
            SynthProvider
                .cutout(150.5, 2.25, 9, 0.262, "gz", LAYER)
                .unwrap()
        );
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
    // The first request goes at once, then one every 1/R seconds.
    let floor = Duration::from_secs_f64((n - 1) as f64 / 20.0);
    assert!(took >= floor, "{n} requests at 20/s took {took:?}");
    assert!(took < floor + Duration::from_secs(1), "too slow: {took:?}");
    server.shutdown().await.unwrap();
}
