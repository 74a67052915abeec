//! The polite cutout client.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use tokio::sync::Semaphore;
use tracing::debug;

use crate::config::{ConfigError, ViewerConfig};
use crate::fits_image;
use crate::rate::RateLimiter;
use crate::retry::{backoff, parse_retry_after};
use crate::status::CutoutStatus;

/// The result for one target: exactly one per `fetch` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub status: CutoutStatus,
    /// CHW float32 pixels (nanomaggies) for `ok` and `no_coverage`.
    pub image: Option<Vec<f32>>,
    /// CHW inverse variance (1/nanomaggies²) on the same grid, when the
    /// client asks for it and the layer has it.
    pub invvar: Option<Vec<f32>>,
    /// size x size DR10 maskbits on the same grid, likewise.
    pub maskbits: Option<Vec<i32>>,
    /// HTTP requests made for this target (1 + retries).
    pub attempts: u32,
}

/// Async client for the viewer's `fits-cutout` endpoint.
///
/// Limits, all per client (clones share them):
/// - at most `concurrency` requests in flight (a semaphore; a task backing
///   off between attempts does not hold a slot);
/// - at most `rate_per_s` requests per second on average, retries included
///   (one leaky bucket shared by all tasks);
/// - `timeout_s` per request, body included;
/// - up to `max_retries` retries with full-jitter exponential backoff, or the
///   server's `Retry-After` (seconds or HTTP date) on 429 and 503, capped at
///   `backoff_max_ms`.
///
/// On a cluster each executor process has its own client, so the viewer sees
/// up to `executors x concurrency` requests in flight and
/// `executors x rate_per_s` requests per second; size them for the whole
/// cluster, not for one process.
///
/// Retry policy: 5xx (500 included), 408, 429, timeouts, transport errors and
/// invalid 200 answers (HTML, empty, truncated, wrong shape or BANDS) are
/// retried; other 4xx and the viewer's `no such layer` are not. A final 500
/// is reported as `off_footprint` (see [`CutoutStatus::OffFootprint`]).
#[derive(Clone)]
pub struct ViewerClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ViewerConfig,
    http: reqwest::Client,
    slots: Semaphore,
    rate: RateLimiter,
    open: Gauge,
    budget: u64,
    body_bytes: AtomicU64,
}

/// What this client (and its clones) has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// Requests open now.
    pub open: usize,
    /// The most requests open at once.
    pub max_open: usize,
    /// Body bytes received, over all requests.
    pub body_bytes: u64,
}

/// Counts the client's own open requests. The count rises once a request
/// holds its concurrency slot and falls when the request ends, however it
/// ends (answered, failed, or abandoned on timeout and dropped), before the
/// slot is released. So `max <= concurrency` by construction; the server may
/// still see more, because it keeps working on requests the client dropped.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct Open<'a>(&'a Gauge);

