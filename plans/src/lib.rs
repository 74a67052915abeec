//! lenspipe's stages as SQL plans over DataFusion, their typed
//! configuration, the sinks they write through and the run manifest.

// `!(a > b)` is used on purpose where NaN must take the "not greater" branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod columns;
pub mod config;
pub mod engine;
pub mod error;
pub mod lenses;
pub mod manifest;
pub mod parity;
pub mod plan;
pub mod progress;
pub mod sink;
pub mod stages;

pub use config::Config;
pub use engine::{Engine, EngineKind};
pub use error::{Error, Result};
