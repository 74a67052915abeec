//! `n2_category(...)`: the N2 confuser category of a pool object.

use std::sync::{Arc, LazyLock};

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, const_f64, const_str, exec_scalar, f64_arg, opt_f64,
    parse_type_list, str_arg, trim_type, type_in, ArgKind, Phase, DOC_SECTION_LENSPIPE,
};
use crate::nmgy_to_mag::flux_to_ab_mag;

/// Bright early-type object that can mimic an Einstein ring.
pub const RING_PROXY: &str = "ring_proxy";
/// Large disk that can mimic an arc when seen edge-on.
pub const EDGE_ON_PROXY: &str = "edge_on_proxy";
/// Blue, bright object that can mimic lensed star-forming arcs.
pub const BLUE_CLUMPY: &str = "blue_clumpy";
/// The categories in precedence order (first match wins).
pub const N2_ORDER: [&str; 3] = [RING_PROXY, EDGE_ON_PROXY, BLUE_CLUMPY];

const NAME: &str = "n2_category";

const TYPE: usize = 0;
const FLUX_G: usize = 1;
const FLUX_R: usize = 2;
const SHAPE_R: usize = 3;
const RING_TYPES: usize = 4;
const RING_FLUX_R_MIN: usize = 5;
const EDGE_TYPES: usize = 6;
const EDGE_SHAPE_R_MIN: usize = 7;
const BLUE_G_MINUS_R_MAX: usize = 8;
const BLUE_R_MAG_MAX: usize = 9;

const ARGS: [(&str, ArgKind); 10] = [
    ("type", ArgKind::Str),
    ("flux_g", ArgKind::Float),
    ("flux_r", ArgKind::Float),
    ("shape_r", ArgKind::Float),
    ("ring_types", ArgKind::Str),
    ("ring_flux_r_min", ArgKind::Float),
    ("edge_types", ArgKind::Str),
    ("edge_shape_r_min", ArgKind::Float),
    ("blue_g_minus_r_max", ArgKind::Float),
    ("blue_r_mag_max", ArgKind::Float),
];

/// `n2_category(type, flux_g, flux_r, shape_r, ring_types, ring_flux_r_min,
/// edge_types, edge_shape_r_min, blue_g_minus_r_max, blue_r_mag_max) -> Utf8`
///
/// The N2 confuser category, first match in this order (as the request_v1 profile's
/// `classify_pool_n2`):
///
/// 1. `'ring_proxy'`: trimmed `type` in `ring_types` (comma list, e.g.
///    `'DEV'`) AND `flux_r >= ring_flux_r_min` (nanomaggies);
/// 2. `'edge_on_proxy'`: trimmed `type` in `edge_types` (e.g. `'EXP'`) AND
///    `shape_r >= edge_shape_r_min` (arcsec);
/// 3. `'blue_clumpy'`: `g - r <= blue_g_minus_r_max` AND
///    `r <= blue_r_mag_max`, magnitudes from [`flux_to_ab_mag`] of `flux_g`
///    and `flux_r` (a NULL, NaN or non-positive flux has no magnitude, hence
///    no colour and no `blue_clumpy`);
/// 4. otherwise NULL.
///
/// NULL (or NaN) inputs never satisfy the criterion they enter. The type
/// lists may be empty (`''`) to disable a category. Arguments 5 to 10 must be
/// constants.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct N2Category {
    signature: Signature,
}

impl Default for N2Category {
    fn default() -> Self {
        Self::new()
    }
}

