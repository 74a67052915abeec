//! Everything an engine needs to run lenspipe plans, shared by the embedded
//! engine, the Ballista client, the scheduler and the executors: the UDFs,
//! the object store registry and the one plan codec for every lenspipe
//! node. The cluster binaries depend on this crate
//! alone, not on the stages or the CLI.

pub mod cli_defaults;
pub mod inline_build;
pub mod memory;
#[cfg(test)]
mod roundtrip;

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use inline_build::{InlineSmallBuildSides, InlinedJoinNodes};
use lenspipe_cutouts::CUTOUTS_NODES;
use lenspipe_sinks::SinksNodes;
use lenspipe_sweeps::{EnvObjectStoreRegistry, PlanCodec, SweepsNodes};
use lenspipe_validate::checks_job::CHECKS_NODES;

/// The one plan codec: every lenspipe node (the sweeps table and its scan,
/// the writer, the cutout and checks jobs, joins with an inlined build
/// side), then
/// Ballista's own codecs for everything else.
pub fn plan_codec() -> Arc<PlanCodec> {
    Arc::new(PlanCodec::new(
        vec![
            Arc::new(SweepsNodes),
            Arc::new(SinksNodes),
            Arc::new(CUTOUTS_NODES),
            Arc::new(CHECKS_NODES),
            Arc::new(InlinedJoinNodes),
        ],
        Arc::new(BallistaLogicalExtensionCodec::default()),
        Arc::new(BallistaPhysicalExtensionCodec::default()),
    ))
}

/// [`plan_codec`] as the logical codec.
pub fn logical_codec() -> Arc<dyn LogicalExtensionCodec> {
    plan_codec()
}

/// [`plan_codec`] as the physical codec.
pub fn physical_codec() -> Arc<dyn PhysicalExtensionCodec> {
    plan_codec()
}

/// A runtime whose object stores come from the process environment.
pub fn runtime_env(_config: &SessionConfig) -> Result<Arc<RuntimeEnv>> {
    runtime_env_with_memory_limit(None)
}

/// As [`runtime_env`], with the operators' memory reservations bounded by
/// `limit_bytes`: spilling operators (sorts, aggregates) share it fairly and
/// spill to the temporary directory; a reservation that cannot fit fails the
/// query with DataFusion's "Resources exhausted" error, naming the largest
/// consumers, instead of growing the process until the kernel kills it.
pub fn runtime_env_with_memory_limit(limit_bytes: Option<usize>) -> Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(EnvObjectStoreRegistry::new()));
    if let Some(bytes) = limit_bytes {
        let top = std::num::NonZeroUsize::new(3).expect("3 is not zero");
        builder = builder.with_memory_pool(Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(bytes),
            top,
        )));
    }
    Ok(Arc::new(builder.build()?))
}

/// Settings every lenspipe session runs with, embedded or on a cluster.
///
/// Every join in the plans pairs the sweeps with a small table (lens cells,
/// quotas, grade weights) written on the left: without join repartitioning
/// that side is collected and broadcast, and the sweeps are never shuffled.
pub fn tune(config: SessionConfig) -> SessionConfig {
    config.set_bool("datafusion.optimizer.repartition_joins", false)
}

/// Session configuration for every process of a cluster (and its clients).
pub fn cluster_session_config() -> SessionConfig {
    tune(SessionConfig::new_with_ballista())
        // Ballista 55's adaptive planner re-plans the stratify stage's window
        // over a join in an endless series of stages; the static planner does not.
        .with_ballista_adaptive_query_planner(false)
        .with_ballista_logical_extension_codec(logical_codec())
        .with_ballista_physical_extension_codec(physical_codec())
}

/// A session state with the lenspipe functions and object stores.
pub fn session_state(config: SessionConfig) -> Result<SessionState> {
    session_state_with_memory_limit(config, None)
}

/// As [`session_state`], with a memory limit (see [`runtime_env_with_memory_limit`]).
pub fn session_state_with_memory_limit(
    config: SessionConfig,
    limit_bytes: Option<usize>,
) -> Result<SessionState> {
    let runtime = runtime_env_with_memory_limit(limit_bytes)?;
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(InlineSmallBuildSides))
        .build();
    // Added to, not in place of, DataFusion's own functions.
    lenspipe_udfs::register_all(&mut state)?;
    Ok(state)
}

/// The function registry executors resolve UDF names with.
pub fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    // Ballista's default registry lacks the nested (array) functions our plans use.
    let defaults = datafusion::execution::SessionStateDefaults::default_scalar_functions();
    for udf in defaults.into_iter().chain(lenspipe_udfs::all()) {
        registry
            .scalar_functions
            .insert(udf.name().to_string(), udf);
    }
    registry
}
