//! The stages' SQL plans and the typed binding of their parameters.
//!
//! Plans are kept as readable `.sql` files with `$name` placeholders.
//! Values from the configuration are bound as typed `ScalarValue`s through
//! DataFusion's parameter mechanism, never pasted into the SQL text, so no
//! configuration value can change the structure of a plan.

use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::{DataFrame, SessionContext};

use lenspipe_udfs::reasons::RejectReason;

use crate::columns::{Projection, MARKER};
use crate::config::Config;
use crate::error::Result;
use crate::stages::positives::PositiveStatus;

/// A SQL plan shipped with the binary.
#[derive(Debug, Clone, Copy)]
pub struct SqlPlan {
    pub text: &'static str,
    /// The projection its `@output_columns` line stands for, if it has one.
    pub output: Option<Projection>,
}

pub const NEGATIVES: SqlPlan = SqlPlan {
    text: include_str!("../sql/negatives.sql"),
    output: Some(Projection::Negatives),
};
pub const LENS_CELLS: SqlPlan = SqlPlan {
    text: include_str!("../sql/lens_cells.sql"),
    output: None,
};
pub const MATCH_CELLS: SqlPlan = SqlPlan {
    text: include_str!("../sql/match_cells.sql"),
    output: None,
};
pub const POSITIVES: SqlPlan = SqlPlan {
    text: include_str!("../sql/positives.sql"),
    output: Some(Projection::Positives),
};
pub const STRATIFY: SqlPlan = SqlPlan {
    text: include_str!("../sql/stratify.sql"),
    output: None,
};

/// HEALPix order of the crossmatch and exclusion buckets: cells of about
/// 3.4 arcmin, much larger than the radii, so a cone touches few cells.
pub const JOIN_NSIDE: i64 = 1024;

/// Typed values for a plan's placeholders.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, ScalarValue)>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds these values to the placeholders of `df`.
    pub fn bind(self, df: DataFrame) -> Result<DataFrame> {
        Ok(df.with_param_values(ParamValues::from(self.0))?)
    }
    pub fn f64(mut self, name: &str, v: f64) -> Self {
        self.0.push((name.into(), ScalarValue::Float64(Some(v))));
        self
    }
    pub fn i64(mut self, name: &str, v: i64) -> Self {
        self.0.push((name.into(), ScalarValue::Int64(Some(v))));
        self
    }
    pub fn str(mut self, name: &str, v: impl Into<String>) -> Self {
        self.0
            .push((name.into(), ScalarValue::Utf8(Some(v.into()))));
        self
    }
    pub fn bool(mut self, name: &str, v: bool) -> Self {
        self.0.push((name.into(), ScalarValue::Boolean(Some(v))));
        self
    }

    /// The Paper IV selection thresholds, shared by the negatives and positives plans.
    pub fn selection(self, config: &Config) -> Self {
        let s = &config.selection;
        self.f64("dec_min", s.dec_min.value)
            .f64("dec_max", s.dec_max.value)
            .str("valid_types", s.types.value.join(","))
            .i64("exclude_mask", config.exclude_mask())
            .i64("min_nobs_g", s.min_nobs.value.g)
            .i64("min_nobs_r", s.min_nobs.value.r)
            .i64("min_nobs_z", s.min_nobs.value.z)
            .f64("z_mag_max", s.z_mag_max.value)
            .str("nobs_z_bins", config.bins.nobs_z_spec())
            .i64("join_nside", JOIN_NSIDE)
    }

    /// The N2 confuser criteria.
    pub fn n2(self, config: &Config) -> Self {
        let n2 = &config.n2;
        self.str("ring_types", n2.ring_proxy.value.types.join(","))
            .f64("ring_flux_r_min", n2.ring_proxy.value.flux_r_min)
            .str("edge_types", n2.edge_on_proxy.value.types.join(","))
            .f64("edge_shape_r_min", n2.edge_on_proxy.value.shape_r_min)
            .f64("blue_g_minus_r_max", n2.blue_clumpy.value.g_minus_r_max)
            .f64("blue_r_mag_max", n2.blue_clumpy.value.r_mag_max)
    }

    /// Every reject reason's string, as `$reason_<name>`.
    pub fn reasons(mut self) -> Self {
        for r in RejectReason::ALL {
            self = self.str(&variant_param("reason", r), r.as_str());
        }
        self
    }

    /// Every positives status's string, as `$status_<name>`.
    pub fn statuses(mut self) -> Self {
        for s in PositiveStatus::ALL {
            self = self.str(&variant_param("status", s), s.as_str());
        }
        self
    }
}

/// `<prefix>_<variant in snake case>`, e.g. `reason_near_known_lens`: named
/// after the variant rather than its string, so renaming a string changes
/// no plan.
pub fn variant_param(prefix: &str, variant: impl std::fmt::Debug) -> String {
    let mut name = prefix.to_string();
    for c in format!("{variant:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

impl SqlPlan {
    /// The SQL text, its output columns written out.
    pub fn sql(&self) -> String {
        match self.output {
            Some(projection) => self.text.replace(MARKER, &projection.select_list()),
            None => self.text.to_string(),
        }
    }

    /// Plans the SQL and binds every placeholder; an unbound one is an error.
    pub async fn dataframe(&self, ctx: &SessionContext, params: Params) -> Result<DataFrame> {
        params.bind(ctx.sql(&self.sql()).await?)
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
