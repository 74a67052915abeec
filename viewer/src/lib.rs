//! Client and local server for the Legacy Surveys viewer `fits-cutout` API.
//!
//! The public viewer (`https://www.legacysurvey.org/viewer/fits-cutout`) is a
//! shared academic service with no documented rate limit, so [`ViewerClient`]
//! limits itself: a bounded number of requests in flight, an average request
//! rate, per-request timeouts and retries with jittered exponential backoff.
//! Every answer is decoded and checked before it counts, because the viewer
//! answers some failures with `200 OK` (an unknown layer, or bad `bands`
//! silently replaced by the layer's default bands).
//!
//! [`server::serve`] answers the same API from a [`server::CutoutProvider`]
//! (for local coadds and for tests), with injectable [`server::Faults`].

pub mod bands;
pub mod client;
pub mod config;
pub mod fits_image;
mod jitter;
pub mod rate;
pub mod retry;
pub mod rgb;
pub mod server;
pub mod status;

pub use client::{ClientStats, Fetched, ViewerClient};
pub use config::{ConfigError, ViewerConfig, PUBLIC_VIEWER_URL};
pub use status::CutoutStatus;
