//! `run.json`: what ran, with which configuration and versions, and what
//! every stage counted. Stages run separately add their section to the same
//! file.

use serde_json::{json, Value};

use crate::config::Config;
use crate::error::Result;
use crate::sink::Location;

pub const PIPELINE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("LENSPIPE_GIT_COMMIT");

pub fn versions() -> Value {
    json!({
        "lenspipe": PIPELINE_VERSION,
        "git_commit": GIT_COMMIT,
        "datafusion": datafusion::DATAFUSION_VERSION,
        "ballista": ballista_core::BALLISTA_VERSION,
    })
}

/// Reads `<output>/run.json` (if any), sets one stage's section and the
/// run-level fields, and writes it back.
pub async fn record_stage(
    output: &Location,
    config: &Config,
    engine: &str,
    stage: &str,
    section: Value,
) -> Result<Value> {
    let file = output.child("run.json");
    let mut run: Value = match file.get_bytes().await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({})),
        None => json!({}),
    };
    if !run.is_object() {
        run = json!({});
    }
    run["versions"] = versions();
    run["profile"] = json!(config.profile);
    run["config"] =
        serde_json::to_value(config).map_err(|e| crate::error::Error::Other(e.to_string()))?;
    run["output"] = json!(output.url);
    run["engine"] = json!(engine);
    if !run["stages"].is_object() {
        run["stages"] = json!({});
    }
    run["stages"][stage] = section;
    let text =
        serde_json::to_vec_pretty(&run).map_err(|e| crate::error::Error::Other(e.to_string()))?;
    file.put_bytes(text).await?;
    Ok(run)
}
