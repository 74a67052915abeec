//! Errors of the plans crate: configuration, input data and engine failures.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("input: {0}")]
    Input(String),
    #[error("count check failed: {0}")]
    Conservation(String),
    /// Validation flagged a shortcut and the run was asked to fail on one
    /// (`--fail-on-shortcut`): the outputs are complete, the gate is closed.
    #[error("shortcut flagged: {0}")]
    Shortcut(String),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
