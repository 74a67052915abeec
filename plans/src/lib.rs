//! lenspipe's stages as SQL plans over DataFusion, their typed
//! configuration, and the pieces the CLI and the cluster binaries share.

pub mod cli_defaults;
pub mod config;
pub mod engine;
pub mod error;
pub mod extensions;
pub mod lenses;
pub mod manifest;
pub mod parity;
pub mod plan;
pub mod sink;
pub mod stages;

pub use config::Config;
pub use engine::{Engine, EngineKind};
pub use error::{Error, Result};
