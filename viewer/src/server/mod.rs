//! A local server answering the viewer's cutout API.
//!
//! It answers the way the real viewer does: the FITS cutout on success, HTTP
//! 500 off the footprint, `200 no such layer` for an unknown layer, and the
//! layer's default bands when `bands` has an unknown character. Routes, each
//! with and without a trailing slash and with and without the `/viewer`
//! prefix (the viewer matches these names as prefixes): `fits-cutout` and
//! `cutout.fits` (FITS), `jpeg-cutout` and `cutout.jpg` (JPEG: the viewer's
//! colour mapping of the bands asked, north up); and `/stats` (JSON counters).
//! Both formats honour `ra`, `dec`, `size`, `pixscale`, `layer` and `bands`;
//! FITS answers also `invvar` and `maskbits` (extra HDUs with the inverse
//! variance and the mask bits, when the provider has them).

mod faults;
mod jpeg;
mod provider;
mod stats;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{key_unit, FaultKind, FaultRule, Faults, FaultsError};
pub use jpeg::{encode as encode_jpeg, JpegError};
pub use provider::{CutoutProvider, CutoutRequest, ExtraPlanes, ProviderError};
pub use stats::{ServerStats, StatsSnapshot};

use crate::config::MAX_SIZE;
use crate::fits_image::{self, CutoutGeometry};

/// Layer used when a request names none.
pub const DEFAULT_LAYER: &str = "ls-dr10";
/// The viewer's defaults for `size` and `pixscale`.
pub const DEFAULT_SIZE: usize = 256;
pub const DEFAULT_PIXSCALE: f64 = 0.262;

/// How the server identifies a target in faults and stats: ra and dec to
/// 1e-6 degree, so the client's shortest float text and the server's parse
/// agree.
pub fn target_key(ra: f64, dec: f64) -> String {
    format!("{ra:.6},{dec:.6}")
}

/// The viewer's cutout endpoints and what each answers with.
pub const CUTOUT_PATHS: [(&str, Format); 4] = [
    ("fits-cutout", Format::Fits),
    ("cutout.fits", Format::Fits),
    ("jpeg-cutout", Format::Jpeg),
    ("cutout.jpg", Format::Jpeg),
];

/// What a cutout endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Fits,
    Jpeg,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Fits => "image/fits",
            Format::Jpeg => "image/jpeg",
        }
    }
}

struct AppState {
    provider: Arc<dyn CutoutProvider>,
    faults: Faults,
    stats: Arc<ServerStats>,
}

/// The router, for embedding in another axum app.
pub fn router(
    provider: Arc<dyn CutoutProvider>,
    faults: Faults,
    stats: Arc<ServerStats>,
) -> Router {
    let state = Arc::new(AppState {
        provider,
        faults,
        stats,
    });
    let mut app = Router::new().route("/stats", get(stats_json));
    for prefix in ["/viewer", ""] {
        for (name, format) in CUTOUT_PATHS {
            let path = format!("{prefix}/{name}");
            let handler = match format {
                Format::Fits => get(fits_cutout),
                Format::Jpeg => get(jpeg_cutout),
            };
            app = app
                .route(&format!("{path}/"), handler.clone())
                .route(&path, handler);
        }
    }
    app.with_state(state)
}

