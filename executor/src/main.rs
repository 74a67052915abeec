//! `lenspipe-executor`: the stock Ballista executor (same flags) with the
//! lenspipe functions, FITS scan codec and object stores registered.

use std::sync::Arc;

use ballista_executor::config::Config;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use clap::Parser;
use lenspipe_extensions as extensions;
use lenspipe_extensions::cli_defaults;

fn main() -> ballista_core::error::Result<()> {
    lenspipe_extensions::memory::return_large_blocks();
    let opt = Config::parse_from(cli_defaults::loopback_unless_told(std::env::args()));
    let mut config: ExecutorProcessConfig = opt.try_into()?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| config.special_mod_log_level.clone().into()),
        )
        .init();
    config.override_config_producer = Some(Arc::new(extensions::cluster_session_config));
    config.override_runtime_producer = Some(Arc::new(extensions::runtime_env));
    config.override_function_registry = Some(Arc::new(extensions::function_registry()));
    config.override_logical_codec = Some(extensions::logical_codec());
    config.override_physical_codec = Some(extensions::physical_codec());

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(start_executor_process(Arc::new(config)))
}
