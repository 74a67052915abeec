//! `paper_iv_reject_reason(...)`: the first Paper IV selection filter a
//! sweep row fails, or NULL when it passes them all.

use std::sync::LazyLock;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::common::{
    array_result, bits_arg, check_arity, coerce_args, const_f64, const_i64, const_str, exec_scalar,
    f64_arg, i64_arg, opt_f64, opt_i64, opt_u64, parse_type_list, phase_err, str_arg, trim_type,
    type_in, ArgKind, Phase, DOC_SECTION_LENSPIPE,
};
use crate::nmgy_to_mag::flux_to_ab_mag;
use crate::reasons::RejectReason;

const NAME: &str = "paper_iv_reject_reason";

const RA: usize = 0;
const DEC: usize = 1;
const TYPE: usize = 2;
const MASKBITS: usize = 3;
const NOBS_G: usize = 4;
const FLUX_Z: usize = 7;
const DEC_MIN: usize = 8;
const DEC_MAX: usize = 9;
const VALID_TYPES: usize = 10;
const EXCLUDE_MASK: usize = 11;
const MIN_NOBS_G: usize = 12;
const Z_MAG_MAX: usize = 15;

const ARGS: [(&str, ArgKind); 16] = [
    ("ra", ArgKind::Float),
    ("dec", ArgKind::Float),
    ("type", ArgKind::Str),
    ("maskbits", ArgKind::Bits),
    ("nobs_g", ArgKind::Int),
    ("nobs_r", ArgKind::Int),
    ("nobs_z", ArgKind::Int),
    ("flux_z", ArgKind::Float),
    ("dec_min", ArgKind::Float),
    ("dec_max", ArgKind::Float),
    ("valid_types", ArgKind::Str),
    ("exclude_mask", ArgKind::Int),
    ("min_nobs_g", ArgKind::Int),
    ("min_nobs_r", ArgKind::Int),
    ("min_nobs_z", ArgKind::Int),
    ("z_mag_max", ArgKind::Float),
];

/// `paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z,
/// flux_z, dec_min, dec_max, valid_types, exclude_mask, min_nobs_g,
/// min_nobs_r, min_nobs_z, z_mag_max) -> Utf8`
///
/// Returns the name of the FIRST Paper IV filter the row fails, in this
/// order (see [`crate::reasons::RejectReason::PAPER_IV_CUTS`]), or NULL when the row passes
/// all of them:
///
/// 1. `invalid_coords`: `ra` or `dec` is NULL, NaN or infinite;
/// 2. `outside_decals`: `NOT (dec > dec_min AND dec < dec_max)`, strict on
///    both sides (dec exactly at a limit is rejected);
/// 3. `not_valid_type`: the `type` with trailing blanks/NULs trimmed
///    (`'REX '` of DR8/DR9 4A columns equals `'REX'` of DR10) is not in the
///    comma separated `valid_types` (case-sensitive); NULL type fails;
/// 4. `maskbit`: `(maskbits & exclude_mask) != 0`; NULL maskbits fails
///    (unknown quality). The bit pattern of the column's own width is used,
///    so Int16 (DR9) and Int32 (DR10) maskbits both work;
/// 5. `insufficient_exposures`: `nobs_g < min_nobs_g OR nobs_r < min_nobs_r
///    OR nobs_z < min_nobs_z`; a NULL nobs fails;
/// 6. `mag_z_faint`: `NOT (mag_z < z_mag_max)` with
///    `mag_z = nmgy_to_mag(flux_z)`.
///
/// Note on step 6: the original pipeline's numpy code (request_v1) computed the magnitude of
/// non-positive fluxes as NaN, and `NaN < z_mag_max` being false was written
/// as `mag_z > z_mag_max` rejection, so NaN magnitudes PASSED the cut. That is
/// a defect: here a NULL, NaN, infinite, zero or negative `flux_z` has no
/// magnitude and is rejected as `mag_z_faint`.
///
/// All thresholds (arguments 9 to 16) must be constants (literals in the
/// plan), so a serialized plan carries them to remote executors; a per-row
/// or NULL threshold is an error naming the argument.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PaperIvRejectReason {
    signature: Signature,
}

