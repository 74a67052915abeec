//! Injected faults, for tests and benchmarks.
//!
//! Faults are deterministic per target so a test knows what each target
//! should end as: a rule picks targets by a hash of their key (or by an
//! explicit list) and spoils their first `first` attempts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::target_key;

/// What an injected fault answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum FaultKind {
    /// 429 with a `Retry-After` header.
    #[serde(rename = "429")]
    TooManyRequests {
        #[serde(default = "one_second")]
        retry_after: String,
    },
    /// 503, with a `Retry-After` header if given.
    #[serde(rename = "503")]
    Unavailable {
        #[serde(default)]
        retry_after: Option<String>,
    },
    /// Sleeps `sleep_ms` before answering normally (longer than the client's
    /// timeout, so the client gives up first).
    #[serde(rename = "timeout")]
    Timeout {
        #[serde(default = "ten_seconds")]
        sleep_ms: u64,
    },
    /// The FITS answer cut in half.
    #[serde(rename = "truncated")]
    Truncated,
    /// 200 with an HTML error page.
    #[serde(rename = "html")]
    Html,
    /// 200 with an empty body.
    #[serde(rename = "empty")]
    Empty,
    /// 500, on every attempt (like the viewer off the footprint).
    #[serde(rename = "off_footprint")]
    OffFootprint,
    /// Any other status with a short text body.
    #[serde(rename = "status")]
    Status { code: u16 },
    /// 200 whose body never ends: the right answer, then zeros for ever,
    /// with no `Content-Length`.
    #[serde(rename = "endless")]
    Endless,
    /// 200 whose `Content-Length` says `content_length` bytes (far more than
    /// a cutout), followed by zeros.
    #[serde(rename = "oversized")]
    Oversized {
        #[serde(default = "ten_gib")]
        content_length: u64,
    },
}

fn ten_gib() -> u64 {
    10 << 30
}

fn one_second() -> String {
    "1".to_string()
}

fn ten_seconds() -> u64 {
    10_000
}

fn first_default() -> u32 {
    1
}

/// One fault rule. A target matches if its key is in `targets` (this wins
/// over fractions), or if its hash falls in this rule's share of the hash space: `fraction` rules take
/// consecutive, disjoint slices of `[0, 1)` in the order given, so two 10%
/// rules spoil two different 10% of the targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default)]
    pub fraction: f64,
    /// Explicit `[ra, dec]` targets.
    #[serde(default)]
    pub targets: Vec<(f64, f64)>,
    /// Attempts spoiled per target (1-based attempts `1..=first`);
    /// `off_footprint` spoils all. Use a large number for "always".
    #[serde(default = "first_default")]
    pub first: u32,
}

impl FaultRule {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            fraction: 0.0,
            targets: Vec::new(),
            first: 1,
        }
    }

    pub fn fraction(mut self, f: f64) -> Self {
        self.fraction = f;
        self
    }

    pub fn targets(mut self, t: Vec<(f64, f64)>) -> Self {
        self.targets = t;
        self
    }

    pub fn first(mut self, k: u32) -> Self {
        self.first = k;
        self
    }
}

/// All injected behaviour of a server. `Faults::default()` is a clean server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Added to every cutout request before it is answered.
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// A fault spec that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FaultsError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("fault spec: {0}")]
    Json(#[from] serde_json::Error),
    #[error("fault spec: fractions add up to {0} > 1")]
    Fractions(f64),
}

impl Faults {
    /// Parses a JSON spec, e.g.
    /// `{"latency_ms": 100, "rules": [{"kind": "429", "fraction": 0.1,
    /// "first": 2, "retry_after": "1"}, {"kind": "off_footprint",
    /// "targets": [[150.1, 2.2]]}]}`.
    pub fn from_json(text: &str) -> Result<Self, FaultsError> {
        let f: Faults = serde_json::from_str(text)?;
        let total: f64 = f.rules.iter().map(|r| r.fraction.max(0.0)).sum();
        if total > 1.0 + 1e-9 || total.is_nan() {
            return Err(FaultsError::Fractions(total));
        }
        Ok(f)
    }

