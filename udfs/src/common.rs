//! Shared helpers for the lenspipe scalar functions: argument coercion,
//! typed access to the (coerced) Arrow inputs, extraction and validation of
//! constant threshold arguments, and the documentation section.
//!
//! Nothing in here is a UDF; every `ScalarUDFImpl` lives in its own file.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, DocSection};

/// Documentation section shared by all lenspipe functions.
pub(crate) const DOC_SECTION_LENSPIPE: DocSection = DocSection {
    include: true,
    label: "Lenspipe Functions",
    description: Some(
        "Stateless functions for the DESI Legacy Surveys strong-lens selection (Paper IV funnel, N2 confusers, HEALPix bucketing, deterministic sampling).",
    ),
};

/// Whether an error is raised while planning (literal checked in
/// `return_field_from_args`) or while executing (`invoke_with_args`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Plan,
    Exec,
}

/// Builds a planning or execution error with `msg`.
pub(crate) fn phase_err(phase: Phase, msg: String) -> DataFusionError {
    match phase {
        Phase::Plan => DataFusionError::Plan(msg),
        Phase::Exec => DataFusionError::Execution(msg),
    }
}

// ---------------------------------------------------------------------------
// Coercion
// ---------------------------------------------------------------------------

/// What an argument accepts and what it is coerced to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgKind {
    /// Any numeric type (Float32/Float64/integers/decimals) or NULL -> Float64.
    Float,
    /// Any integer type or NULL -> Int64.
    Int,
    /// A bit field: any integer type is kept as is (the kernel reads the raw
    /// bit pattern of the column width, so an Int16 with bit 15 set is not
    /// sign-extended into bits 16..63); NULL -> Int64.
    Bits,
    /// Utf8 / LargeUtf8 / Utf8View kept as is; dictionaries of strings and
    /// NULL -> Utf8.
    Str,
    /// A hash key: strings as for `Str`, UInt64 kept, other integers -> Int64,
    /// NULL -> Int64.
    Key,
}

fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn coerce_one(fname: &str, name: &str, kind: ArgKind, dt: &DataType) -> Result<DataType> {
    let ok = match kind {
        ArgKind::Float if dt.is_null() || dt.is_numeric() => Some(DataType::Float64),
        ArgKind::Int if dt.is_null() || dt.is_integer() => Some(DataType::Int64),
        ArgKind::Bits if dt.is_null() => Some(DataType::Int64),
        ArgKind::Bits if dt.is_integer() => Some(dt.clone()),
        ArgKind::Str | ArgKind::Key if is_string(dt) => Some(dt.clone()),
        ArgKind::Str if dt.is_null() => Some(DataType::Utf8),
        ArgKind::Str | ArgKind::Key => match dt {
            DataType::Dictionary(_, v) if is_string(v) => Some(DataType::Utf8),
            DataType::UInt64 if kind == ArgKind::Key => Some(DataType::UInt64),
            _ if kind == ArgKind::Key && (dt.is_null() || dt.is_integer()) => Some(DataType::Int64),
            _ => None,
        },
        _ => None,
    };
    match ok {
        Some(t) => Ok(t),
        None => {
            let expected = match kind {
                ArgKind::Float => "a numeric type (Float32, Float64 or an integer)",
                ArgKind::Int | ArgKind::Bits => "an integer type (Int8/16/32/64 or UInt8/16/32/64)",
                ArgKind::Str => "a string type (Utf8, LargeUtf8 or Utf8View)",
                ArgKind::Key => "a string or integer type",
            };
            plan_err!("{fname}: argument `{name}` must be {expected}, got {dt}")
        }
    }
}

/// Implements `ScalarUDFImpl::coerce_types` for a user-defined signature
/// described by `(argument name, kind)` pairs.
pub(crate) fn coerce_args(
    fname: &str,
    spec: &[(&str, ArgKind)],
    arg_types: &[DataType],
) -> Result<Vec<DataType>> {
    if arg_types.len() != spec.len() {
        let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
        return plan_err!(
            "{fname} expects {} arguments ({fname}({})), got {}",
            spec.len(),
            names.join(", "),
            arg_types.len()
        );
    }
    spec.iter()
        .zip(arg_types)
        .map(|((name, kind), dt)| coerce_one(fname, name, *kind, dt))
        .collect()
}

