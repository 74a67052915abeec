//! `nmgy_to_mag(flux)`: AB magnitude from a flux in nanomaggies.

use std::sync::LazyLock;

use arrow::array::Float64Array;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, f64_arg, ArgKind, DOC_SECTION_LENSPIPE,
};

/// AB magnitude of a flux in nanomaggies: `22.5 - 2.5 * log10(flux)`.
///
/// Returns `None` when the flux is NaN, infinite, zero or negative (there is
/// no magnitude for it). Exactly 10 nanomaggies is 20.0 mag (not ~19.5).
#[inline]
pub fn flux_to_ab_mag(flux_nmgy: f64) -> Option<f64> {
    if flux_nmgy.is_finite() && flux_nmgy > 0.0 {
        Some(22.5 - 2.5 * flux_nmgy.log10())
    } else {
        None
    }
}

const NAME: &str = "nmgy_to_mag";
const ARGS: [(&str, ArgKind); 1] = [("flux", ArgKind::Float)];

/// `nmgy_to_mag(flux) -> Float64`: the AB magnitude `22.5 - 2.5*log10(flux)`
/// of a Legacy Surveys flux in nanomaggies.
///
/// NULL when `flux` is NULL, NaN, +-infinity, zero or negative. `flux` may be
/// Float32, Float64 or any integer type (coerced to Float64).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NmgyToMag {
    signature: Signature,
}

impl Default for NmgyToMag {
    fn default() -> Self {
        Self::new()
    }
}

impl NmgyToMag {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "AB magnitude `22.5 - 2.5*log10(flux)` of a flux in nanomaggies. Returns NULL when \
         the flux is NULL, NaN, infinite, zero or negative. 10 nanomaggies is exactly 20.0 mag.",
        "nmgy_to_mag(flux)",
    )
    .with_sql_example(
        r#"```sql
> SELECT nmgy_to_mag(10.0);
+----------------------------+
| nmgy_to_mag(Float64(10))   |
+----------------------------+
| 20.0                       |
+----------------------------+
```"#,
    )
    .with_argument(
        "flux",
        "Flux in nanomaggies (Float32, Float64 or integer column or expression).",
    )
    .build()
});

impl ScalarUDFImpl for NmgyToMag {
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
        let flux = f64_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let out: Float64Array = flux.iter().map(|v| v.and_then(flux_to_ab_mag)).collect();
        array_result(out)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float32Array, Int32Array};
    use datafusion::common::ScalarValue;

    use super::*;
    use crate::common::test_util::{a, floats, invoke};

    #[test]
    fn ten_nanomaggies_is_exactly_20_mag() {
        // The v1 pipeline's comment says "~19.5"; it is exactly 20.0.
        assert_eq!(flux_to_ab_mag(10.0), Some(20.0));
        assert_eq!(flux_to_ab_mag(1.0), Some(22.5));
        assert_eq!(flux_to_ab_mag(100.0), Some(17.5));
        let arr: ArrayRef = Arc::new(Float64Array::from(vec![10.0]));
        let out = invoke(&NmgyToMag::new(), vec![a(arr)], 1).unwrap();
        assert_eq!(floats(&out), vec![Some(20.0)]);
    }

    #[test]
    fn invalid_fluxes_are_null() {
        let arr: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(0.0),
            Some(-0.0),
            Some(-5.0),
            None,
            Some(f64::MIN_POSITIVE),
        ]));
        let out = invoke(&NmgyToMag::new(), vec![a(arr)], 8).unwrap();
        let v = floats(&out);
        assert_eq!(&v[..7], &[None; 7]);
        assert!(v[7].unwrap().is_finite());
    }

    #[test]
    fn float32_and_integer_inputs() {
        let arr: ArrayRef = Arc::new(Float32Array::from(vec![Some(10.0f32), None, Some(-1.0)]));
        let out = invoke(&NmgyToMag::new(), vec![a(arr)], 3).unwrap();
        assert_eq!(floats(&out), vec![Some(20.0), None, None]);
        let arr: ArrayRef = Arc::new(Int32Array::from(vec![Some(100), Some(0)]));
        let out = invoke(&NmgyToMag::new(), vec![a(arr)], 2).unwrap();
        assert_eq!(floats(&out), vec![Some(17.5), None]);
    }

    #[test]
    fn scalar_input_and_null_scalar() {
        let out = invoke(
            &NmgyToMag::new(),
            vec![ColumnarValue::Scalar(ScalarValue::Float64(Some(10.0)))],
            3,
        )
        .unwrap();
        assert_eq!(floats(&out), vec![Some(20.0); 3]);
        let out = invoke(
            &NmgyToMag::new(),
            vec![ColumnarValue::Scalar(ScalarValue::Null)],
            2,
        )
        .unwrap();
        assert_eq!(floats(&out), vec![None, None]);
    }

    #[test]
    fn wrong_arity_and_type_are_errors() {
        assert!(NmgyToMag::new().coerce_types(&[]).is_err());
        assert!(NmgyToMag::new().coerce_types(&[DataType::Utf8]).is_err());
        assert!(NmgyToMag::new().documentation().is_some());
    }
}