/// A running server. Dropping it also stops the server.
pub struct ServerHandle {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/viewer/fits-cutout`, ready for `ViewerConfig::url`.
    pub fn url(&self) -> String {
        format!("http://{}/viewer/fits-cutout", self.addr)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Serves in a background task until the handle is shut down or dropped.
pub async fn serve(
    listener: TcpListener,
    provider: Arc<dyn CutoutProvider>,
    faults: Faults,
) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let stats = Arc::new(ServerStats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(provider, faults, stats.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender stops the server too.
                let _ = stopped.await;
            })
            .await
    });
    Ok(ServerHandle {
        addr,
        stats,
        stop: Some(stop),
        task,
    })
}

/// Serves in the current task until `shutdown` completes (for a CLI
/// `serve-cutouts` command, with e.g. `tokio::signal::ctrl_c()`).
pub async fn serve_until(
    listener: TcpListener,
    provider: Arc<dyn CutoutProvider>,
    faults: Faults,
    stats: Arc<ServerStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(provider, faults, stats))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn stats_json(State(st): State<Arc<AppState>>) -> Json<StatsSnapshot> {
    Json(st.stats.snapshot())
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

fn bad_request(msg: &str) -> Response {
    text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", msg)
}

fn server_error() -> Response {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/html; charset=utf-8",
        "<h1>Server Error (500)</h1>",
    )
}

fn parse_query(
    q: &HashMap<String, String>,
    provider: &dyn CutoutProvider,
) -> Result<CutoutRequest, &'static str> {
    let coord = |k: &str| q.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let (Some(ra), Some(dec)) = (coord("ra"), coord("dec")) else {
        return Err("Need ra,dec keywords");
    };
    if !ra.is_finite() || !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
        return Err("ra,dec out of range");
    }
    let layer = q
        .get("layer")
        .filter(|l| !l.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_LAYER.to_string());
    // Like the viewer: sizes above the maximum are clamped, not refused.
    let size = match q.get("size") {
        None => DEFAULT_SIZE,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_SIZE),
            _ => return Err("size must be a positive integer"),
        },
    };
    let pixscale = match q.get("pixscale") {
        None => DEFAULT_PIXSCALE,
        Some(s) => match s.trim().parse::<f64>() {
            Ok(p) if p.is_finite() && p > 0.0 => p,
            _ => return Err("pixscale must be a positive number"),
        },
    };
    // Like the viewer: any unknown band character means the default bands.
    let available = provider.default_bands(&layer);
    let bands = match q.get("bands") {
        Some(b) if !b.is_empty() && b.chars().all(|c| available.contains(c)) => b.clone(),
        _ => available,
    };
    Ok(CutoutRequest {
        ra,
        dec,
        size,
        pixscale,
        bands,
        layer,
        extra: ExtraPlanes {
            invvar: q.contains_key("invvar"),
            maskbits: q.contains_key("maskbits"),
        },
    })
}

async fn fits_cutout(
    state: State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    cutout(state, query, Format::Fits).await
}

async fn jpeg_cutout(
    state: State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    cutout(state, query, Format::Jpeg).await
}

/// Answers a cutout request.
///
/// A request counts as in flight until its handler returns. hyper does not
/// notice a client hanging up while the handler runs, so a request the
/// client abandoned (client timeout) still counts until it is answered, as
/// it would on the real viewer, which keeps working on it too.
async fn cutout(
    State(st): State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    format: Format,
) -> Response {
    let _in_flight = st.stats.enter();

    if st.faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(st.faults.latency_ms)).await;
    }
    let Ok(Query(q)) = query else {
        return bad_request("malformed query string");
    };
    let req = match parse_query(&q, &*st.provider) {
        Ok(r) => r,
        Err(msg) => return bad_request(msg),
    };
    let key = target_key(req.ra, req.dec);
    let attempt = st.stats.attempt(&key);
    let fault = st.faults.fault_for(&key, attempt).cloned();
    if fault.is_some() {
        st.stats.fault();
    }
    match &fault {
        Some(FaultKind::TooManyRequests { retry_after }) => {
            return with_retry_after(StatusCode::TOO_MANY_REQUESTS, Some(retry_after));
        }
        Some(FaultKind::Unavailable { retry_after }) => {
            return with_retry_after(StatusCode::SERVICE_UNAVAILABLE, retry_after.as_ref());
        }
        Some(FaultKind::Html) => {
            return text(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html><head><title>Legacy Surveys</title></head>\
                 <body><p>Temporarily unavailable</p></body></html>",
            );
        }
        Some(FaultKind::Empty) => return text(StatusCode::OK, format.content_type(), ""),
        Some(FaultKind::OffFootprint) => return server_error(),
        Some(FaultKind::Status { code }) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::IM_A_TEAPOT);
            return text(status, "text/plain; charset=utf-8", status.to_string());
        }
        Some(FaultKind::Timeout { sleep_ms }) => {
            tokio::time::sleep(Duration::from_millis(*sleep_ms)).await;
        }
        Some(FaultKind::Truncated)
        | Some(FaultKind::Endless)
        | Some(FaultKind::Oversized { .. })
        | None => {}
    }
    let mut bytes = match answer(&st, req, format).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let content_type = format.content_type();
    match fault {
        Some(FaultKind::Truncated) => bytes.truncate(bytes.len() / 2),
        Some(FaultKind::Endless) => return endless(bytes, content_type, None),
        Some(FaultKind::Oversized { content_length }) => {
            return endless(bytes, content_type, Some(content_length))
        }
        _ => {}
    }
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        bytes,
    )
        .into_response();
    // The viewer names FITS answers only.
    if format == Format::Fits {
        let disposition = format!("attachment; filename=\"{}\"", key_filename(&key));
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// A 200 that starts with `first` and then sends zeros for ever, saying
/// `content_length` in its header if given.
fn endless(first: Vec<u8>, content_type: &'static str, content_length: Option<u64>) -> Response {
    let zeros = Bytes::from(vec![0u8; 64 * 1024]);
    let body = stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) })
        .chain(stream::repeat_with(move || Ok(zeros.clone())));
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(body),
    )
        .into_response();
    if let Some(len) = content_length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

/// Runs the provider and the encoder on the blocking pool.
async fn answer(st: &AppState, req: CutoutRequest, format: Format) -> Result<Vec<u8>, Response> {
    let provider = st.provider.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut req = req;
        if format != Format::Fits {
            req.extra = ExtraPlanes::default();
        }
        let planes = provider.cutout(&req)?;
        match format {
            Format::Jpeg => jpeg::encode(&planes.image, req.size, &req.bands)
                .map_err(|e| ProviderError::Other(e.to_string())),
            Format::Fits => {
                let geom = CutoutGeometry {
                    ra: req.ra,
                    dec: req.dec,
                    size: req.size,
                    pixscale: req.pixscale,
                    bands: req.bands,
                };
                fits_image::encode_planes(&geom, &planes)
                    .map_err(|e| ProviderError::Other(e.to_string()))
            }
        }
    })
    .await;
    match joined {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(ProviderError::UnknownLayer)) => Err(text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "no such layer",
        )),
        Ok(Err(ProviderError::OffFootprint)) => Err(server_error()),
        Ok(Err(ProviderError::Other(msg))) => {
            tracing::warn!(error = %msg, "cutout provider failed");
            Err(server_error())
        }
        Err(e) => {
            tracing::warn!(error = %e, "cutout provider panicked");
            Err(server_error())
        }
    }
}

fn with_retry_after(status: StatusCode, retry_after: Option<&String>) -> Response {
    let mut resp = text(status, "text/plain; charset=utf-8", status.to_string());
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn key_filename(key: &str) -> String {
    let (ra, dec) = key.split_once(',').unwrap_or((key, ""));
    format!("cutout_{ra}_{dec}.fits")
}