impl N2Category {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

#[derive(Debug, Default)]
struct Thresholds {
    ring_types: Option<Vec<String>>,
    ring_flux_r_min: Option<f64>,
    edge_types: Option<Vec<String>>,
    edge_shape_r_min: Option<f64>,
    blue_g_minus_r_max: Option<f64>,
    blue_r_mag_max: Option<f64>,
}

fn parse_thresholds(scalars: &[Option<&ScalarValue>], phase: Phase) -> Result<Thresholds> {
    let arg = |i: usize| scalars.get(i).copied().flatten();
    let list = |i: usize| -> Result<Option<Vec<String>>> {
        match arg(i) {
            Some(sv) => {
                let text = const_str(NAME, ARGS[i].0, sv, phase)?;
                Ok(Some(parse_type_list(NAME, ARGS[i].0, &text, true, phase)?))
            }
            None => Ok(None),
        }
    };
    let num = |i: usize| -> Result<Option<f64>> {
        arg(i)
            .map(|sv| const_f64(NAME, ARGS[i].0, sv, phase))
            .transpose()
    };
    Ok(Thresholds {
        ring_types: list(RING_TYPES)?,
        ring_flux_r_min: num(RING_FLUX_R_MIN)?,
        edge_types: list(EDGE_TYPES)?,
        edge_shape_r_min: num(EDGE_SHAPE_R_MIN)?,
        blue_g_minus_r_max: num(BLUE_G_MINUS_R_MAX)?,
        blue_r_mag_max: num(BLUE_R_MAG_MAX)?,
    })
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "N2 confuser category, first match: 'ring_proxy' (trimmed type in ring_types AND flux_r >= \
         ring_flux_r_min), 'edge_on_proxy' (type in edge_types AND shape_r >= edge_shape_r_min), \
         'blue_clumpy' (g-r <= blue_g_minus_r_max AND r <= blue_r_mag_max, AB magnitudes from \
         the nanomaggie fluxes; no magnitude for NULL/NaN/non-positive flux), else NULL. NULL \
         inputs never match. Thresholds must be constants.",
        "n2_category(type, flux_g, flux_r, shape_r, ring_types, ring_flux_r_min, edge_types, edge_shape_r_min, blue_g_minus_r_max, blue_r_mag_max)",
    )
    .with_sql_example(
        r#"```sql
> SELECT n2_category(type, flux_g, flux_r, shape_r, 'DEV', 10.0, 'EXP', 2.0, 0.4, 21.0) FROM pool;
```"#,
    )
    .with_argument("type", "Tractor TYPE (string; trailing blanks/NULs ignored).")
    .with_argument("flux_g", "g-band flux in nanomaggies.")
    .with_argument("flux_r", "r-band flux in nanomaggies.")
    .with_argument("shape_r", "Half-light radius in arcsec.")
    .with_argument("ring_types", "Constant: comma separated types for ring_proxy, e.g. 'DEV' ('' disables).")
    .with_argument("ring_flux_r_min", "Constant: minimum flux_r (inclusive, nanomaggies) for ring_proxy.")
    .with_argument("edge_types", "Constant: comma separated types for edge_on_proxy, e.g. 'EXP' ('' disables).")
    .with_argument("edge_shape_r_min", "Constant: minimum shape_r (inclusive, arcsec) for edge_on_proxy.")
    .with_argument("blue_g_minus_r_max", "Constant: maximum g-r colour (inclusive, mag) for blue_clumpy.")
    .with_argument("blue_r_mag_max", "Constant: maximum r magnitude (inclusive) for blue_clumpy.")
    .with_related_udf("nmgy_to_mag")
    .build()
});

impl ScalarUDFImpl for N2Category {
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
        parse_thresholds(args.scalar_arguments, Phase::Plan)?;
        Ok(Arc::new(Field::new(NAME, DataType::Utf8, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let a = &args.args;
        let n = args.number_rows;
        let mut scalars: Vec<Option<&ScalarValue>> = vec![None; RING_TYPES];
        for i in RING_TYPES..ARGS.len() {
            scalars.push(Some(exec_scalar(NAME, ARGS[i].0, &a[i])?));
        }
        let t = parse_thresholds(&scalars, Phase::Exec)?;
        let (
            Some(ring_types),
            Some(ring_flux_r_min),
            Some(edge_types),
            Some(edge_shape_r_min),
            Some(blue_gr_max),
            Some(blue_r_max),
        ) = (
            t.ring_types,
            t.ring_flux_r_min,
            t.edge_types,
            t.edge_shape_r_min,
            t.blue_g_minus_r_max,
            t.blue_r_mag_max,
        )
        else {
            return internal_err!("{NAME}: thresholds not parsed");
        };

        let typ = str_arg(NAME, ARGS[TYPE].0, &a[TYPE], n)?;
        let flux_g = f64_arg(NAME, ARGS[FLUX_G].0, &a[FLUX_G], n)?;
        let flux_r = f64_arg(NAME, ARGS[FLUX_R].0, &a[FLUX_R], n)?;
        let shape_r = f64_arg(NAME, ARGS[SHAPE_R].0, &a[SHAPE_R], n)?;

        let out: StringArray = (0..n)
            .map(|i| {
                let t = typ.get(i).map(trim_type);
                let fr = opt_f64(&flux_r, i);
                if t.is_some_and(|t| type_in(&ring_types, t))
                    && fr.is_some_and(|f| f >= ring_flux_r_min)
                {
                    return Some(RING_PROXY);
                }
                if t.is_some_and(|t| type_in(&edge_types, t))
                    && opt_f64(&shape_r, i).is_some_and(|s| s >= edge_shape_r_min)
                {
                    return Some(EDGE_ON_PROXY);
                }
                let mag_g = opt_f64(&flux_g, i).and_then(flux_to_ab_mag);
                let mag_r = fr.and_then(flux_to_ab_mag);
                match (mag_g, mag_r) {
                    (Some(g), Some(r)) if g - r <= blue_gr_max && r <= blue_r_max => {
                        Some(BLUE_CLUMPY)
                    }
                    _ => None,
                }
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
    use arrow::array::{ArrayRef, Float32Array, StringArray, StringViewArray};

    use super::*;
    use crate::common::test_util::{a, f, invoke, s, strings};

    /// (type, flux_g, flux_r, shape_r)
    type Row = (Option<&'static str>, Option<f32>, Option<f32>, Option<f32>);

    fn thresholds() -> Vec<ColumnarValue> {
        // ring: DEV with flux_r >= 10 nmgy; edge: EXP with shape_r >= 2";
        // blue: g-r <= 0.4 and r <= 21.
        vec![s("DEV"), f(10.0), s("EXP"), f(2.0), f(0.4), f(21.0)]
    }

    fn run_thr(rows: &[Row], view: bool, thr: Vec<ColumnarValue>) -> Result<Vec<Option<String>>> {
        let typ: ArrayRef = if view {
            Arc::new(StringViewArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ))
        } else {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ))
        };
        let col = |k: usize| -> ArrayRef {
            Arc::new(Float32Array::from(
                rows.iter()
                    .map(|r| match k {
                        1 => r.1,
                        2 => r.2,
                        _ => r.3,
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let mut args = vec![a(typ), a(col(1)), a(col(2)), a(col(3))];
        args.extend(thr);
        invoke(&N2Category::new(), args, rows.len()).map(|o| strings(&o))
    }

    fn run(rows: &[Row]) -> Vec<Option<String>> {
        run_thr(rows, false, thresholds()).unwrap()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    // flux for r = 20 mag is 10 nmgy; g-r = 0.25 when flux_g = 10 * 10^(-0.1) = 7.943
    const BLUE_G: f32 = 7.943_282;

    #[test]
    fn each_category() {
        let rows: Vec<Row> = vec![
            (Some("DEV"), Some(1.0), Some(10.0), Some(0.5)), // ring (flux_r exactly at min)
            (Some("DEV "), Some(1.0), Some(9.99), Some(0.5)), // not ring, red -> NULL
            (Some("EXP"), Some(1.0), Some(1.0), Some(2.0)),  // edge (shape exactly at min)
            (Some("EXP\0"), Some(1.0), Some(1.0), Some(1.99)), // not edge, red and faint -> NULL
            (Some("REX"), Some(BLUE_G), Some(10.0), Some(0.5)), // blue (g-r 0.25, r 20)
            (Some("PSF"), Some(1.0), Some(10.0), Some(0.5)), // red: g-r 2.5 -> NULL
            (Some("SER"), Some(0.1), Some(0.1), Some(0.5)),  // g-r 0 but r=25 > 21 -> NULL
        ];
        assert_eq!(
            run(&rows),
            vec![
                some(RING_PROXY),
                None,
                some(EDGE_ON_PROXY),
                None,
                some(BLUE_CLUMPY),
                None,
                None
            ]
        );
        // same with Utf8View type column
        assert_eq!(run_thr(&rows, true, thresholds()).unwrap(), run(&rows));
    }

    #[test]
    fn precedence() {
        // DEV bright and blue: ring wins over blue.
        let ring_and_blue = (Some("DEV"), Some(20.0), Some(20.0), Some(5.0));
        // EXP big and blue: edge wins over blue.
        let edge_and_blue = (Some("EXP"), Some(BLUE_G), Some(10.0), Some(5.0));
        // Type in both lists: ring checked first.
        let thr = vec![s("DEV,EXP"), f(10.0), s("EXP"), f(2.0), f(0.4), f(21.0)];
        let both = (Some("EXP"), Some(1.0), Some(10.0), Some(5.0));
        assert_eq!(
            run(&[ring_and_blue, edge_and_blue]),
            vec![some(RING_PROXY), some(EDGE_ON_PROXY)]
        );
        assert_eq!(
            run_thr(&[both], false, thr).unwrap(),
            vec![some(RING_PROXY)]
        );
        // A bright DEV that fails ring (flux_r below min) can still be blue.
        let thr = vec![s("DEV"), f(100.0), s("EXP"), f(2.0), f(0.4), f(21.0)];
        assert_eq!(
            run_thr(&[ring_and_blue], false, thr).unwrap(),
            vec![some(BLUE_CLUMPY)]
        );
    }

    #[test]
    fn blue_limits_inclusive() {
        // g-r exactly 0 <= 0.4 and r exactly 21.0 (flux_r = 10^(-0.4*(21-22.5)) ~ 3.98).
        let fr = 10f64.powf(0.6);
        let mag = flux_to_ab_mag(fr).unwrap();
        let thr = vec![s("DEV"), f(10.0), s("EXP"), f(2.0), f(0.0), f(mag)];
        let typ: ArrayRef = Arc::new(StringArray::from(vec!["SER"]));
        let flux: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![fr]));
        let mut args = vec![a(typ), a(flux.clone()), a(flux), f(0.1)];
        args.extend(thr);
        let out = invoke(&N2Category::new(), args, 1).unwrap();
        assert_eq!(strings(&out), vec![some(BLUE_CLUMPY)]);
    }

    #[test]
    fn nulls_and_nans_never_match() {
        let rows: Vec<Row> = vec![
            (None, Some(20.0), Some(20.0), Some(5.0)), // no type: not ring/edge, but blue
            (Some("DEV"), Some(1.0), None, Some(5.0)), // NULL flux_r: not ring, not blue
            (Some("EXP"), Some(1.0), Some(1.0), None), // NULL shape: not edge
            (Some("EXP"), Some(1.0), Some(1.0), Some(f32::NAN)), // NaN shape: not edge
            (Some("SER"), None, Some(10.0), Some(1.0)), // NULL flux_g: no colour
            (Some("SER"), Some(-1.0), Some(10.0), Some(1.0)), // negative flux_g: no colour
            (Some("SER"), Some(f32::NAN), Some(10.0), Some(1.0)),
            (Some("SER"), Some(10.0), Some(0.0), Some(1.0)), // zero flux_r
            (Some("DEV"), Some(1.0), Some(f32::NAN), Some(1.0)), // NaN flux_r: not ring
            (None, None, None, None),
        ];
        assert_eq!(
            run(&rows),
            vec![
                some(BLUE_CLUMPY),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn empty_lists_disable_categories_and_errors() {
        let thr = vec![s(""), f(10.0), s(""), f(2.0), f(0.4), f(21.0)];
        let rows: Vec<Row> = vec![(Some("DEV"), Some(1.0), Some(20.0), Some(5.0))];
        assert_eq!(run_thr(&rows, false, thr).unwrap(), vec![None]);
        let thr = vec![
            s("DEV"),
            f(10.0),
            s("EXP"),
            a(Arc::new(arrow::array::Float64Array::from(vec![2.0]))),
            f(0.4),
            f(21.0),
        ];
        let e = run_thr(&rows, false, thr).unwrap_err().to_string();
        assert!(
            e.contains("n2_category") && e.contains("`edge_shape_r_min`"),
            "{e}"
        );
        let thr = vec![
            s("DEV"),
            ColumnarValue::Scalar(ScalarValue::Float64(None)),
            s("EXP"),
            f(2.0),
            f(0.4),
            f(21.0),
        ];
        let e = run_thr(&rows, false, thr).unwrap_err().to_string();
        assert!(e.contains("`ring_flux_r_min`"), "{e}");
        let thr = vec![s("DEV,,EXP"), f(10.0), s("EXP"), f(2.0), f(0.4), f(21.0)];
        assert!(run_thr(&rows, false, thr).is_err());
    }
}