/// Checks the number of runtime arguments (never panics on a bad call).
pub(crate) fn check_arity(fname: &str, args: &[ColumnarValue], n: usize) -> Result<()> {
    if args.len() != n {
        return exec_err!("{fname} expects {n} arguments, got {}", args.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Per-row (data) arguments
// ---------------------------------------------------------------------------

fn to_array_checked(fname: &str, name: &str, cv: &ColumnarValue, n: usize) -> Result<ArrayRef> {
    let arr = cv.to_array(n)?;
    if arr.len() != n {
        return exec_err!(
            "{fname}: argument `{name}` has {} rows, expected {n}",
            arr.len()
        );
    }
    Ok(arr)
}

/// A per-row numeric argument as Float64 (casting if the planner did not).
pub(crate) fn f64_arg(
    fname: &str,
    name: &str,
    cv: &ColumnarValue,
    n: usize,
) -> Result<Float64Array> {
    let arr = to_array_checked(fname, name, cv, n)?;
    let dt = arr.data_type().clone();
    let arr = match &dt {
        DataType::Float64 => arr,
        dt if dt.is_null() || dt.is_numeric() => cast(&arr, &DataType::Float64)?,
        dt => return exec_err!("{fname}: argument `{name}` must be numeric, got {dt}"),
    };
    match arr.as_primitive_opt::<arrow::datatypes::Float64Type>() {
        Some(a) => Ok(a.clone()),
        None => exec_err!("{fname}: argument `{name}` could not be read as Float64"),
    }
}

/// A per-row integer argument as Int64 (casting if the planner did not).
pub(crate) fn i64_arg(fname: &str, name: &str, cv: &ColumnarValue, n: usize) -> Result<Int64Array> {
    let arr = to_array_checked(fname, name, cv, n)?;
    let dt = arr.data_type().clone();
    let arr = match &dt {
        DataType::Int64 => arr,
        dt if dt.is_null() || dt.is_integer() => cast(&arr, &DataType::Int64)?,
        dt => return exec_err!("{fname}: argument `{name}` must be an integer, got {dt}"),
    };
    match arr.as_primitive_opt::<Int64Type>() {
        Some(a) => Ok(a.clone()),
        None => exec_err!("{fname}: argument `{name}` could not be read as Int64"),
    }
}

/// A per-row bit-field argument as the raw bit pattern of its own width,
/// zero-extended to 64 bits (Int16 `-32768` is bit 15 only).
pub(crate) fn bits_arg(
    fname: &str,
    name: &str,
    cv: &ColumnarValue,
    n: usize,
) -> Result<UInt64Array> {
    let arr = to_array_checked(fname, name, cv, n)?;
    let out: UInt64Array = match arr.data_type() {
        DataType::Int8 => arr.as_primitive::<Int8Type>().unary(|v| v as u8 as u64),
        DataType::Int16 => arr.as_primitive::<Int16Type>().unary(|v| v as u16 as u64),
        DataType::Int32 => arr.as_primitive::<Int32Type>().unary(|v| v as u32 as u64),
        DataType::Int64 => arr.as_primitive::<Int64Type>().unary(|v| v as u64),
        DataType::UInt8 => arr.as_primitive::<UInt8Type>().unary(|v| v as u64),
        DataType::UInt16 => arr.as_primitive::<UInt16Type>().unary(|v| v as u64),
        DataType::UInt32 => arr.as_primitive::<UInt32Type>().unary(|v| v as u64),
        DataType::UInt64 => arr.as_primitive::<UInt64Type>().clone(),
        DataType::Null => UInt64Array::new_null(n),
        dt => {
            return exec_err!("{fname}: argument `{name}` must be an integer bit field, got {dt}")
        }
    };
    Ok(out)
}

/// A per-row string column of any Arrow string flavour.
#[derive(Debug, Clone)]
pub(crate) enum StrCol {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
}

impl StrCol {
    /// The value at row `i`, `None` when NULL or out of range.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            StrCol::Utf8(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
            StrCol::Large(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
            StrCol::View(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
        }
    }
}

/// A per-row string argument.
pub(crate) fn str_arg(fname: &str, name: &str, cv: &ColumnarValue, n: usize) -> Result<StrCol> {
    let arr = to_array_checked(fname, name, cv, n)?;
    str_col(fname, name, arr)
}

pub(crate) fn str_col(fname: &str, name: &str, arr: ArrayRef) -> Result<StrCol> {
    match arr.data_type() {
        DataType::Utf8 => Ok(StrCol::Utf8(arr.as_string::<i32>().clone())),
        DataType::LargeUtf8 => Ok(StrCol::Large(arr.as_string::<i64>().clone())),
        DataType::Utf8View => Ok(StrCol::View(arr.as_string_view().clone())),
        DataType::Null => Ok(StrCol::Utf8(StringArray::new_null(arr.len()))),
        DataType::Dictionary(_, v) if is_string(v) => {
            let arr = cast(&arr, &DataType::Utf8)?;
            Ok(StrCol::Utf8(arr.as_string::<i32>().clone()))
        }
        dt => exec_err!("{fname}: argument `{name}` must be a string, got {dt}"),
    }
}

/// `Some(value)` unless NULL.
#[inline]
pub(crate) fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    a.is_valid(i).then(|| a.value(i))
}

/// `Some(value)` unless NULL.
#[inline]
pub(crate) fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

/// `Some(value)` unless NULL.
#[inline]
pub(crate) fn opt_u64(a: &UInt64Array, i: usize) -> Option<u64> {
    a.is_valid(i).then(|| a.value(i))
}

// ---------------------------------------------------------------------------
// Constant (threshold) arguments
// ---------------------------------------------------------------------------

/// The scalar value of a threshold argument at execution time; an error if
/// the argument is per-row (array-valued).
pub(crate) fn exec_scalar<'a>(
    fname: &str,
    name: &str,
    cv: &'a ColumnarValue,
) -> Result<&'a ScalarValue> {
    match cv {
        ColumnarValue::Scalar(s) => Ok(s),
        ColumnarValue::Array(_) => exec_err!(
            "{fname}: argument `{name}` must be a constant (a literal in the query, so that the \
             threshold travels inside the plan), but got a per-row value (a column or a \
             non-constant expression)"
        ),
    }
}

