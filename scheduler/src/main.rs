//! `lenspipe-scheduler`: the stock Ballista scheduler (same flags) with the
//! lenspipe functions, sweeps table codecs and object stores registered.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::error::BallistaError;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{Config, SchedulerConfig};
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;
use lenspipe_extensions as extensions;
use lenspipe_extensions::cli_defaults;

fn main() -> ballista_core::error::Result<()> {
    let opt = Config::parse_from(cli_defaults::loopback_unless_told(std::env::args()));
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| opt.log_level_setting.clone().into()),
        )
        .init();
    let addr: SocketAddr = format!("{}:{}", opt.bind_host, opt.bind_port)
        .parse()
        .map_err(|e: std::net::AddrParseError| BallistaError::Configuration(e.to_string()))?;
    let mut config: SchedulerConfig = opt.try_into()?;
    config.override_config_producer = Some(Arc::new(extensions::cluster_session_config));
    config.override_session_builder = Some(Arc::new(extensions::session_state));
    config.override_logical_codec = Some(extensions::logical_codec());
    config.override_physical_codec = Some(extensions::physical_codec());

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()?
        .block_on(async move {
            let cluster = BallistaCluster::new_from_config(&config).await?;
            start_server(cluster, addr, Arc::new(config)).await
        })
}
