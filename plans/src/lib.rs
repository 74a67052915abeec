//! lenspipe's stages as SQL plans over DataFusion, their typed
//! configuration, and the pieces the CLI and the cluster binaries share.

// `!(a > b)` is used on purpose where NaN must take the "not greater" branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod cli_defaults;
pub mod columns;
pub mod config;
pub mod engine;
pub mod error;
pub mod extensions;
pub mod lenses;
pub mod manifest;
pub mod memory;
pub mod parity;
pub mod plan;
pub mod probe;
pub mod sink;
pub mod stages;
pub mod transfer;

pub use config::Config;
pub use engine::{Engine, EngineKind};
pub use error::{Error, Result};
