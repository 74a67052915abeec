//! `type_bin(type)`: canonical Tractor morphological type or `'OTHER'`.

use std::sync::LazyLock;

use arrow::array::StringArray;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, str_arg, trim_type, ArgKind, DOC_SECTION_LENSPIPE,
};

/// The Tractor types kept as their own bin, in this order.
pub const KNOWN_TYPES: [&str; 6] = ["PSF", "REX", "EXP", "DEV", "SER", "DUP"];
/// The bin of every other (non-NULL) type.
pub const OTHER: &str = "OTHER";

const NAME: &str = "type_bin";
const ARGS: [(&str, ArgKind); 1] = [("type", ArgKind::Str)];

/// The bin of one type value: the trimmed type when known, else `"OTHER"`.
#[inline]
pub fn type_bin_value(t: &str) -> &'static str {
    let t = trim_type(t);
    KNOWN_TYPES
        .iter()
        .copied()
        .find(|k| *k == t)
        .unwrap_or(OTHER)
}

/// `type_bin(type) -> Utf8`: the type with trailing blanks/NULs trimmed when
/// it is one of `PSF`, `REX`, `EXP`, `DEV`, `SER`, `DUP` (case-sensitive);
/// `'OTHER'` for any other value (including `''`); NULL for NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TypeBin {
    signature: Signature,
}

impl Default for TypeBin {
    fn default() -> Self {
        Self::new()
    }
}

impl TypeBin {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "The trimmed Tractor TYPE if it is one of PSF, REX, EXP, DEV, SER, DUP; 'OTHER' \
         otherwise; NULL for NULL. Trailing blanks and NULs (4A DR8/DR9 padding) are ignored.",
        "type_bin(type)",
    )
    .with_sql_example(
        r#"```sql
> SELECT type_bin('REX ');
+------------------------+
| type_bin(Utf8("REX ")) |
+------------------------+
| REX                    |
+------------------------+
```"#,
    )
    .with_argument("type", "Tractor TYPE string (Utf8, LargeUtf8 or Utf8View).")
    .build()
});

impl ScalarUDFImpl for TypeBin {
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

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let n = args.number_rows;
        let t = str_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let out: StringArray = (0..n).map(|i| t.get(i).map(type_bin_value)).collect();
        array_result(out)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, LargeStringArray, StringViewArray};

    use super::*;
    use crate::common::test_util::{a, invoke, strings};

    #[test]
    fn bins() {
        let vals = vec![
            Some("PSF "),
            Some("REX"),
            Some("REX\0"),
            Some("EXP"),
            Some("DEV "),
            Some("SER"),
            Some("DUP"),
            Some("rex"),
            Some("COMP"),
            Some(""),
            None,
            Some(" PSF"),
        ];
        let want: Vec<Option<String>> = [
            Some("PSF"),
            Some("REX"),
            Some("REX"),
            Some("EXP"),
            Some("DEV"),
            Some("SER"),
            Some("DUP"),
            Some("OTHER"),
            Some("OTHER"),
            Some("OTHER"),
            None,
            Some("OTHER"),
        ]
        .iter()
        .map(|v| v.map(str::to_string))
        .collect();
        let n = vals.len();
        for arr in [
            Arc::new(arrow::array::StringArray::from(vals.clone())) as ArrayRef,
            Arc::new(LargeStringArray::from(vals.clone())) as ArrayRef,
            Arc::new(StringViewArray::from(vals.clone())) as ArrayRef,
        ] {
            let out = invoke(&TypeBin::new(), vec![a(arr)], n).unwrap();
            assert_eq!(strings(&out), want);
        }
    }

    #[test]
    fn dictionary_input() {
        use arrow::array::DictionaryArray;
        use arrow::datatypes::Int32Type;
        let dict: DictionaryArray<Int32Type> =
            vec![Some("EXP "), None, Some("XYZ")].into_iter().collect();
        let out = invoke(&TypeBin::new(), vec![a(Arc::new(dict))], 3).unwrap();
        assert_eq!(
            strings(&out),
            vec![Some("EXP".to_string()), None, Some("OTHER".to_string())]
        );
    }
}
