//! The validation's fixed queries, over the registered `checks` table.

use crate::plan::SqlPlan;

const fn plan(text: &'static str) -> SqlPlan {
    SqlPlan { text, output: None }
}

pub const DUPLICATE_HASHES: SqlPlan =
    plan(include_str!("../../../sql/validation/duplicate_hashes.sql"));
pub const TYPE_VALUES: SqlPlan = plan(include_str!("../../../sql/validation/type_values.sql"));
pub const N2_CATEGORIES: SqlPlan = plan(include_str!("../../../sql/validation/n2_categories.sql"));
pub const SPLIT_COUNTS: SqlPlan = plan(include_str!("../../../sql/validation/split_counts.sql"));
pub const SPLIT_SKY_LEAKS: SqlPlan =
    plan(include_str!("../../../sql/validation/split_sky_leaks.sql"));
pub const SPLIT_BRICK_LEAKS: SqlPlan = plan(include_str!(
    "../../../sql/validation/split_brick_leaks.sql"
));