impl Default for PaperIvRejectReason {
    fn default() -> Self {
        Self::new()
    }
}

impl PaperIvRejectReason {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The parsed constant arguments. Fields are `None` when not known (only
/// possible while planning, for a non-literal expression).
#[derive(Debug, Default)]
struct Thresholds {
    dec_min: Option<f64>,
    dec_max: Option<f64>,
    valid_types: Option<Vec<String>>,
    exclude_mask: Option<u64>,
    min_nobs: [Option<i64>; 3],
    z_mag_max: Option<f64>,
}

fn parse_thresholds(scalars: &[Option<&ScalarValue>], phase: Phase) -> Result<Thresholds> {
    let arg = |i: usize| scalars.get(i).copied().flatten();
    let mut t = Thresholds::default();
    if let Some(sv) = arg(DEC_MIN) {
        t.dec_min = Some(const_f64(NAME, ARGS[DEC_MIN].0, sv, phase)?);
    }
    if let Some(sv) = arg(DEC_MAX) {
        t.dec_max = Some(const_f64(NAME, ARGS[DEC_MAX].0, sv, phase)?);
    }
    if let (Some(lo), Some(hi)) = (t.dec_min, t.dec_max) {
        if lo >= hi {
            return Err(phase_err(
                phase,
                format!("{NAME}: `dec_min` ({lo}) must be smaller than `dec_max` ({hi})"),
            ));
        }
    }
    if let Some(sv) = arg(VALID_TYPES) {
        let text = const_str(NAME, ARGS[VALID_TYPES].0, sv, phase)?;
        t.valid_types = Some(parse_type_list(
            NAME,
            ARGS[VALID_TYPES].0,
            &text,
            false,
            phase,
        )?);
    }
    if let Some(sv) = arg(EXCLUDE_MASK) {
        t.exclude_mask = Some(const_i64(NAME, ARGS[EXCLUDE_MASK].0, sv, phase)? as u64);
    }
    for b in 0..3 {
        if let Some(sv) = arg(MIN_NOBS_G + b) {
            t.min_nobs[b] = Some(const_i64(NAME, ARGS[MIN_NOBS_G + b].0, sv, phase)?);
        }
    }
    if let Some(sv) = arg(Z_MAG_MAX) {
        t.z_mag_max = Some(const_f64(NAME, ARGS[Z_MAG_MAX].0, sv, phase)?);
    }
    Ok(t)
}

/// The per-row decision; `None` when the row passes every filter.
#[allow(clippy::too_many_arguments)]
#[inline]
fn reject_reason(
    ra: Option<f64>,
    dec: Option<f64>,
    typ: Option<&str>,
    maskbits: Option<u64>,
    nobs: [Option<i64>; 3],
    flux_z: Option<f64>,
    dec_min: f64,
    dec_max: f64,
    valid_types: &[String],
    exclude_mask: u64,
    min_nobs: [i64; 3],
    z_mag_max: f64,
) -> Option<&'static str> {
    let dec = match (ra, dec) {
        (Some(ra), Some(dec)) if ra.is_finite() && dec.is_finite() => dec,
        _ => return Some(RejectReason::InvalidCoords.as_str()),
    };
    if !(dec > dec_min && dec < dec_max) {
        return Some(RejectReason::OutsideDecals.as_str());
    }
    match typ {
        Some(t) if type_in(valid_types, trim_type(t)) => {}
        _ => return Some(RejectReason::NotValidType.as_str()),
    }
    match maskbits {
        Some(m) if m & exclude_mask == 0 => {}
        _ => return Some(RejectReason::Maskbit.as_str()),
    }
    for b in 0..3 {
        match nobs[b] {
            Some(v) if v >= min_nobs[b] => {}
            _ => return Some(RejectReason::InsufficientExposures.as_str()),
        }
    }
    match flux_z.and_then(flux_to_ab_mag) {
        Some(mag) if mag < z_mag_max => None,
        _ => Some(RejectReason::MagZFaint.as_str()),
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Name of the first Paper IV selection filter the row fails, or NULL when it passes all: \
         'invalid_coords' (ra/dec NULL or non-finite), 'outside_decals' (NOT dec > dec_min AND \
         dec < dec_max), 'not_valid_type' (trimmed TYPE not in valid_types, NULL fails), \
         'maskbit' ((maskbits & exclude_mask) != 0, NULL fails), 'insufficient_exposures' (any \
         nobs_X < min_nobs_X, NULL fails), 'mag_z_faint' (NOT nmgy_to_mag(flux_z) < z_mag_max; \
         a NULL/NaN/non-positive flux_z has no magnitude and fails, unlike the original numpy \
         code where NaN magnitudes passed). Thresholds must be constants.",
        "paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, dec_min, dec_max, valid_types, exclude_mask, min_nobs_g, min_nobs_r, min_nobs_z, z_mag_max)",
    )
    .with_sql_example(
        r#"```sql
> SELECT paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z,
         -18.0, 32.0, 'SER,DEV,REX,EXP', 14562, 3, 3, 3, 20.0) AS reason, count(*)
  FROM sweeps GROUP BY 1;
```"#,
    )
    .with_argument("ra", "Right ascension in degrees (Float32/Float64).")
    .with_argument("dec", "Declination in degrees (Float32/Float64).")
    .with_argument("type", "Tractor morphological TYPE (Utf8/LargeUtf8/Utf8View); trailing blanks and NULs are ignored.")
    .with_argument("maskbits", "MASKBITS bit field (any integer type, e.g. Int16 in DR9, Int32 in DR10).")
    .with_argument("nobs_g", "Number of g-band exposures (any integer type).")
    .with_argument("nobs_r", "Number of r-band exposures (any integer type).")
    .with_argument("nobs_z", "Number of z-band exposures (any integer type).")
    .with_argument("flux_z", "z-band flux in nanomaggies (Float32/Float64).")
    .with_argument("dec_min", "Constant: exclusive lower declination limit in degrees, e.g. -18.")
    .with_argument("dec_max", "Constant: exclusive upper declination limit in degrees, e.g. 32.")
    .with_argument("valid_types", "Constant: comma separated valid types, e.g. 'SER,DEV,REX,EXP'.")
    .with_argument("exclude_mask", "Constant Int64: OR of (1 << bit) over the excluded MASKBITS bits.")
    .with_argument("min_nobs_g", "Constant: minimum nobs_g (inclusive).")
    .with_argument("min_nobs_r", "Constant: minimum nobs_r (inclusive).")
    .with_argument("min_nobs_z", "Constant: minimum nobs_z (inclusive).")
    .with_argument("z_mag_max", "Constant: exclusive faint limit on the z AB magnitude, e.g. 20.")
    .with_related_udf("nmgy_to_mag")
    .build()
});

impl ScalarUDFImpl for PaperIvRejectReason {
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
        // Validate literal thresholds while planning (non-literals are checked
        // at execution).
        parse_thresholds(args.scalar_arguments, Phase::Plan)?;
        Ok(std::sync::Arc::new(arrow::datatypes::Field::new(
            NAME,
            DataType::Utf8,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let a = &args.args;
        let n = args.number_rows;
        let scalars = (DEC_MIN..ARGS.len())
            .map(|i| exec_scalar(NAME, ARGS[i].0, &a[i]).map(Some))
            .collect::<Result<Vec<_>>>()?;
        let mut all: Vec<Option<&ScalarValue>> = vec![None; DEC_MIN];
        all.extend(scalars);
        let t = parse_thresholds(&all, Phase::Exec)?;
        let (
            Some(dec_min),
            Some(dec_max),
            Some(valid_types),
            Some(exclude_mask),
            [Some(mg), Some(mr), Some(mz)],
            Some(z_mag_max),
        ) = (
            t.dec_min,
            t.dec_max,
            t.valid_types,
            t.exclude_mask,
            t.min_nobs,
            t.z_mag_max,
        )
        else {
            return internal_err!("{NAME}: thresholds not parsed");
        };
        let min_nobs = [mg, mr, mz];

        let ra = f64_arg(NAME, ARGS[RA].0, &a[RA], n)?;
        let dec = f64_arg(NAME, ARGS[DEC].0, &a[DEC], n)?;
        let typ = str_arg(NAME, ARGS[TYPE].0, &a[TYPE], n)?;
        let mask = bits_arg(NAME, ARGS[MASKBITS].0, &a[MASKBITS], n)?;
        let nobs = [
            i64_arg(NAME, ARGS[NOBS_G].0, &a[NOBS_G], n)?,
            i64_arg(NAME, ARGS[NOBS_G + 1].0, &a[NOBS_G + 1], n)?,
            i64_arg(NAME, ARGS[NOBS_G + 2].0, &a[NOBS_G + 2], n)?,
        ];
        let flux_z = f64_arg(NAME, ARGS[FLUX_Z].0, &a[FLUX_Z], n)?;

        let out: StringArray = (0..n)
            .map(|i| {
                reject_reason(
                    opt_f64(&ra, i),
                    opt_f64(&dec, i),
                    typ.get(i),
                    opt_u64(&mask, i),
                    [
                        opt_i64(&nobs[0], i),
                        opt_i64(&nobs[1], i),
                        opt_i64(&nobs[2], i),
                    ],
                    opt_f64(&flux_z, i),
                    dec_min,
                    dec_max,
                    &valid_types,
                    exclude_mask,
                    min_nobs,
                    z_mag_max,
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

    use arrow::array::{ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, StringArray};
    use datafusion::error::DataFusionError;

    use super::*;
    use crate::common::test_util::{a, f, i, invoke, s, strings};
    use crate::reasons::*;

    /// Bits {1,5,6,7,11,12,13}.
    const EXCLUDE: i64 =
        (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 11) | (1 << 12) | (1 << 13);

    #[derive(Clone, Debug)]
    struct Row {
        ra: Option<f64>,
        dec: Option<f64>,
        typ: Option<&'static str>,
        mask: Option<i32>,
        nobs: [Option<i16>; 3],
        flux_z: Option<f32>,
    }

    fn good() -> Row {
        Row {
            ra: Some(150.0),
            dec: Some(0.0),
            typ: Some("SER"),
            mask: Some(0),
            nobs: [Some(4), Some(4), Some(4)],
            flux_z: Some(20.0),
        }
    }

    fn thresholds() -> Vec<ColumnarValue> {
        vec![
            f(-18.0),
            f(32.0),
            s("SER,DEV,REX,EXP"),
            i(EXCLUDE),
            i(3),
            i(3),
            i(3),
            f(20.0),
        ]
    }

    fn data(rows: &[Row], int16_mask: bool) -> Vec<ColumnarValue> {
        let ra: ArrayRef = Arc::new(Float64Array::from(
            rows.iter().map(|r| r.ra).collect::<Vec<_>>(),
        ));
        let dec: ArrayRef = Arc::new(Float64Array::from(
            rows.iter().map(|r| r.dec).collect::<Vec<_>>(),
        ));
        let typ: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.typ).collect::<Vec<_>>(),
        ));
        let mask: ArrayRef = if int16_mask {
            Arc::new(Int16Array::from(
                rows.iter()
                    .map(|r| r.mask.map(|m| m as u16 as i16))
                    .collect::<Vec<_>>(),
            ))
        } else {
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.mask).collect::<Vec<_>>(),
            ))
        };
        let nobs = |b: usize| -> ArrayRef {
            Arc::new(Int16Array::from(
                rows.iter().map(|r| r.nobs[b]).collect::<Vec<_>>(),
            ))
        };
        let flux: ArrayRef = Arc::new(Float32Array::from(
            rows.iter().map(|r| r.flux_z).collect::<Vec<_>>(),
        ));
        vec![
            a(ra),
            a(dec),
            a(typ),
            a(mask),
            a(nobs(0)),
            a(nobs(1)),
            a(nobs(2)),
            a(flux),
        ]
    }

    fn run_with(
        rows: &[Row],
        int16_mask: bool,
        thr: Vec<ColumnarValue>,
    ) -> Result<Vec<Option<String>>> {
        let mut args = data(rows, int16_mask);
        args.extend(thr);
        invoke(&PaperIvRejectReason::new(), args, rows.len()).map(|o| strings(&o))
    }

    fn run(rows: &[Row]) -> Vec<Option<String>> {
        run_with(rows, false, thresholds()).unwrap()
    }

    fn one(r: Row) -> Option<String> {
        run(&[r]).remove(0)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn good_row_passes() {
        assert_eq!(one(good()), None);
    }

    #[test]
    fn invalid_coords() {
        for (ra, dec) in [
            (None, Some(0.0)),
            (Some(1.0), None),
            (Some(f64::NAN), Some(0.0)),
            (Some(1.0), Some(f64::INFINITY)),
            (Some(f64::NEG_INFINITY), Some(0.0)),
        ] {
            let r = Row { ra, dec, ..good() };
            assert_eq!(one(r), some(INVALID_COORDS), "{ra:?} {dec:?}");
        }
    }

    #[test]
    fn dec_limits_are_strict() {
        let cases = [
            (-18.0, Some(OUTSIDE_DECALS)),
            (32.0, Some(OUTSIDE_DECALS)),
            (-17.999999, None),
            (31.999999, None),
            (-18.000001, Some(OUTSIDE_DECALS)),
            (32.000001, Some(OUTSIDE_DECALS)),
            (-90.0, Some(OUTSIDE_DECALS)),
            (90.0, Some(OUTSIDE_DECALS)),
        ];
        for (dec, want) in cases {
            let r = Row {
                dec: Some(dec),
                ..good()
            };
            assert_eq!(one(r), want.map(str::to_string), "dec {dec}");
        }
    }

    #[test]
    fn types_trimmed_case_sensitive_null_fails() {
        let cases = [
            ("PSF ", Some(NOT_VALID_TYPE)),
            ("PSF", Some(NOT_VALID_TYPE)),
            ("REX ", None),
            ("REX", None),
            ("REX\0", None),
            ("DEV\0\0", None),
            ("EXP", None),
            ("SER ", None),
            ("rex", Some(NOT_VALID_TYPE)),
            ("DUP", Some(NOT_VALID_TYPE)),
            ("", Some(NOT_VALID_TYPE)),
            (" REX", Some(NOT_VALID_TYPE)),
        ];
        for (t, want) in cases {
            let r = Row {
                typ: Some(t),
                ..good()
            };
            assert_eq!(one(r), want.map(str::to_string), "type {t:?}");
        }
        assert_eq!(
            one(Row {
                typ: None,
                ..good()
            }),
            some(NOT_VALID_TYPE)
        );
    }

    #[test]
    fn each_mask_bit_int16_and_int32() {
        let excluded = [1, 5, 6, 7, 11, 12, 13];
        for int16 in [false, true] {
            let rows: Vec<Row> = (0..16)
                .map(|bit| Row {
                    mask: Some(1 << bit),
                    ..good()
                })
                .collect();
            let got = run_with(&rows, int16, thresholds()).unwrap();
            for bit in 0..16 {
                let want = excluded.contains(&bit).then(|| MASKBIT.to_string());
                assert_eq!(got[bit as usize], want, "bit {bit} int16={int16}");
            }
        }
        // Bit 15 of an Int16 column (negative value) is not sign-extended into
        // bits 16..63: a mask on bit 16 does not reject it, a mask on bit 15 does.
        let r = vec![Row {
            mask: Some(1 << 15),
            ..good()
        }];
        let mut thr = thresholds();
        thr[3] = i(1 << 16);
        assert_eq!(run_with(&r, true, thr).unwrap(), vec![None]);
        let mut thr = thresholds();
        thr[3] = i(1 << 15);
        assert_eq!(run_with(&r, true, thr).unwrap(), vec![some(MASKBIT)]);
        // NULL maskbits fails.
        assert_eq!(
            one(Row {
                mask: None,
                ..good()
            }),
            some(MASKBIT)
        );
        // combination of allowed bits passes
        assert_eq!(
            one(Row {
                mask: Some(1 | 4 | 8 | 256 | 512 | 1024 | 16384 | 32768),
                ..good()
            }),
            None
        );
    }

    #[test]
    fn nobs_limits_each_band() {
        for b in 0..3 {
            let mut r = good();
            r.nobs[b] = Some(2);
            assert_eq!(one(r.clone()), some(INSUFFICIENT_EXPOSURES), "band {b} = 2");
            r.nobs[b] = Some(3);
            assert_eq!(one(r.clone()), None, "band {b} = 3");
            r.nobs[b] = None;
            assert_eq!(one(r), some(INSUFFICIENT_EXPOSURES), "band {b} NULL");
        }
    }

    #[test]
    fn z_magnitude_limit_and_bad_fluxes() {
        // flux 10 nmgy is mag 20.0 exactly: NOT (20 < 20) -> rejected.
        assert_eq!(
            one(Row {
                flux_z: Some(10.0),
                ..good()
            }),
            some(MAG_Z_FAINT)
        );
        assert_eq!(
            one(Row {
                flux_z: Some(10.001),
                ..good()
            }),
            None
        );
        assert_eq!(
            one(Row {
                flux_z: Some(9.999),
                ..good()
            }),
            some(MAG_Z_FAINT)
        );
        for fz in [
            Some(f32::NAN),
            Some(-1.0),
            Some(0.0),
            Some(-0.0),
            None,
            Some(f32::INFINITY),
        ] {
            assert_eq!(
                one(Row {
                    flux_z: fz,
                    ..good()
                }),
                some(MAG_Z_FAINT),
                "flux_z {fz:?}"
            );
        }
    }

    #[test]
    fn first_failing_filter_wins() {
        let all_bad = Row {
            ra: None,
            dec: Some(50.0),
            typ: Some("PSF"),
            mask: Some(2),
            nobs: [Some(0), Some(0), Some(0)],
            flux_z: Some(f32::NAN),
        };
        let mut r = all_bad.clone();
        let mut got = vec![one(r.clone())];
        r.ra = Some(10.0);
        got.push(one(r.clone()));
        r.dec = Some(10.0);
        got.push(one(r.clone()));
        r.typ = Some("DEV ");
        got.push(one(r.clone()));
        r.mask = Some(0);
        got.push(one(r.clone()));
        r.nobs = [Some(3); 3];
        got.push(one(r.clone()));
        r.flux_z = Some(100.0);
        got.push(one(r));
        let want: Vec<Option<String>> = FUNNEL_ORDER
            .iter()
            .map(|s| Some(s.to_string()))
            .chain([None])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn many_rows_in_one_batch_match_row_by_row() {
        let rows = vec![
            good(),
            Row {
                dec: Some(32.0),
                ..good()
            },
            Row {
                typ: Some("PSF "),
                ..good()
            },
            Row {
                mask: Some(1 << 12),
                ..good()
            },
            Row {
                flux_z: Some(1.0),
                ..good()
            },
            Row {
                ra: Some(f64::NAN),
                ..good()
            },
        ];
        let batch = run(&rows);
        let single: Vec<_> = rows.into_iter().map(one).collect();
        assert_eq!(batch, single);
    }

    #[test]
    fn integer_literal_thresholds_are_coerced() {
        let thr = vec![
            i(-18),
            i(32),
            s("SER, DEV, REX, EXP"),
            i(EXCLUDE),
            i(3),
            i(3),
            i(3),
            i(20),
        ];
        let got = run_with(
            &[
                good(),
                Row {
                    flux_z: Some(10.0),
                    ..good()
                },
            ],
            false,
            thr,
        )
        .unwrap();
        assert_eq!(got, vec![None, some(MAG_Z_FAINT)]);
    }

    #[test]
    fn array_threshold_is_a_clear_error() {
        let mut thr = thresholds();
        thr[7] = a(Arc::new(Float64Array::from(vec![20.0])));
        let e = run_with(&[good()], false, thr).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("paper_iv_reject_reason")
                && msg.contains("`z_mag_max`")
                && msg.contains("constant"),
            "{msg}"
        );
    }

    #[test]
    fn null_and_bad_thresholds_are_errors() {
        let udf = PaperIvRejectReason::new();
        // NULL literal threshold: a planning error from return_field_from_args.
        let mut thr = thresholds();
        thr[4] = ColumnarValue::Scalar(ScalarValue::Int64(None));
        let e = run_with(&[good()], false, thr).unwrap_err();
        assert!(matches!(e, DataFusionError::Plan(_)), "{e}");
        assert!(e.to_string().contains("`min_nobs_g`"), "{e}");
        // Empty / malformed type lists.
        for bad in ["", "SER,,DEV"] {
            let mut thr = thresholds();
            thr[2] = s(bad);
            let e = run_with(&[good()], false, thr).unwrap_err();
            assert!(e.to_string().contains("`valid_types`"), "{e}");
        }
        // dec_min >= dec_max
        let mut thr = thresholds();
        thr[0] = f(40.0);
        assert!(run_with(&[good()], false, thr).is_err());
        // NaN threshold
        let mut thr = thresholds();
        thr[7] = f(f64::NAN);
        assert!(run_with(&[good()], false, thr).is_err());
        // Execution-time validation too (a plan built elsewhere).
        let mut args = data(&[good()], false);
        let mut thr = thresholds();
        thr[0] = ColumnarValue::Scalar(ScalarValue::Float64(None));
        args.extend(thr);
        let e = udf
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields: vec![],
                number_rows: 1,
                return_field: Arc::new(arrow::datatypes::Field::new("r", DataType::Utf8, true)),
                config_options: Arc::new(Default::default()),
            })
            .unwrap_err();
        assert!(matches!(e, DataFusionError::Execution(_)), "{e}");
        assert!(e.to_string().contains("`dec_min`"), "{e}");
        // Wrong arity.
        assert!(udf.coerce_types(&vec![DataType::Float64; 15]).is_err());
    }

    #[test]
    fn null_scalar_data_arguments() {
        // NULL literals in data positions follow the documented NULL rules.
        let mut args = vec![
            ColumnarValue::Scalar(ScalarValue::Null),
            f(0.0),
            s("SER"),
            i(0),
            i(5),
            i(5),
            i(5),
            f(100.0),
        ];
        args.extend(thresholds());
        let out = invoke(&PaperIvRejectReason::new(), args, 2).unwrap();
        assert_eq!(strings(&out), vec![some(INVALID_COORDS); 2]);
        let mut args = vec![
            f(1.0),
            f(0.0),
            s("SER"),
            ColumnarValue::Scalar(ScalarValue::Null),
            i(5),
            i(5),
            i(5),
            f(100.0),
        ];
        args.extend(thresholds());
        let out = invoke(&PaperIvRejectReason::new(), args, 1).unwrap();
        assert_eq!(strings(&out), vec![some(MASKBIT)]);
    }
}
