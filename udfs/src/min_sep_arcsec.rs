//! `min_sep_arcsec(ra, dec, positions)`: distance to the nearest of a list of positions.

use std::sync::LazyLock;

use arrow::array::{Array, AsArray, Float64Array, ListArray};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::angular_sep_arcsec::angular_sep_arcsec_value;
use crate::common::{array_result, check_arity, f64_arg, opt_f64, DOC_SECTION_LENSPIPE};

const NAME: &str = "min_sep_arcsec";

/// `min_sep_arcsec(ra, dec, positions) -> Float64`: the great-circle distance
/// in arcseconds from (ra, dec) to the nearest of `positions`, a list of
/// `[ra, dec]` pairs in degrees (e.g. `array_agg(make_array(ra, dec))` of the
/// lenses sharing a HEALPix cell).
///
/// The positions are an argument, not state, so the function stays pure and
/// a plan that ships it carries everything. NULL when the row's position is
/// NULL or non-finite, or when the list is NULL or holds no valid pair.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinSepArcsec {
    signature: Signature,
}

impl Default for MinSepArcsec {
    fn default() -> Self {
        Self::new()
    }
}

impl MinSepArcsec {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Distance in arcseconds from (ra, dec) to the nearest [ra, dec] pair of a list, \
         in degrees. NULL for a NULL position or an empty list.",
        "min_sep_arcsec(ra, dec, positions)",
    )
    .with_sql_example(
        r#"```sql
> SELECT min_sep_arcsec(10.0, 0.0, make_array(make_array(10.0, 0.001), make_array(20.0, 0.0)));
-- 3.6
```"#,
    )
    .with_argument("ra", "Right ascension in degrees.")
    .with_argument("dec", "Declination in degrees.")
    .with_argument("positions", "List of [ra, dec] lists in degrees.")
    .with_related_udf("angular_sep_arcsec")
    .build()
});

fn is_pair_list(dt: &DataType) -> bool {
    match dt {
        DataType::List(item) => matches!(item.data_type(), DataType::List(_) | DataType::Null),
        DataType::Null => true,
        _ => false,
    }
}

impl ScalarUDFImpl for MinSepArcsec {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [ra, dec, positions] = arg_types else {
            return plan_err!(
                "{NAME} expects 3 arguments (ra, dec, positions), got {}",
                arg_types.len()
            );
        };
        for (name, dt) in [("ra", ra), ("dec", dec)] {
            if !(dt.is_numeric() || dt.is_null()) {
                return plan_err!("{NAME}: argument `{name}` must be numeric, got {dt}");
            }
        }
        if !is_pair_list(positions) {
            return plan_err!(
                "{NAME}: argument `positions` must be a list of [ra, dec] lists, got {positions}"
            );
        }
        Ok(vec![
            DataType::Float64,
            DataType::Float64,
            positions.clone(),
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, 3)?;
        let n = args.number_rows;
        let ra = f64_arg(NAME, "ra", &args.args[0], n)?;
        let dec = f64_arg(NAME, "dec", &args.args[1], n)?;
        let positions = args.args[2].to_array(n)?;
        if positions.data_type().is_null() {
            return array_result(Float64Array::new_null(n));
        }
        let Some(lists) = positions.as_list_opt::<i32>() else {
            return exec_err!(
                "{NAME}: argument `positions` must be a list, got {}",
                positions.data_type()
            );
        };
        let out: Float64Array = (0..n)
            .map(|i| nearest(lists, i, opt_f64(&ra, i)?, opt_f64(&dec, i)?))
            .collect();
        array_result(out)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

/// The smallest separation from (ra, dec) to the valid pairs of row `i`.
fn nearest(lists: &ListArray, i: usize, ra: f64, dec: f64) -> Option<f64> {
    if lists.is_null(i) {
        return None;
    }
    let pairs = lists.value(i);
    let pairs = pairs.as_list_opt::<i32>()?;
    let mut best: Option<f64> = None;
    for j in 0..pairs.len() {
        if pairs.is_null(j) {
            continue;
        }
        let pair = pairs.value(j);
        let Some(values) = pair.as_primitive_opt::<Float64Type>() else {
            continue;
        };
        if values.len() != 2 || values.null_count() > 0 {
            continue;
        }
        if let Some(sep) = angular_sep_arcsec_value(ra, dec, values.value(0), values.value(1)) {
            best = Some(best.map_or(sep, |b: f64| b.min(sep)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Builder, ListBuilder};
    use datafusion::prelude::SessionContext;

    use super::*;

    fn pairs(rows: &[Option<Vec<[f64; 2]>>]) -> ArrayRef {
        let mut b = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
        for row in rows {
            match row {
                None => b.append(false),
                Some(ps) => {
                    for p in ps {
                        b.values().values().append_slice(p);
                        b.values().append(true);
                    }
                    b.append(true);
                }
            }
        }
        Arc::new(b.finish())
    }

    #[test]
    fn nearest_of_the_list() {
        let lists = pairs(&[Some(vec![[10.0, 0.001], [20.0, 0.0]]), Some(vec![]), None]);
        let lists = lists.as_list::<i32>();
        let d = nearest(lists, 0, 10.0, 0.0).unwrap();
        assert!((d - 3.6).abs() < 1e-9, "{d}");
        assert_eq!(nearest(lists, 1, 10.0, 0.0), None);
        assert_eq!(nearest(lists, 2, 10.0, 0.0), None);
    }

    #[tokio::test]
    async fn works_on_array_agg_of_make_array_in_sql() {
        let ctx = SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
            MinSepArcsec::new(),
        ));
        let df = ctx
            .sql(
                "WITH l AS (SELECT * FROM (VALUES (1, 10.0, 0.001), (1, 10.0, 0.01), (2, 50.0, 5.0)) AS t(cell, ra, dec)), \
                 g AS (SELECT cell, array_agg(make_array(ra, dec)) AS p FROM l GROUP BY cell) \
                 SELECT min_sep_arcsec(10.0, 0.0, p) AS d FROM g WHERE cell = 1",
            )
            .await
            .unwrap();
        let batches = df.collect().await.unwrap();
        let d = batches[0].column(0).as_primitive::<Float64Type>().value(0);
        assert!((d - 3.6).abs() < 1e-9, "{d}");
    }
}
