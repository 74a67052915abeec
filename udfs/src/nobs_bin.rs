//! `nobs_bin(nobs, bins)`: label of the exposure-count bin containing `nobs`.

use std::sync::{Arc, LazyLock};

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, const_str, exec_scalar, i64_arg, opt_i64, phase_err,
    ArgKind, Phase, DOC_SECTION_LENSPIPE,
};

const NAME: &str = "nobs_bin";
const ARGS: [(&str, ArgKind); 2] = [("nobs", ArgKind::Int), ("bins", ArgKind::Str)];

/// One inclusive bin `lo..=hi` (`hi == None` for an open-ended `'N+'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NobsBinSpec {
    pub lo: i64,
    pub hi: Option<i64>,
    /// Canonical label: `"3-5"`, `"11+"` or `"7"`.
    pub label: String,
}

impl NobsBinSpec {
    #[inline]
    pub fn contains(&self, v: i64) -> bool {
        v >= self.lo && self.hi.is_none_or(|hi| v <= hi)
    }
}

fn parse_count(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a bins literal such as `'1-2,3-5,6-10,11+'`: comma separated items
/// `LO-HI` (inclusive, `LO <= HI`), `LO+` (open-ended) or `N` (the single
/// value N), with non-negative integers; whitespace around items and numbers
/// is ignored. Labels are canonical (`'3-5'`, `'11+'`, `'7'`). Bins are
/// tested in the order given (first match wins).
pub fn parse_nobs_bins(text: &str) -> std::result::Result<Vec<NobsBinSpec>, String> {
    let bad = |item: &str, why: &str| {
        format!(
            "malformed `bins` literal '{text}': item '{item}' {why} (expected comma separated \
             'LO-HI', 'LO+' or 'N' with non-negative integers, e.g. '1-2,3-5,6-10,11+')"
        )
    };
    if text.trim().is_empty() {
        return Err(bad("", "is empty"));
    }
    let mut out = Vec::new();
    for raw in text.split(',') {
        let item = raw.trim();
        let spec = if let Some(lo) = item.strip_suffix('+') {
            let lo = parse_count(lo.trim()).ok_or_else(|| bad(item, "has a bad lower bound"))?;
            NobsBinSpec {
                lo,
                hi: None,
                label: format!("{lo}+"),
            }
        } else if let Some((lo, hi)) = item.split_once('-') {
            let lo = parse_count(lo.trim()).ok_or_else(|| bad(item, "has a bad lower bound"))?;
            let hi = parse_count(hi.trim()).ok_or_else(|| bad(item, "has a bad upper bound"))?;
            if lo > hi {
                return Err(bad(item, "has LO > HI"));
            }
            NobsBinSpec {
                lo,
                hi: Some(hi),
                label: format!("{lo}-{hi}"),
            }
        } else {
            let v = parse_count(item).ok_or_else(|| bad(item, "is not a bin"))?;
            NobsBinSpec {
                lo: v,
                hi: Some(v),
                label: format!("{v}"),
            }
        };
        out.push(spec);
    }
    Ok(out)
}

fn bins_from(sv: &ScalarValue, phase: Phase) -> Result<Vec<NobsBinSpec>> {
    let text = const_str(NAME, ARGS[1].0, sv, phase)?;
    parse_nobs_bins(&text).map_err(|m| phase_err(phase, format!("{NAME}: {m}")))
}

/// `nobs_bin(nobs, bins) -> Utf8`: the label of the first bin of `bins`
/// containing `nobs`.
///
/// `bins` is a constant string like `'1-2,3-5,6-10,11+'` (inclusive ranges,
/// `'N+'` open-ended, see [`parse_nobs_bins`]). Returns NULL when `nobs` is
/// NULL or falls in no bin. A malformed `bins` literal is an error naming
/// the function and quoting the bad text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NobsBin {
    signature: Signature,
}

impl Default for NobsBin {
    fn default() -> Self {
        Self::new()
    }
}

