//! A published viewer client, legacystamps, fetching FITS and JPEG cutouts
//! from the local server with the URLs it writes for the public viewer.

mod common;

use std::path::Path;
use std::process::Command;

use lenspipe_viewer::fits_image::decode;
use lenspipe_viewer::server::Faults;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacystamps_fetches_fits_and_jpeg() {
    let server = start(Faults::default()).await;
    let base = format!("http://{}", server.local_addr());
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/legacystamps_fetch.py");
    let (ra, dec, pixels) = (150.5, 2.25, 101);
    let args = [
        script.to_str().unwrap().to_string(),
        format!("--base={base}"),
        format!("--ra={ra}"),
        format!("--dec={dec}"),
        format!("--pixels={pixels}"),
        format!("--layer={LAYER}"),
        format!("--out={}", out.path().display()),
    ];
    // The client is blocking Python: run it off the runtime serving it.
    let run = tokio::task::spawn_blocking(move || Command::new("python3").args(&args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "legacystamps failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let last = stdout.lines().next_back().unwrap_or_default();
    let got: serde_json::Value = serde_json::from_str(last).expect("one JSON line last");

    // The URLs are the public viewer's forms, trailing slash included.
    let fits = &got["fits"];
    let jpeg = &got["jpeg"];
    let fits_url = fits["url"].as_str().unwrap();
    let jpeg_url = jpeg["url"].as_str().unwrap();
    assert!(
        fits_url.starts_with(&format!("{base}/viewer/fits-cutout/?")),
        "{fits_url}"
    );
    assert!(
        jpeg_url.starts_with(&format!("{base}/viewer/jpeg-cutout/?")),
        "{jpeg_url}"
    );

    // FITS: astropy reads the cube; its pixels are exactly the provider's.
    assert_eq!(fits["shape"], serde_json::json!([3, pixels, pixels]));
    assert_eq!(fits["bands"], "grz");
    let bytes = std::fs::read(fits["path"].as_str().unwrap()).unwrap();
    let want = image_of(&SynthProvider, (ra, dec), pixels, 0.262, "grz");
    assert_eq!(decode(&bytes, pixels, "grz").unwrap(), want);

    // JPEG: Pillow reads an RGB image of the size asked, byte for byte what
    // the server answers at that URL.
    assert_eq!(jpeg["format"], "JPEG");
    assert_eq!(jpeg["mode"], "RGB");
    assert_eq!(jpeg["shape"], serde_json::json!([pixels, pixels]));
    let saved = std::fs::read(jpeg["path"].as_str().unwrap()).unwrap();
    let direct = reqwest::get(jpeg_url).await.unwrap().bytes().await.unwrap();
    assert_eq!(saved, direct.to_vec());
    server.shutdown().await.unwrap();
}