fn null_err(fname: &str, name: &str, phase: Phase) -> DataFusionError {
    phase_err(
        phase,
        format!("{fname}: argument `{name}` must be a non-NULL constant, got NULL"),
    )
}

/// A non-NULL, non-NaN numeric constant (infinities are allowed).
pub(crate) fn const_f64(fname: &str, name: &str, sv: &ScalarValue, phase: Phase) -> Result<f64> {
    if sv.is_null() {
        return Err(null_err(fname, name, phase));
    }
    let dt = sv.data_type();
    if !dt.is_numeric() {
        return Err(phase_err(
            phase,
            format!("{fname}: argument `{name}` must be a numeric constant, got {dt}"),
        ));
    }
    match sv.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(v))) if !v.is_nan() => Ok(v),
        Ok(ScalarValue::Float64(Some(_))) => Err(phase_err(
            phase,
            format!("{fname}: argument `{name}` must not be NaN"),
        )),
        _ => Err(phase_err(
            phase,
            format!("{fname}: argument `{name}` could not be read as a number: {sv}"),
        )),
    }
}

/// A non-NULL integer constant.
pub(crate) fn const_i64(fname: &str, name: &str, sv: &ScalarValue, phase: Phase) -> Result<i64> {
    if sv.is_null() {
        return Err(null_err(fname, name, phase));
    }
    let dt = sv.data_type();
    if !dt.is_integer() {
        return Err(phase_err(
            phase,
            format!("{fname}: argument `{name}` must be an integer constant, got {dt}"),
        ));
    }
    match sv.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(v))) => Ok(v),
        _ => Err(phase_err(
            phase,
            format!("{fname}: argument `{name}` does not fit in Int64: {sv}"),
        )),
    }
}

