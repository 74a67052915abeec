//! Binary-table columns: `TFORMn` parsing and the FITS to Arrow type mapping.
//!
//! | TFORM | TSCAL/TZERO           | Arrow type                      |
//! |-------|-----------------------|---------------------------------|
//! | `L`   | ignored               | `Boolean` (`T`/`F`; any other byte, e.g. the FITS null 0x00, is null) |
//! | `X`   | ignored               | `Boolean`, one per bit (most significant bit first) |
//! | `B`   | none / `TZERO = -128` | `UInt8` / `Int8`                |
//! | `I`   | none / `TZERO = 32768`| `Int16` / `UInt16`              |
//! | `J`   | none / `TZERO = 2^31` | `Int32` / `UInt32`              |
//! | `K`   | none / `TZERO = 2^63` | `Int64` / `UInt64`              |
//! | `B I J K` | any other         | `Float64` = raw × TSCAL + TZERO |
//! | `E` / `D` | none / any        | `Float32` / `Float64`; scaled columns are `Float64` |
//! | `rA`  | ignored               | `Utf8`, trailing spaces and NULs trimmed |
//!
//! String columns can decode to `Utf8View` instead, with the same trimming
//! ([`RowDecoder::with_string_views`](crate::RowDecoder::with_string_views)).
//!
//! A repeat count `r > 1` of any type but `A` gives `FixedSizeList<T, r>`
//! (`TDIMn` is not applied: arrays stay flat). `TNULLn` applies to `B I J K`
//! columns and compares the raw stored value, before scaling. Floats keep NaN
//! as a value (not null). Variable-length arrays (`P`, `Q`) and complex
//! numbers (`C`, `M`) are rejected with [`ErrorKind::Unsupported`](crate::error::ErrorKind).

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};

use crate::error::{ErrorKind, FitsError, Result};

/// A parsed `TFORMn` value: repeat count and type code, e.g. `5E` or `8A`.
///
/// For `P`/`Q` (variable-length array descriptors) `code` is `P` or `Q`; the
/// element type in `rPt(max)` is not kept because such columns are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TForm {
    /// Repeat count (number of elements; for `X`, bits; for `A`, characters).
    pub repeat: usize,
    /// Type code: one of `L X B I J K A E D C M P Q`.
    pub code: char,
}

impl TForm {
    /// Parses a `TFORMn` value such as `"E"`, `"5E"`, `"8A"`, `"16A8"` or `"1PE(5)"`.
    ///
    /// Surrounding spaces are ignored. The error has no file location
    /// (empty source, HDU 0, byte 0); header parsing reports it with the
    /// card's location instead.
    pub fn parse(s: &str) -> Result<TForm> {
        Self::parse_str(s).map_err(|msg| FitsError::new(ErrorKind::Header, "", 0, 0, msg))
    }

    /// [`TForm::parse`] with a bare message as the error.
    pub(crate) fn parse_str(s: &str) -> std::result::Result<TForm, String> {
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let (count, rest) = t.split_at(digits);
        let repeat = if count.is_empty() {
            1
        } else {
            count
                .parse::<usize>()
                .map_err(|_| format!("TFORM '{t}' has an out-of-range repeat count"))?
        };
        let mut chars = rest.chars();
        let code = chars
            .next()
            .ok_or_else(|| format!("TFORM '{t}' has no type code"))?
            .to_ascii_uppercase();
        let tail = chars.as_str();
        let tail_ok = match code {
            'L' | 'X' | 'B' | 'I' | 'J' | 'K' | 'E' | 'D' | 'C' | 'M' => tail.is_empty(),
            // `rAw`: w (the width of substrings) does not change the layout.
            'A' => tail.bytes().all(|b| b.is_ascii_digit()),
            // `rPt(max)`: anything goes, the column is rejected later by name.
            'P' | 'Q' => true,
            _ => return Err(format!("TFORM '{t}' has unknown type code '{code}'")),
        };
        if !tail_ok {
            return Err(format!(
                "TFORM '{t}' has unexpected characters after the type code"
            ));
        }
        let tform = TForm { repeat, code };
        // Keep every later size computation (and Arrow's i32 list sizes) in range.
        if tform.checked_width().is_none() || i32::try_from(repeat).is_err() {
            return Err(format!("TFORM '{t}' has a repeat count that is too large"));
        }
        Ok(tform)
    }

    /// Bytes one value of this column occupies in a row (saturating at `usize::MAX`).
    pub fn width(&self) -> usize {
        self.checked_width().unwrap_or(usize::MAX)
    }

    /// Bytes one value of this column occupies in a row, or `None` on overflow.
    pub fn checked_width(&self) -> Option<usize> {
        match self.code {
            'X' => Some(self.repeat.div_ceil(8)),
            code => self.repeat.checked_mul(element_size(code)),
        }
    }
}