    pub fn from_path(path: &Path) -> Result<Self, FaultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| FaultsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The rule that matches `key`, if any: explicit target lists first (the
    /// first rule listing it), then the hash-space slices.
    pub fn rule_for(&self, key: &str) -> Option<&FaultRule> {
        let listed = self.rules.iter().find(|r| {
            r.targets
                .iter()
                .any(|&(ra, dec)| target_key(ra, dec) == key)
        });
        if listed.is_some() {
            return listed;
        }
        let u = key_unit(key);
        let mut lo = 0.0;
        for rule in &self.rules {
            let hi = lo + rule.fraction.max(0.0);
            if u >= lo && u < hi {
                return Some(rule);
            }
            lo = hi;
        }
        None
    }

    /// The fault to inject for attempt `attempt` (1-based) of `key`.
    pub fn fault_for(&self, key: &str, attempt: u32) -> Option<&FaultKind> {
        let rule = self.rule_for(key)?;
        let always = matches!(rule.kind, FaultKind::OffFootprint);
        (always || attempt <= rule.first).then_some(&rule.kind)
    }
}

/// A target key hashed to `[0, 1)` (FNV-1a, then a 64-bit finaliser).
pub fn key_unit(key: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec() {
        let f = Faults::from_json(
            r#"{"latency_ms": 5, "rules": [
                {"kind": "429", "fraction": 0.1, "first": 2},
                {"kind": "503", "fraction": 0.1, "retry_after": "2"},
                {"kind": "timeout", "sleep_ms": 300, "targets": [[1.5, -2.25]]},
                {"kind": "truncated"}, {"kind": "html"}, {"kind": "empty"},
                {"kind": "off_footprint", "fraction": 0.05},
                {"kind": "status", "code": 404}
            ]}"#,
        )
        .unwrap();
        assert_eq!(f.latency_ms, 5);
        assert_eq!(f.rules.len(), 8);
        assert_eq!(
            f.rules[0].kind,
            FaultKind::TooManyRequests {
                retry_after: "1".into()
            }
        );
        assert_eq!(f.rules[0].first, 2);
        assert_eq!(f.rules[1].first, 1);
        assert_eq!(f.rules[2].kind, FaultKind::Timeout { sleep_ms: 300 });
        assert_eq!(
            f.fault_for(&target_key(1.5, -2.25), 1),
            Some(&FaultKind::Timeout { sleep_ms: 300 })
        );
        assert!(Faults::from_json(r#"{"rules": [{"kind": "nope"}]}"#).is_err());
        assert!(Faults::from_json(
            r#"{"rules": [{"kind": "html", "fraction": 0.6}, {"kind": "empty", "fraction": 0.6}]}"#
        )
        .is_err());
    }

    #[test]
    fn fractions_are_disjoint_and_about_right() {
        let f = Faults {
            latency_ms: 0,
            rules: vec![
                FaultRule::new(FaultKind::Html).fraction(0.2),
                FaultRule::new(FaultKind::Empty).fraction(0.3),
            ],
        };
        let (mut html, mut empty) = (0, 0);
        for i in 0..10_000 {
            let key = target_key(i as f64 * 0.01, 1.0);
            match f.rule_for(&key).map(|r| &r.kind) {
                Some(FaultKind::Html) => html += 1,
                Some(FaultKind::Empty) => empty += 1,
                _ => {}
            }
        }
        assert!((1800..2200).contains(&html), "{html}");
        assert!((2700..3300).contains(&empty), "{empty}");
    }

    #[test]
    fn first_k_attempts_only() {
        let key = target_key(10.0, 20.0);
        let f = Faults {
            latency_ms: 0,
            rules: vec![FaultRule::new(FaultKind::Html)
                .targets(vec![(10.0, 20.0)])
                .first(2)],
        };
        assert!(f.fault_for(&key, 1).is_some());
        assert!(f.fault_for(&key, 2).is_some());
        assert!(f.fault_for(&key, 3).is_none());
        assert!(f.fault_for(&target_key(10.0, 20.5), 1).is_none());
        let off = Faults {
            latency_ms: 0,
            rules: vec![FaultRule::new(FaultKind::OffFootprint).targets(vec![(10.0, 20.0)])],
        };
        assert!(off.fault_for(&key, 99).is_some());
    }
}
