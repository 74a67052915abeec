//! `angular_sep_arcsec(ra1, dec1, ra2, dec2)`: great-circle separation.

use std::sync::LazyLock;

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, f64_arg, opt_f64, ArgKind, DOC_SECTION_LENSPIPE,
};

/// The one separation formula (Vincenty), shared with the synthetic sweeps.
pub use lenspipe_fits::sphere::angular_sep_arcsec as angular_sep_arcsec_value;

const NAME: &str = "angular_sep_arcsec";
const ARGS: [(&str, ArgKind); 4] = [
    ("ra1", ArgKind::Float),
    ("dec1", ArgKind::Float),
    ("ra2", ArgKind::Float),
    ("dec2", ArgKind::Float),
];

/// `angular_sep_arcsec(ra1, dec1, ra2, dec2) -> Float64`: the great-circle
/// separation in arcseconds between two positions given in degrees.
///
/// Uses the Vincenty formula (numerically stable at small separations and
/// near antipodes). NULL if any input is NULL, non-finite, or a `|dec|`
/// exceeds 90.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AngularSepArcsec {
    signature: Signature,
}

impl Default for AngularSepArcsec {
    fn default() -> Self {
        Self::new()
    }
}

impl AngularSepArcsec {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Great-circle separation in arcseconds between (ra1, dec1) and (ra2, dec2) in degrees \
         (Vincenty formula, stable at small separations). NULL if any input is NULL, non-finite \
         or |dec| > 90.",
        "angular_sep_arcsec(ra1, dec1, ra2, dec2)",
    )
    .with_sql_example(
        r#"```sql
> SELECT angular_sep_arcsec(0.0, 0.0, 180.0, 0.0);
+-----------------------------------------------------------------+
| angular_sep_arcsec(Float64(0),Float64(0),Float64(180),Float64(0)) |
+-----------------------------------------------------------------+
| 648000.0                                                        |
+-----------------------------------------------------------------+
```"#,
    )
    .with_argument("ra1", "Right ascension of the first position in degrees.")
    .with_argument("dec1", "Declination of the first position in degrees.")
    .with_argument("ra2", "Right ascension of the second position in degrees.")
    .with_argument("dec2", "Declination of the second position in degrees.")
    .with_related_udf("healpix_cone_cells")
    .build()
});

impl ScalarUDFImpl for AngularSepArcsec {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_args(NAME, &ARGS, arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let n = args.number_rows;
        let ra1 = f64_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let dec1 = f64_arg(NAME, ARGS[1].0, &args.args[1], n)?;
        let ra2 = f64_arg(NAME, ARGS[2].0, &args.args[2], n)?;
        let dec2 = f64_arg(NAME, ARGS[3].0, &args.args[3], n)?;
        let out: Float64Array = (0..n)
            .map(|i| {
                angular_sep_arcsec_value(
                    opt_f64(&ra1, i)?,
                    opt_f64(&dec1, i)?,
                    opt_f64(&ra2, i)?,
                    opt_f64(&dec2, i)?,
                )
            })
            .collect();
        array_result(out)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float32Array};

    use super::*;
    use crate::common::test_util::{a, f, floats, invoke};

    const ONE: f64 = 1.0 / 3600.0;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn nulls_and_invalid() {
        let col = |v: Vec<Option<f64>>| -> ColumnarValue {
            a(Arc::new(arrow::array::Float64Array::from(v)) as ArrayRef)
        };
        let out = invoke(
            &AngularSepArcsec::new(),
            vec![
                col(vec![None, Some(0.0), Some(f64::NAN), Some(0.0), Some(0.0)]),
                col(vec![Some(0.0), None, Some(0.0), Some(91.0), Some(0.0)]),
                f(0.0),
                f(0.0),
            ],
            5,
        )
        .unwrap();
        assert_eq!(floats(&out), vec![None, None, None, None, Some(0.0)]);
    }

    #[test]
    fn float32_columns() {
        let ra: ArrayRef = Arc::new(Float32Array::from(vec![10.0f32]));
        let dec: ArrayRef = Arc::new(Float32Array::from(vec![0.0f32]));
        let out = invoke(
            &AngularSepArcsec::new(),
            vec![a(ra), a(dec), f(10.0 + ONE), f(0.0)],
            1,
        )
        .unwrap();
        assert!(close(floats(&out)[0].unwrap(), 1.0, 1e-6));
    }
}
