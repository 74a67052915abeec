//! Request counters, served at `/stats`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Live counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    requests: AtomicU64,
    faults_injected: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    attempts: Mutex<HashMap<String, u32>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Cutout requests received.
    pub requests: u64,
    /// Requests answered with an injected fault.
    pub faults_injected: u64,
    /// Cutout requests being answered now.
    pub in_flight: usize,
    /// Most cutout requests ever answered at once.
    pub max_in_flight: usize,
    /// Requests per target, keyed by [`super::target_key`].
    pub attempts: BTreeMap<String, u32>,
}

/// Counts one request as in flight until dropped (also when the client
/// hangs up and the handler is cancelled).
pub(crate) struct InFlight<'a>(&'a ServerStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ServerStats {
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    /// Records a request for `key`; returns its 1-based attempt number.
    pub(crate) fn attempt(&self, key: &str) -> u32 {
        let mut map = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    pub(crate) fn fault(&self) {
        self.faults_injected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let attempts = self
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            faults_injected: self.faults_injected.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            attempts,
        }
    }
}
