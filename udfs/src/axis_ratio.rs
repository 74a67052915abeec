//! `axis_ratio(e1, e2)`: minor-to-major axis ratio from Tractor ellipticities.

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

/// `b/a = (1 - |e|) / (1 + |e|)` with `|e| = sqrt(e1^2 + e2^2)`; `None` for
/// non-finite inputs or `|e| >= 1`.
#[inline]
pub fn axis_ratio_value(e1: f64, e2: f64) -> Option<f64> {
    let e = e1.hypot(e2);
    if e.is_finite() && e1.is_finite() && e2.is_finite() && e < 1.0 {
        Some((1.0 - e) / (1.0 + e))
    } else {
        None
    }
}

const NAME: &str = "axis_ratio";
const ARGS: [(&str, ArgKind); 2] = [("e1", ArgKind::Float), ("e2", ArgKind::Float)];

/// `axis_ratio(e1, e2) -> Float64`: the axis ratio `b/a = (1 - |e|)/(1 + |e|)`
/// with `|e| = sqrt(e1^2 + e2^2)`, the Tractor ellipticity convention
/// documented by the Legacy Surveys (`SHAPE_E1`, `SHAPE_E2`).
///
/// NULL for NULL or non-finite inputs or `|e| >= 1`. Round objects (`e = 0`,
/// e.g. PSF/REX) give 1.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AxisRatio {
    signature: Signature,
}

impl Default for AxisRatio {
    fn default() -> Self {
        Self::new()
    }
}

impl AxisRatio {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Axis ratio b/a = (1 - |e|)/(1 + |e|), |e| = sqrt(e1^2 + e2^2), from the Tractor \
         ellipticity components (Legacy Surveys convention). NULL for NULL/non-finite inputs or \
         |e| >= 1.",
        "axis_ratio(e1, e2)",
    )
    .with_sql_example(
        r#"```sql
> SELECT axis_ratio(0.6, 0.0);
+------------------------------------+
| axis_ratio(Float64(0.6),Float64(0)) |
+------------------------------------+
| 0.25                               |
+------------------------------------+
```"#,
    )
    .with_argument("e1", "First ellipticity component (SHAPE_E1).")
    .with_argument("e2", "Second ellipticity component (SHAPE_E2).")
    .build()
});

impl ScalarUDFImpl for AxisRatio {
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
        let e1 = f64_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let e2 = f64_arg(NAME, ARGS[1].0, &args.args[1], n)?;
        let out: Float64Array = (0..n)
            .map(|i| axis_ratio_value(opt_f64(&e1, i)?, opt_f64(&e2, i)?))
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
    use crate::common::test_util::{a, floats, invoke};

    #[test]
    fn values() {
        assert_eq!(axis_ratio_value(0.0, 0.0), Some(1.0));
        assert_eq!(axis_ratio_value(0.6, 0.0), Some(0.25));
        assert_eq!(axis_ratio_value(0.0, -0.6), Some(0.25));
        let q = axis_ratio_value(0.3, 0.4).unwrap(); // |e| = 0.5
        assert!((q - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(axis_ratio_value(1.0, 0.0), None);
        assert_eq!(axis_ratio_value(0.0, -1.0), None);
        assert_eq!(axis_ratio_value(3.0, 4.0), None);
        assert_eq!(axis_ratio_value(f64::NAN, 0.0), None);
        assert_eq!(axis_ratio_value(f64::INFINITY, 0.0), None);
        assert_eq!(axis_ratio_value(0.0, f64::NEG_INFINITY), None);
    }

    #[test]
    fn arrays_and_nulls() {
        let e1: ArrayRef = Arc::new(Float32Array::from(vec![
            Some(0.6f32),
            None,
            Some(0.0),
            Some(2.0),
        ]));
        let e2: ArrayRef = Arc::new(Float32Array::from(vec![
            Some(0.0f32),
            Some(0.0),
            None,
            Some(0.0),
        ]));
        let out = invoke(&AxisRatio::new(), vec![a(e1), a(e2)], 4).unwrap();
        let v = floats(&out);
        assert!((v[0].unwrap() - 0.25).abs() < 1e-7);
        assert_eq!(&v[1..], &[None, None, None]);
    }
}
