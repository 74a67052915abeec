//! `healpix_nested(ra_deg, dec_deg, nside)`: NESTED HEALPix pixel index.

use std::f64::consts::FRAC_PI_2;
use std::sync::{Arc, LazyLock};

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, const_i64, exec_scalar, f64_arg, opt_f64, phase_err,
    ArgKind, Phase, DOC_SECTION_LENSPIPE,
};

/// Largest supported `nside` (depth 29, the deepest cdshealpix layer).
pub const MAX_NSIDE: i64 = 1 << 29;

/// The HEALPix depth (`log2(nside)`) of a valid `nside` (a power of two in
/// `1..=2^29`), `None` otherwise.
pub fn depth_from_nside(nside: i64) -> Option<u8> {
    if (1..=MAX_NSIDE).contains(&nside) && (nside & (nside - 1)) == 0 {
        Some(nside.trailing_zeros() as u8)
    } else {
        None
    }
}

/// Validates a constant `nside` argument and returns the depth.
pub(crate) fn nside_depth(fname: &str, arg: &str, sv: &ScalarValue, phase: Phase) -> Result<u8> {
    let nside = const_i64(fname, arg, sv, phase)?;
    depth_from_nside(nside).ok_or_else(|| {
        phase_err(
            phase,
            format!(
                "{fname}: argument `{arg}` must be a power of two between 1 and 2^29 \
                 (536870912), got {nside}"
            ),
        )
    })
}

/// Longitude and latitude in radians for HEALPix: `ra` wrapped into
/// `[0, 360)`, `None` for non-finite values or `|dec| > 90`.
#[inline]
pub fn lonlat_rad(ra_deg: f64, dec_deg: f64) -> Option<(f64, f64)> {
    if !ra_deg.is_finite() || !dec_deg.is_finite() || dec_deg.abs() > 90.0 {
        return None;
    }
    let mut ra = ra_deg.rem_euclid(360.0);
    if !(0.0..360.0).contains(&ra) {
        // rem_euclid of a tiny negative value rounds up to 360.0
        ra = 0.0;
    }
    let lat = dec_deg.to_radians().clamp(-FRAC_PI_2, FRAC_PI_2);
    Some((ra.to_radians(), lat))
}

/// The NESTED pixel of `(ra_deg, dec_deg)` at `depth` (`nside = 2^depth`),
/// computed with `cdshealpix::nested::hash`; `None` for invalid coordinates
/// (see [`lonlat_rad`]) or `depth > 29`.
#[inline]
pub fn nested_pixel(depth: u8, ra_deg: f64, dec_deg: f64) -> Option<u64> {
    if depth > cdshealpix::DEPTH_MAX {
        return None;
    }
    let (lon, lat) = lonlat_rad(ra_deg, dec_deg)?;
    Some(cdshealpix::nested::hash(depth, lon, lat))
}

const NAME: &str = "healpix_nested";
const ARGS: [(&str, ArgKind); 3] = [
    ("ra_deg", ArgKind::Float),
    ("dec_deg", ArgKind::Float),
    ("nside", ArgKind::Int),
];

/// `healpix_nested(ra_deg, dec_deg, nside) -> Int64`: the NESTED HEALPix
/// pixel index of the position at `nside`.
///
/// `nside` must be a constant power of two in `1..=2^29` (depth
/// `log2(nside)`); `ra` is wrapped into `[0, 360)` (so 360 and 0 give the
/// same pixel). NULL when `ra` or `dec` is NULL or non-finite, or when
/// `|dec| > 90`. Uses `cdshealpix::nested::hash`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixNested {
    signature: Signature,
}