impl NobsBin {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Label of the first bin containing nobs, NULL when nobs is NULL or in no bin. `bins` is a \
         constant like '1-2,3-5,6-10,11+' (inclusive LO-HI ranges, open-ended LO+, or a single N).",
        "nobs_bin(nobs, bins)",
    )
    .with_sql_example(
        r#"```sql
> SELECT nobs_bin(4, '1-2,3-5,6-10,11+');
+------------------------------------------------+
| nobs_bin(Int64(4),Utf8("1-2,3-5,6-10,11+"))    |
+------------------------------------------------+
| 3-5                                            |
+------------------------------------------------+
```"#,
    )
    .with_argument("nobs", "Number of exposures (any integer type).")
    .with_argument("bins", "Constant string of comma separated bins, e.g. '1-2,3-5,6-10,11+'.")
    .build()
    });

impl ScalarUDFImpl for NobsBin {
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
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(Some(sv)) = args.scalar_arguments.get(1) {
            bins_from(sv, Phase::Plan)?;
        }
        Ok(Arc::new(Field::new(NAME, DataType::Utf8, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let n = args.number_rows;
        let bins = bins_from(exec_scalar(NAME, ARGS[1].0, &args.args[1])?, Phase::Exec)?;
        let nobs = i64_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let out: StringArray = (0..n)
            .map(|i| {
                let v = opt_i64(&nobs, i)?;
                bins.iter()
                    .find(|b| b.contains(v))
                    .map(|b| b.label.as_str())
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
    use arrow::array::{ArrayRef, Int16Array, UInt8Array};
    use datafusion::error::DataFusionError;

    use super::*;
    use crate::common::test_util::{a, invoke, s, strings};

    const BINS: &str = "1-2,3-5,6-10,11+";

    fn run(vals: Vec<Option<i16>>, bins: &str) -> Result<Vec<Option<String>>> {
        let n = vals.len();
        let arr: ArrayRef = Arc::new(Int16Array::from(vals));
        invoke(&NobsBin::new(), vec![a(arr), s(bins)], n).map(|o| strings(&o))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn labels() {
        let got = run(
            vec![
                Some(0),
                Some(1),
                Some(2),
                Some(3),
                Some(5),
                Some(6),
                Some(10),
                Some(11),
                Some(16),
                Some(1000),
                None,
                Some(-1),
            ],
            BINS,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                None,
                some("1-2"),
                some("1-2"),
                some("3-5"),
                some("3-5"),
                some("6-10"),
                some("6-10"),
                some("11+"),
                some("11+"),
                some("11+"),
                None,
                None
            ]
        );
        // closed last bin: 16 is in no bin
        let got = run(vec![Some(16), Some(15), Some(0)], "0, 1-2 ,3-15").unwrap();
        assert_eq!(got, vec![None, some("3-15"), some("0")]);
    }

    #[test]
    fn unsigned_input_and_first_match() {
        let arr: ArrayRef = Arc::new(UInt8Array::from(vec![Some(4u8), Some(255)]));
        let out = invoke(&NobsBin::new(), vec![a(arr), s("1-5,4-8,9+")], 2).unwrap();
        assert_eq!(strings(&out), vec![some("1-5"), some("9+")]);
    }

    #[test]
    fn malformed_bins() {
        for bad in ["", "1-2,,3", "a-b", "5-3", "1-", "-1-2", "3++", "1..2", "x"] {
            let e = run(vec![Some(1)], bad).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, DataFusionError::Plan(_)), "{msg}");
            assert!(
                msg.contains("nobs_bin") && msg.contains(&format!("'{bad}'")),
                "{msg}"
            );
        }
        assert_eq!(parse_nobs_bins(" 1 - 2 , 3 + ").unwrap()[1].label, "3+");
    }

    #[test]
    fn non_constant_bins_is_error() {
        let vals: ArrayRef = Arc::new(Int16Array::from(vec![1]));
        let bins: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![BINS]));
        let e = invoke(&NobsBin::new(), vec![a(vals), a(bins)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nobs_bin: argument `bins` must be a constant"),
            "{e}"
        );
    }
}