impl fmt::Display for TForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.repeat, self.code)
    }
}

/// Bytes per element of a type code (per descriptor for `P`/`Q`; `X` is per bit).
fn element_size(code: char) -> usize {
    match code {
        'L' | 'B' | 'A' | 'X' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' | 'P' => 8,
        'M' | 'Q' => 16,
        _ => 0,
    }
}

/// One column of a binary table, with its Arrow type.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDesc {
    /// Name as in `TTYPEn`, trimmed (`COLn` when `TTYPEn` is absent or blank).
    pub name: String,
    /// Arrow field name: `name` lower-cased.
    pub arrow_name: String,
    /// Parsed `TFORMn`.
    pub tform: TForm,
    /// Byte offset of the field within a row.
    pub offset: usize,
    /// `TSCALn` (default 1).
    pub tscal: f64,
    /// `TZEROn` (default 0).
    pub tzero: f64,
    /// `TNULLn`: the raw stored value that means null (integer columns only).
    pub tnull: Option<i64>,
    /// `TUNITn`, if present and not blank.
    pub unit: Option<String>,
    /// The Arrow type this column decodes to (see the module docs).
    pub data_type: DataType,
}

impl ColumnDesc {
    /// How this column decodes, or why it cannot be read (a bare message).
    pub(crate) fn kind(&self) -> std::result::Result<ValueKind, String> {
        let text = self.tform.to_string();
        ValueKind::classify(&self.name, &text, self.tform, self.tscal, self.tzero)
    }
}

/// How the values of a column are stored and converted; one per decode loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Logical,
    Bits,
    UInt8,
    /// `B` with `TZERO = -128`.
    Int8,
    Int16,
    /// `I` with `TZERO = 32768`.
    UInt16,
    Int32,
    /// `J` with `TZERO = 2^31`.
    UInt32,
    Int64,
    /// `K` with `TZERO = 2^63`.
    UInt64,
    Float32,
    Float64,
    /// `B I J K` with any other scaling: raw × TSCAL + TZERO as `f64`.
    ScaledInt(IntCode),
    /// `E D` with scaling: raw × TSCAL + TZERO as `f64`.
    ScaledFloat(FloatCode),
    Utf8,
}

/// The stored integer type of a scaled column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntCode {
    B,
    I,
    J,
    K,
}

/// The stored float type of a scaled column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatCode {
    E,
    D,
}

impl ValueKind {
    /// Picks the decode for a column, or explains why it cannot be read
    /// (`tform_text` is the `TFORMn` value as written, for messages).
    pub(crate) fn classify(
        name: &str,
        tform_text: &str,
        tform: TForm,
        tscal: f64,
        tzero: f64,
    ) -> std::result::Result<ValueKind, String> {
        let unscaled = tscal == 1.0 && tzero == 0.0;
        // The "unsigned" (or signed-byte) conventions are exact offsets with TSCAL = 1.
        let offset_by = |z: f64| tscal == 1.0 && tzero == z;
        let kind = match tform.code {
            'L' => ValueKind::Logical,
            'X' => ValueKind::Bits,
            'A' => ValueKind::Utf8,
            'B' if unscaled => ValueKind::UInt8,
            'B' if offset_by(-128.0) => ValueKind::Int8,
            'B' => ValueKind::ScaledInt(IntCode::B),
            'I' if unscaled => ValueKind::Int16,
            'I' if offset_by(32768.0) => ValueKind::UInt16,
            'I' => ValueKind::ScaledInt(IntCode::I),
            'J' if unscaled => ValueKind::Int32,
            'J' if offset_by(2_147_483_648.0) => ValueKind::UInt32,
            'J' => ValueKind::ScaledInt(IntCode::J),
            'K' if unscaled => ValueKind::Int64,
            'K' if offset_by(9_223_372_036_854_775_808.0) => ValueKind::UInt64,
            'K' => ValueKind::ScaledInt(IntCode::K),
            'E' if unscaled => ValueKind::Float32,
            'E' => ValueKind::ScaledFloat(FloatCode::E),
            'D' if unscaled => ValueKind::Float64,
            'D' => ValueKind::ScaledFloat(FloatCode::D),
            'P' | 'Q' => {
                return Err(format!(
                    "column '{name}' has variable-length TFORM '{tform_text}': not supported"
                ))
            }
            'C' | 'M' => {
                return Err(format!(
                    "column '{name}' has complex TFORM '{tform_text}': not supported"
                ))
            }
            other => return Err(format!("column '{name}' has unknown TFORM code '{other}'")),
        };
        Ok(kind)
    }