/// A non-NULL string constant.
pub(crate) fn const_str(fname: &str, name: &str, sv: &ScalarValue, phase: Phase) -> Result<String> {
    match sv {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Ok(s.clone()),
        ScalarValue::Dictionary(_, inner) => const_str(fname, name, inner, phase),
        s if s.is_null() => Err(null_err(fname, name, phase)),
        s => Err(phase_err(
            phase,
            format!(
                "{fname}: argument `{name}` must be a string constant, got {}",
                s.data_type()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------
// Domain helpers
// ---------------------------------------------------------------------------

/// Trims the trailing blanks and NULs of a fixed-width FITS string
/// (`'REX '` in DR8/DR9 4A columns, `'REX'` in DR10 3A columns, or a
/// NUL-padded value). The comparison stays case-sensitive.
#[inline]
pub fn trim_type(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

/// Parses a comma separated list of morphological types such as
/// `'SER,DEV,REX,EXP'`; whitespace around items is ignored.
///
/// An empty list is accepted only when `allow_empty`; an empty item
/// (`'SER,,DEV'`) is always an error.
pub(crate) fn parse_type_list(
    fname: &str,
    name: &str,
    text: &str,
    allow_empty: bool,
    phase: Phase,
) -> Result<Vec<String>> {
    if text.trim().is_empty() {
        if allow_empty {
            return Ok(Vec::new());
        }
        return Err(phase_err(
            phase,
            format!(
                "{fname}: argument `{name}` must list at least one type, e.g. 'SER,DEV,REX,EXP', got '{text}'"
            ),
        ));
    }
    let mut out = Vec::new();
    for item in text.split(',') {
        let t = trim_type(item.trim());
        if t.is_empty() {
            return Err(phase_err(
                phase,
                format!(
                    "{fname}: argument `{name}` has an empty item in '{text}' (expected a comma separated list such as 'SER,DEV,REX,EXP')"
                ),
            ));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// `true` when the trimmed `t` is one of `list`.
#[inline]
pub(crate) fn type_in(list: &[String], t: &str) -> bool {
    list.iter().any(|x| x == t)
}

/// Shorthand for building an `ArrayRef` result.
pub(crate) fn array_result<A: Array + 'static>(a: A) -> Result<ColumnarValue> {
    Ok(ColumnarValue::Array(Arc::new(a)))
}

// ---------------------------------------------------------------------------
// Test helper: invoke a UDF the way the planner would (coercion + casts).
// ---------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::Arc;

    use arrow::array::ArrayRef;
    use arrow::datatypes::{DataType, Field};
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::{Result, ScalarValue};
    use datafusion::logical_expr::{
        ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    };

    /// Coerces and casts `args` with the UDF's own `coerce_types`, computes the
    /// return field (validating literal thresholds as the planner does), invokes
    /// the function and checks that the output type is the promised one.
    pub(crate) fn invoke(
        udf: &dyn ScalarUDFImpl,
        args: Vec<ColumnarValue>,
        number_rows: usize,
    ) -> Result<ArrayRef> {
        let types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
        let coerced = udf.coerce_types(&types)?;
        let args = args
            .into_iter()
            .zip(coerced.iter())
            .map(|(a, t)| a.cast_to(t, None))
            .collect::<Result<Vec<_>>>()?;
        let arg_fields: Vec<_> = coerced
            .iter()
            .enumerate()
            .map(|(i, t)| Arc::new(Field::new(format!("arg{i}"), t.clone(), true)))
            .collect();
        let scalars: Vec<Option<&ScalarValue>> = args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let return_field = udf.return_field_from_args(ReturnFieldArgs {
            arg_fields: &arg_fields,
            scalar_arguments: &scalars,
        })?;
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows,
            return_field: Arc::clone(&return_field),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        let out = out.into_array(number_rows)?;
        assert_eq!(out.len(), number_rows, "output length");
        assert_eq!(
            out.data_type(),
            return_field.data_type(),
            "output type differs from the promised return type"
        );
        Ok(out)
    }

    /// A Float64 scalar argument.
    pub(crate) fn f(v: f64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Float64(Some(v)))
    }

    /// An Int64 scalar argument.
    pub(crate) fn i(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    /// A Utf8 scalar argument.
    pub(crate) fn s(v: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.to_string())))
    }

    /// An array argument.
    pub(crate) fn a(arr: ArrayRef) -> ColumnarValue {
        ColumnarValue::Array(arr)
    }

    /// The strings of a Utf8 result.
    pub(crate) fn strings(arr: &ArrayRef) -> Vec<Option<String>> {
        use arrow::array::AsArray;
        arr.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    /// The values of a Float64 result.
    pub(crate) fn floats(arr: &ArrayRef) -> Vec<Option<f64>> {
        use arrow::array::AsArray;
        arr.as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_type_strips_blanks_and_nuls_only_at_the_end() {
        assert_eq!(trim_type("PSF "), "PSF");
        assert_eq!(trim_type("REX"), "REX");
        assert_eq!(trim_type("REX\0"), "REX");
        assert_eq!(trim_type("DEV \0 "), "DEV");
        assert_eq!(trim_type(" SER"), " SER");
        assert_eq!(trim_type(""), "");
    }

    #[test]
    fn type_lists() {
        let l = parse_type_list("f", "a", " SER, DEV ,REX,EXP ", false, Phase::Exec).unwrap();
        assert_eq!(l, vec!["SER", "DEV", "REX", "EXP"]);
        assert!(parse_type_list("f", "a", "", false, Phase::Exec).is_err());
        assert!(parse_type_list("f", "a", "", true, Phase::Exec)
            .unwrap()
            .is_empty());
        let e = parse_type_list("f", "a", "SER,,DEV", true, Phase::Plan).unwrap_err();
        assert!(e.to_string().contains("SER,,DEV"), "{e}");
        assert!(matches!(e, DataFusionError::Plan(_)));
    }

    #[test]
    fn coercion_table() {
        let spec = [
            ("x", ArgKind::Float),
            ("n", ArgKind::Int),
            ("m", ArgKind::Bits),
            ("s", ArgKind::Str),
            ("k", ArgKind::Key),
        ];
        let got = coerce_args(
            "f",
            &spec,
            &[
                DataType::Float32,
                DataType::UInt8,
                DataType::Int16,
                DataType::Utf8View,
                DataType::UInt16,
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                DataType::Float64,
                DataType::Int64,
                DataType::Int16,
                DataType::Utf8View,
                DataType::Int64
            ]
        );
        let got = coerce_args(
            "f",
            &spec,
            &[
                DataType::Null,
                DataType::Null,
                DataType::Null,
                DataType::Null,
                DataType::Null,
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                DataType::Float64,
                DataType::Int64,
                DataType::Int64,
                DataType::Utf8,
                DataType::Int64
            ]
        );
        let e = coerce_args(
            "f",
            &spec,
            &[
                DataType::Utf8,
                DataType::Int64,
                DataType::Int64,
                DataType::Utf8,
                DataType::Utf8,
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("argument `x`"), "{e}");
        let e = coerce_args("f", &spec, &[DataType::Float64]).unwrap_err();
        assert!(e.to_string().contains("expects 5 arguments"), "{e}");
        // floats are not silently accepted for integer arguments
        assert!(coerce_args(
            "f",
            &spec,
            &[
                DataType::Float64,
                DataType::Float64,
                DataType::Int64,
                DataType::Utf8,
                DataType::Utf8
            ],
        )
        .is_err());
    }

    #[test]
    fn bit_patterns_are_not_sign_extended() {
        let arr: ArrayRef = Arc::new(arrow::array::Int16Array::from(vec![
            Some(-32768),
            Some(-1),
            None,
        ]));
        let b = bits_arg("f", "m", &ColumnarValue::Array(arr), 3).unwrap();
        assert_eq!(b.value(0), 0x8000);
        assert_eq!(b.value(1), 0xFFFF);
        assert!(b.is_null(2));
    }

    #[test]
    fn constants() {
        let sv = ScalarValue::Int64(Some(20));
        assert_eq!(const_f64("f", "a", &sv, Phase::Exec).unwrap(), 20.0);
        assert!(const_f64("f", "a", &ScalarValue::Float64(None), Phase::Exec).is_err());
        assert!(const_f64("f", "a", &ScalarValue::Float64(Some(f64::NAN)), Phase::Exec).is_err());
        assert_eq!(
            const_f64(
                "f",
                "a",
                &ScalarValue::Float64(Some(f64::INFINITY)),
                Phase::Exec
            )
            .unwrap(),
            f64::INFINITY
        );
        assert!(const_i64("f", "a", &ScalarValue::Float64(Some(3.0)), Phase::Exec).is_err());
        assert_eq!(
            const_i64("f", "a", &ScalarValue::Int16(Some(3)), Phase::Exec).unwrap(),
            3
        );
        assert!(const_str("f", "a", &ScalarValue::Utf8(None), Phase::Exec).is_err());
        assert!(const_str("f", "a", &ScalarValue::Null, Phase::Exec).is_err());
        let arr = ColumnarValue::Array(Arc::new(Float64Array::from(vec![1.0])));
        let e = exec_scalar("myfunc", "thr", &arr).unwrap_err();
        assert!(
            e.to_string()
                .contains("myfunc: argument `thr` must be a constant"),
            "{e}"
        );
    }
}