impl Gauge {
    fn enter(&self) -> Open<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Open(self)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a body was not read whole.
enum BodyError {
    Http(reqwest::Error),
    /// More bytes than a valid answer can have: said in `Content-Length`,
    /// or seen while reading (then reading stops there).
    OverBudget {
        budget: u64,
        seen: u64,
    },
}

impl From<reqwest::Error> for BodyError {
    fn from(e: reqwest::Error) -> Self {
        BodyError::Http(e)
    }
}

/// What one HTTP attempt amounted to.
enum Attempt {
    Image(fits_image::Planes),
    Retry {
        status: CutoutStatus,
        wait: Option<Duration>,
        why: String,
    },
    Final {
        status: CutoutStatus,
        why: String,
    },
}

impl ViewerClient {
    /// Validates `cfg` and builds the HTTP client.
    pub fn new(cfg: ViewerConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("lenspipe-viewer/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs_f64(cfg.timeout_s))
            .pool_max_idle_per_host(cfg.concurrency)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                slots: Semaphore::new(cfg.concurrency),
                rate: RateLimiter::new(cfg.rate_per_s, 1),
                open: Gauge::default(),
                body_bytes: AtomicU64::new(0),
                budget: fits_image::answer_budget(
                    cfg.size,
                    cfg.bands.len(),
                    1 + usize::from(cfg.invvar) + usize::from(cfg.maskbits),
                ),
                cfg,
                http,
            }),
        })
    }

    pub fn config(&self) -> &ViewerConfig {
        &self.inner.cfg
    }

    /// Open requests and bytes received so far, over this client and its clones.
    pub fn stats(&self) -> ClientStats {
        let inner = &self.inner;
        ClientStats {
            open: inner.open.now.load(Ordering::SeqCst),
            max_open: inner.open.max.load(Ordering::SeqCst),
            body_bytes: inner.body_bytes.load(Ordering::Relaxed),
        }
    }

    /// The most bytes an answer may have before it is refused unread.
    pub fn answer_budget(&self) -> u64 {
        self.inner.budget
    }

    /// Fetches one cutout centred on (`ra`, `dec`) in degrees, retrying as
    /// configured. Never fails: every outcome is a [`CutoutStatus`].
    pub async fn fetch(&self, ra: f64, dec: f64) -> Fetched {
        let cfg = &self.inner.cfg;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(ra, dec).await {
                Attempt::Image(fits_image::Planes {
                    image,
                    invvar,
                    maskbits,
                }) => {
                    let plane = cfg.size * cfg.size;
                    let empty_band = image
                        .chunks_exact(plane.max(1))
                        .any(|p| p.iter().all(|&v| v == 0.0));
                    let status = if empty_band {
                        CutoutStatus::NoCoverage
                    } else {
                        CutoutStatus::Ok
                    };
                    return Fetched {
                        status,
                        image: Some(image),
                        invvar,
                        maskbits,
                        attempts,
                    };
                }
                Attempt::Final { status, why } => {
                    debug!(ra, dec, attempts, %status, why, "cutout failed, not retried");
                    return Fetched {
                        status,
                        image: None,
                        invvar: None,
                        maskbits: None,
                        attempts,
                    };
                }
                Attempt::Retry { status, wait, why } => {
                    if attempts > cfg.max_retries {
                        debug!(ra, dec, attempts, %status, why, "cutout failed, retries exhausted");
                        return Fetched {
                            status,
                            image: None,
                            invvar: None,
                            maskbits: None,
                            attempts,
                        };
                    }
                    let max = Duration::from_millis(cfg.backoff_max_ms);
                    let delay = match wait {
                        Some(w) => w.min(max),
                        None => backoff(attempts, cfg.backoff_base_ms, cfg.backoff_max_ms),
                    };
                    debug!(
                        ra,
                        dec,
                        attempt = attempts,
                        %status,
                        why,
                        delay_ms = delay.as_millis() as u64,
                        "retrying cutout"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Fetches many targets, results in input order. Runs a bounded pool of
    /// workers (twice `concurrency`, so some can back off while others keep
    /// the slots busy) rather than one task per target.
    pub async fn fetch_all(&self, targets: &[(f64, f64)]) -> Vec<Fetched> {
        let targets: Arc<Vec<(f64, f64)>> = Arc::new(targets.to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let workers = (self.inner.cfg.concurrency * 2).min(targets.len());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (client, targets, next) = (self.clone(), targets.clone(), next.clone());
            set.spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(ra, dec)) = targets.get(i) else {
                        break;
                    };
                    done.push((i, client.fetch(ra, dec).await));
                }
                done
            });
        }
        let mut out: Vec<Option<Fetched>> = vec![None; targets.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok(done) = joined {
                for (i, f) in done {
                    out[i] = Some(f);
                }
            }
        }
        out.into_iter()
            .map(|f| {
                f.unwrap_or(Fetched {
                    status: CutoutStatus::BadResponse,
                    image: None,
                    invvar: None,
                    maskbits: None,
                    attempts: 0,
                })
            })
            .collect()
    }

    /// One HTTP request, holding a concurrency slot and a rate slot.
    async fn attempt(&self, ra: f64, dec: f64) -> Attempt {
        let inner = &*self.inner;
        let cfg = &inner.cfg;
        // The semaphore is never closed; a closed one would only mean "no limit".
        let _permit = inner.slots.acquire().await.ok();
        inner.rate.acquire().await;
        // Declared after the permit, so dropped before it is released.
        let _open = inner.open.enter();
        let mut query = vec![
            ("ra", ra.to_string()),
            ("dec", dec.to_string()),
            ("size", cfg.size.to_string()),
            ("layer", cfg.layer.clone()),
            ("pixscale", cfg.pixscale.to_string()),
            ("bands", cfg.bands.clone()),
        ];
        // The viewer checks that the keys are present; their values are unused.
        if cfg.invvar {
            query.push(("invvar", String::new()));
        }
        if cfg.maskbits {
            query.push(("maskbits", String::new()));
        }
        let request = inner.http.get(&cfg.url).query(&query);
        let limit = Duration::from_secs_f64(cfg.timeout_s);
        let answer = tokio::time::timeout(limit, async {
            let resp = request.send().await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // Only a 200's body is used; any other answer is judged by its status.
            let body = if status == StatusCode::OK {
                read_capped(resp, inner.budget, &inner.body_bytes).await?
            } else {
                Bytes::new()
            };
            Ok::<_, BodyError>((status, retry_after, body))
        })
        .await;
        match answer {
            Err(_) => retry(CutoutStatus::Timeout, None, "timed out".into()),
            Ok(Err(BodyError::Http(e))) if e.is_timeout() => {
                retry(CutoutStatus::Timeout, None, e.to_string())
            }
            Ok(Err(BodyError::Http(e))) => retry(CutoutStatus::BadResponse, None, e.to_string()),
            Ok(Err(BodyError::OverBudget { budget, seen })) => retry(
                CutoutStatus::BadResponse,
                None,
                format!("answer of {seen}+ bytes, more than the {budget} a cutout can have"),
            ),
            Ok(Ok((status, retry_after, body))) => self.classify(status, retry_after, body),
        }
    }

    fn classify(&self, status: StatusCode, retry_after: Option<Duration>, body: Bytes) -> Attempt {
        let cfg = &self.inner.cfg;
        let code = status.as_u16();
        match code {
            200 => {
                if body.trim_ascii() == b"no such layer" {
                    return Attempt::Final {
                        status: CutoutStatus::BadResponse,
                        why: format!("viewer has no layer {:?}", cfg.layer),
                    };
                }
                let decoded = if cfg.invvar || cfg.maskbits {
                    fits_image::decode_planes(&body, cfg.size, &cfg.bands)
                } else {
                    fits_image::decode(&body, cfg.size, &cfg.bands)
                        .map(fits_image::Planes::image_only)
                };
                match decoded {
                    Ok(planes) => Attempt::Image(planes),
                    Err(e) => retry(
                        CutoutStatus::BadResponse,
                        None,
                        format!("{e} ({} bytes)", body.len()),
                    ),
                }
            }
            500 => retry(CutoutStatus::OffFootprint, None, "HTTP 500".into()),
            429 | 503 => retry(
                CutoutStatus::Http(code),
                retry_after,
                format!("HTTP {code}"),
            ),
            408 | 501..=599 => retry(CutoutStatus::Http(code), None, format!("HTTP {code}")),
            _ => Attempt::Final {
                status: CutoutStatus::Http(code),
                why: format!("HTTP {code}"),
            },
        }
    }
}

/// Reads a body as a stream, refusing it as soon as it is known to exceed
/// `budget` bytes: from `Content-Length` before reading, or while reading.
/// Memory per request is at most `budget` plus one chunk. Every chunk
/// received is counted in `received`.
async fn read_capped(
    mut resp: reqwest::Response,
    budget: u64,
    received: &AtomicU64,
) -> Result<Bytes, BodyError> {
    if let Some(len) = resp.content_length() {
        if len > budget {
            return Err(BodyError::OverBudget { budget, seen: len });
        }
    }
    let expected = resp.content_length().unwrap_or(0).min(budget) as usize;
    let mut body = Vec::with_capacity(expected);
    while let Some(chunk) = resp.chunk().await? {
        received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let seen = (body.len() + chunk.len()) as u64;
        if seen > budget {
            return Err(BodyError::OverBudget { budget, seen });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn retry(status: CutoutStatus, wait: Option<Duration>, why: String) -> Attempt {
    Attempt::Retry { status, wait, why }
}
