//! `image_hash(image)`: a 64-bit hash of an image's pixel values, for
//! finding the same pixels under two targets.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::{DataType, Float32Type};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::common::{array_result, check_arity, DOC_SECTION_LENSPIPE};
use crate::stable_hash_unit::{fnv1a64_update, splitmix64_mix, FNV_OFFSET_BASIS, FNV_PRIME};

/// The hash of `values`: starting from FNV-1a 64 of the value count (8
/// little-endian bytes), each value's IEEE bits as one 32-bit word are
/// xored in and multiplied by the FNV prime (a word at a time, not a byte:
/// four times fewer steps over a 30,603-value image), then the SplitMix64
/// finalizer; as i64 so Parquet and SQL keep it signed.
pub fn image_hash_values(values: &[f32]) -> i64 {
    let mut h = fnv1a64_update(FNV_OFFSET_BASIS, &(values.len() as u64).to_le_bytes());
    for v in values {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(FNV_PRIME);
    }
    splitmix64_mix(h) as i64
}

const NAME: &str = "image_hash";

/// `image_hash(image) -> Int64`: hash of a list of Float32 pixel values
/// (`List`, `LargeList` or `FixedSizeList`); NULL for a NULL image. Equal
/// pixels give equal hashes whatever the list type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ImageHash {
    signature: Signature,
}

impl Default for ImageHash {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageHash {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "64-bit hash of an image's Float32 pixel values (value count, then each value's IEEE \
         bits as a 32-bit word, FNV-1a style, then SplitMix64), for finding duplicate images. \
         NULL for a NULL image.",
        "image_hash(image)",
    )
    .with_sql_example(
        r#"```sql
> SELECT image_hash(image) AS h, count(*) FROM cutouts GROUP BY h HAVING count(*) > 1;
```"#,
    )
    .with_argument(
        "image",
        "List, LargeList or FixedSizeList of Float32 pixel values.",
    )
    .build()
});

fn is_float_list(dt: &DataType) -> bool {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type() == &DataType::Float32
        }
        _ => dt.is_null(),
    }
}

impl ScalarUDFImpl for ImageHash {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.return_type(arg_types)?;
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [dt] if is_float_list(dt) => Ok(DataType::Int64),
            [dt] => plan_err!("{NAME}: argument `image` must be a list of Float32, got {dt}"),
            _ => plan_err!("{NAME} expects 1 argument (image), got {}", arg_types.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, 1)?;
        let n = args.number_rows;
        let images = args.args[0].to_array(n)?;
        let hash_row = |values: Arc<dyn Array>| -> Result<i64> {
            match values.as_primitive_opt::<Float32Type>() {
                Some(v) => Ok(image_hash_values(v.values())),
                None => exec_err!(
                    "{NAME}: image values are {}, not Float32",
                    values.data_type()
                ),
            }
        };
        let mut out = Vec::with_capacity(n);
        match images.data_type() {
            DataType::Null => return array_result(Int64Array::new_null(n)),
            DataType::List(_) => {
                let list = images.as_list::<i32>();
                for i in 0..n {
                    out.push(if list.is_valid(i) {
                        Some(hash_row(list.value(i))?)
                    } else {
                        None
                    });
                }
            }
            DataType::LargeList(_) => {
                let list = images.as_list::<i64>();
                for i in 0..n {
                    out.push(if list.is_valid(i) {
                        Some(hash_row(list.value(i))?)
                    } else {
                        None
                    });
                }
            }
            DataType::FixedSizeList(_, _) => {
                let list = images.as_fixed_size_list();
                for i in 0..n {
                    out.push(if list.is_valid(i) {
                        Some(hash_row(list.value(i))?)
                    } else {
                        None
                    });
                }
            }
            dt => return exec_err!("{NAME}: argument `image` must be a list of Float32, got {dt}"),
        }
        array_result(Int64Array::from(out))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{FixedSizeListArray, Float32Array, ListArray};
    use arrow::datatypes::Field;

    use super::*;
    use crate::common::test_util::{a, invoke};

    #[test]
    fn same_pixels_same_hash_whatever_the_list_type_and_offset() {
        let values = Float32Array::from(vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 4.0]);
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let fixed =
            FixedSizeListArray::try_new(Arc::clone(&item), 3, Arc::new(values.clone()), None)
                .unwrap();
        let out = invoke(&ImageHash::new(), vec![a(Arc::new(fixed.slice(1, 2)))], 2).unwrap();
        let out = out.as_primitive::<arrow::datatypes::Int64Type>();
        assert_ne!(out.value(0), out.value(1));
        assert_eq!(out.value(0), image_hash_values(&[1.0, 2.0, 3.0]));
        let offsets = arrow::buffer::OffsetBuffer::from_lengths([3, 3, 3]);
        let list = ListArray::try_new(item, offsets, Arc::new(values), None).unwrap();
        let out = invoke(&ImageHash::new(), vec![a(Arc::new(list))], 3).unwrap();
        let out = out.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(out.value(0), out.value(1));
        assert_eq!(out.value(2), image_hash_values(&[1.0, 2.0, 4.0]));
        // -0.0 and 0.0 are different pixels to a hash of bits
        assert_ne!(image_hash_values(&[0.0]), image_hash_values(&[-0.0]));
    }
}