impl Default for HealpixNested {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixNested {
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
        "NESTED HEALPix pixel index of (ra, dec) at `nside` (constant power of two, 1 to 2^29). \
         RA is wrapped into [0, 360). NULL for NULL/non-finite coordinates or |dec| > 90.",
        "healpix_nested(ra_deg, dec_deg, nside)",
    )
    .with_sql_example(
        r#"```sql
> SELECT healpix_nested(0.0, 0.0, 1);
+--------------------------------------------------+
| healpix_nested(Float64(0),Float64(0),Int64(1))   |
+--------------------------------------------------+
| 4                                                |
+--------------------------------------------------+
```"#,
    )
    .with_argument("ra_deg", "Right ascension in degrees (Float32/Float64).")
    .with_argument("dec_deg", "Declination in degrees (Float32/Float64).")
    .with_argument("nside", "Constant HEALPix nside, a power of two between 1 and 2^29.")
    .with_related_udf("healpix_cone_cells")
    .build()
    });

impl ScalarUDFImpl for HealpixNested {
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
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(Some(sv)) = args.scalar_arguments.get(2) {
            nside_depth(NAME, ARGS[2].0, sv, Phase::Plan)?;
        }
        Ok(Arc::new(Field::new(NAME, DataType::Int64, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let n = args.number_rows;
        let depth = nside_depth(
            NAME,
            ARGS[2].0,
            exec_scalar(NAME, ARGS[2].0, &args.args[2])?,
            Phase::Exec,
        )?;
        let ra = f64_arg(NAME, ARGS[0].0, &args.args[0], n)?;
        let dec = f64_arg(NAME, ARGS[1].0, &args.args[1], n)?;
        let out: Int64Array = (0..n)
            .map(|i| {
                let (r, d) = (opt_f64(&ra, i)?, opt_f64(&dec, i)?);
                nested_pixel(depth, r, d).map(|h| h as i64)
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
    use arrow::array::{ArrayRef, AsArray, Float32Array, Float64Array};
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::common::test_util::{a, i, invoke};

    fn run(ra: Vec<Option<f64>>, dec: Vec<Option<f64>>, nside: i64) -> Result<Vec<Option<i64>>> {
        let n = ra.len();
        let ra: ArrayRef = Arc::new(Float64Array::from(ra));
        let dec: ArrayRef = Arc::new(Float64Array::from(dec));
        invoke(&HealpixNested::new(), vec![a(ra), a(dec), i(nside)], n)
            .map(|o| o.as_primitive::<Int64Type>().iter().collect())
    }

    #[test]
    fn nside_1_base_pixels() {
        // Centres of the 12 base pixels: north ring at lat asin(2/3) = 41.81 deg,
        // lon 45 + 90k; equator at lon 90k; south ring at lon 45 + 90k.
        let lat = (2.0f64 / 3.0).asin().to_degrees();
        let mut ra = vec![];
        let mut dec = vec![];
        for k in 0..4 {
            ra.push(Some(45.0 + 90.0 * k as f64));
            dec.push(Some(lat));
        }
        for k in 0..4 {
            ra.push(Some(90.0 * k as f64));
            dec.push(Some(0.0));
        }
        for k in 0..4 {
            ra.push(Some(45.0 + 90.0 * k as f64));
            dec.push(Some(-lat));
        }
        let got = run(ra, dec, 1).unwrap();
        assert_eq!(got, (0..12).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn matches_cdshealpix_and_known_values() {
        let pts = [
            (10.684, 41.269),
            (150.1, 2.2),
            (359.99, -17.9),
            (0.0, 31.99),
            (202.4842, 47.2306),
        ];
        for nside in [1i64, 2, 64, 1024, 4096, 1 << 29] {
            let depth = nside.trailing_zeros() as u8;
            let got = run(
                pts.iter().map(|p| Some(p.0)).collect(),
                pts.iter().map(|p| Some(p.1)).collect(),
                nside,
            )
            .unwrap();
            for (k, p) in pts.iter().enumerate() {
                let want = cdshealpix::nested::get(depth).hash(p.0.to_radians(), p.1.to_radians());
                assert_eq!(got[k], Some(want as i64), "nside {nside} point {p:?}");
                assert!((want as i64) < 12 * nside * nside);
            }
        }
        // Near the north pole (lon in the first quadrant) the pixel is the last
        // one of base cell 0 (cdshealpix documentation example).
        let nside = 4096i64;
        let got = run(vec![Some(12.5)], vec![Some(89.99999)], nside).unwrap();
        assert_eq!(got, vec![Some(nside * nside - 1)]);
        // The south pole is the south vertex of a southern base cell.
        let got = run(vec![Some(45.0)], vec![Some(-90.0)], nside).unwrap();
        assert_eq!(got, vec![Some(8 * nside * nside)]);
        let got = run(vec![Some(45.0)], vec![Some(90.0)], 1).unwrap();
        assert_eq!(got, vec![Some(0)]);
    }

    #[test]
    fn ra_wraps() {
        let got = run(
            vec![
                Some(0.0),
                Some(360.0),
                Some(-360.0),
                Some(720.0),
                Some(-10.0),
                Some(350.0),
                Some(365.0),
                Some(5.0),
                Some(-1e-20),
            ],
            vec![Some(12.3); 9],
            1024,
        )
        .unwrap();
        assert_eq!(got[0], got[1]);
        assert_eq!(got[0], got[2]);
        assert_eq!(got[0], got[3]);
        assert_eq!(got[4], got[5]);
        assert_eq!(got[6], got[7]);
        assert_eq!(got[0], got[8]);
    }

    #[test]
    fn invalid_positions_are_null() {
        let got = run(
            vec![
                None,
                Some(1.0),
                Some(f64::NAN),
                Some(1.0),
                Some(f64::INFINITY),
                Some(1.0),
                Some(1.0),
            ],
            vec![
                Some(1.0),
                None,
                Some(1.0),
                Some(90.0001),
                Some(1.0),
                Some(-91.0),
                Some(f64::NEG_INFINITY),
            ],
            256,
        )
        .unwrap();
        assert_eq!(got, vec![None; 7]);
    }

    #[test]
    fn float32_inputs() {
        let ra: ArrayRef = Arc::new(Float32Array::from(vec![150.1f32]));
        let dec: ArrayRef = Arc::new(Float32Array::from(vec![2.2f32]));
        let out = invoke(&HealpixNested::new(), vec![a(ra), a(dec), i(1024)], 1).unwrap();
        let want = nested_pixel(10, 150.1f32 as f64, 2.2f32 as f64).unwrap() as i64;
        assert_eq!(out.as_primitive::<Int64Type>().value(0), want);
    }

    #[test]
    fn bad_nside() {
        for nside in [0i64, -4, 3, 1000, 1 << 30, i64::MIN] {
            let e = run(vec![Some(1.0)], vec![Some(1.0)], nside)
                .unwrap_err()
                .to_string();
            assert!(e.contains("healpix_nested") && e.contains("`nside`"), "{e}");
        }
        let ra: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        let nside: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![64]));
        let e = invoke(
            &HealpixNested::new(),
            vec![a(ra.clone()), a(ra.clone()), a(nside)],
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`nside` must be a constant"), "{e}");
        let e = invoke(
            &HealpixNested::new(),
            vec![
                a(ra.clone()),
                a(ra),
                ColumnarValue::Scalar(ScalarValue::Int64(None)),
            ],
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("NULL"), "{e}");
        assert_eq!(depth_from_nside(1), Some(0));
        assert_eq!(depth_from_nside(MAX_NSIDE), Some(29));
    }
}