    /// The Arrow type of one element.
    pub(crate) fn element_type(self) -> DataType {
        match self {
            ValueKind::Logical | ValueKind::Bits => DataType::Boolean,
            ValueKind::UInt8 => DataType::UInt8,
            ValueKind::Int8 => DataType::Int8,
            ValueKind::Int16 => DataType::Int16,
            ValueKind::UInt16 => DataType::UInt16,
            ValueKind::Int32 => DataType::Int32,
            ValueKind::UInt32 => DataType::UInt32,
            ValueKind::Int64 => DataType::Int64,
            ValueKind::UInt64 => DataType::UInt64,
            ValueKind::Float32 => DataType::Float32,
            ValueKind::Float64 | ValueKind::ScaledInt(_) | ValueKind::ScaledFloat(_) => {
                DataType::Float64
            }
            ValueKind::Utf8 => DataType::Utf8,
        }
    }

    /// The Arrow type of the column: a scalar, or a fixed-size list for repeat > 1.
    pub(crate) fn data_type(self, repeat: usize) -> DataType {
        let element = self.element_type();
        match (self, i32::try_from(repeat)) {
            (ValueKind::Utf8, _) | (_, Ok(1)) => element,
            (_, Ok(n)) => DataType::FixedSizeList(list_item(element), n),
            // TForm::parse keeps repeat within i32; a hand-made TForm is clamped.
            (_, Err(_)) => DataType::FixedSizeList(list_item(element), i32::MAX),
        }
    }
}

/// The child field of a fixed-size list column.
pub(crate) fn list_item(element: DataType) -> Arc<Field> {
    Arc::new(Field::new_list_field(element, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tf(s: &str) -> TForm {
        TForm::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_repeat_and_code() {
        assert_eq!(
            tf("E"),
            TForm {
                repeat: 1,
                code: 'E'
            }
        );
        assert_eq!(
            tf("5E      "),
            TForm {
                repeat: 5,
                code: 'E'
            }
        );
        assert_eq!(
            tf(" 8A"),
            TForm {
                repeat: 8,
                code: 'A'
            }
        );
        assert_eq!(
            tf("16A8"),
            TForm {
                repeat: 16,
                code: 'A'
            }
        );
        assert_eq!(
            tf("0J"),
            TForm {
                repeat: 0,
                code: 'J'
            }
        );
        assert_eq!(
            tf("1PE(5)"),
            TForm {
                repeat: 1,
                code: 'P'
            }
        );
        assert_eq!(tf("11X").width(), 2);
        assert_eq!(tf("3D").width(), 24);
        assert_eq!(tf("2Q").width(), 32);
        assert_eq!(tf("7A").to_string(), "7A");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "5",
            "5Z",
            "5E3",
            "99999999999999999999999E",
            "3000000000E",
            "2E x",
        ] {
            let e = TForm::parse(bad).expect_err(bad);
            assert_eq!(e.kind, ErrorKind::Header, "{bad}");
            assert!(e.message.contains("TFORM"), "{bad}: {e}");
        }
    }

    #[test]
    fn maps_types() {
        let dt = |t_text: &str, s: f64, z: f64| {
            let t = tf(t_text);
            ValueKind::classify("C", t_text, t, s, z).map(|k| k.data_type(t.repeat))
        };
        assert_eq!(dt("B", 1.0, -128.0), Ok(DataType::Int8));
        assert_eq!(dt("B", 1.0, 0.0), Ok(DataType::UInt8));
        assert_eq!(dt("I", 1.0, 32768.0), Ok(DataType::UInt16));
        assert_eq!(dt("J", 1.0, 2_147_483_648.0), Ok(DataType::UInt32));
        assert_eq!(
            dt("K", 1.0, 9_223_372_036_854_775_808.0),
            Ok(DataType::UInt64)
        );
        assert_eq!(dt("I", 2.0, 32768.0), Ok(DataType::Float64));
        assert_eq!(dt("J", 1.0, 5.0), Ok(DataType::Float64));
        assert_eq!(dt("E", 1.0, 0.0), Ok(DataType::Float32));
        assert_eq!(dt("E", 0.5, 0.0), Ok(DataType::Float64));
        assert_eq!(dt("8A", 1.0, 0.0), Ok(DataType::Utf8));
        assert_eq!(
            dt("5E", 1.0, 0.0),
            Ok(DataType::FixedSizeList(list_item(DataType::Float32), 5))
        );
        assert_eq!(
            dt("11X", 1.0, 0.0),
            Ok(DataType::FixedSizeList(list_item(DataType::Boolean), 11))
        );
        assert_eq!(dt("1X", 1.0, 0.0), Ok(DataType::Boolean));
        assert_eq!(
            dt("1PE(5)", 1.0, 0.0).unwrap_err(),
            "column 'C' has variable-length TFORM '1PE(5)': not supported"
        );
    }
}
