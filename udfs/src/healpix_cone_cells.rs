//! `healpix_cone_cells(ra_deg, dec_deg, nside, radius_arcsec)`: the NESTED
//! HEALPix cells overlapping a cone, for bucketed crossmatch joins.

use std::sync::{Arc, LazyLock};

use arrow::array::{Int64Builder, ListBuilder};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::common::{
    array_result, check_arity, coerce_args, const_f64, exec_scalar, f64_arg, opt_f64, phase_err,
    ArgKind, Phase, DOC_SECTION_LENSPIPE,
};
use crate::healpix_nested::{lonlat_rad, nside_depth};

/// Upper bound on the (estimated) number of cells of one cone; a larger
/// `radius_arcsec` for the given `nside` is rejected as a planning mistake.
pub const MAX_CONE_CELLS: f64 = (1u64 << 20) as f64;

/// Relative and absolute (radians) safety margins added to the radius so that
/// floating-point rounding can never drop a cell touched by the cone.
const RADIUS_REL_MARGIN: f64 = 1e-9;
const RADIUS_ABS_MARGIN_RAD: f64 = 1e-12;

/// The sorted NESTED cells at `depth` overlapping the cone of `radius_rad`
/// radians around `(ra_deg, dec_deg)`, always including the cell of the
/// centre. `None` for invalid coordinates (see [`lonlat_rad`]).
///
/// Uses `cdshealpix::nested::cone_coverage_approx` (which may add cells near
/// the cone but never misses an overlapped one) with a tiny radius margin.
pub fn cone_cells(depth: u8, ra_deg: f64, dec_deg: f64, radius_rad: f64) -> Option<Vec<u64>> {
    if depth > cdshealpix::DEPTH_MAX || !radius_rad.is_finite() || radius_rad < 0.0 {
        return None;
    }
    let (lon, lat) = lonlat_rad(ra_deg, dec_deg)?;
    let center = cdshealpix::nested::hash(depth, lon, lat);
    let r = radius_rad * (1.0 + RADIUS_REL_MARGIN) + RADIUS_ABS_MARGIN_RAD;
    let bmoc = cdshealpix::nested::cone_coverage_approx(depth, lon, lat, r);
    let mut cells: Vec<u64> = bmoc.flat_iter().collect();
    cells.push(center);
    cells.sort_unstable();
    cells.dedup();
    Some(cells)
}

/// Estimated number of cells of a cone (an upper bound, capped at the sky).
fn estimated_cells(depth: u8, radius_rad: f64) -> f64 {
    let nside = (1u64 << depth) as f64;
    let n_sky = 12.0 * nside * nside;
    let side = (std::f64::consts::PI / 3.0).sqrt() / nside;
    let r = radius_rad + 2.0 * side;
    (3.0 * nside * nside * r * r).min(n_sky)
}

fn radius_rad(sv: &ScalarValue, depth: Option<u8>, phase: Phase) -> Result<f64> {
    let r = const_f64(NAME, ARGS[3].0, sv, phase)?;
    if !r.is_finite() || r < 0.0 {
        return Err(phase_err(
            phase,
            format!("{NAME}: argument `radius_arcsec` must be finite and >= 0, got {r}"),
        ));
    }
    let rad = (r / 3600.0).to_radians();
    if let Some(depth) = depth {
        let est = estimated_cells(depth, rad);
        if est > MAX_CONE_CELLS {
            return Err(phase_err(
                phase,
                format!(
                    "{NAME}: a cone of {r} arcsec at nside {} covers ~{est:.0} cells per row \
                     (limit {MAX_CONE_CELLS}); use a smaller nside or radius",
                    1u64 << depth
                ),
            ));
        }
    }
    Ok(rad)
}

const NAME: &str = "healpix_cone_cells";
const ARGS: [(&str, ArgKind); 4] = [
    ("ra_deg", ArgKind::Float),
    ("dec_deg", ArgKind::Float),
    ("nside", ArgKind::Int),
    ("radius_arcsec", ArgKind::Float),
];

fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int64, false))
}

fn list_type() -> DataType {
    DataType::List(item_field())
}

/// `healpix_cone_cells(ra_deg, dec_deg, nside, radius_arcsec) -> List<Int64>`:
/// all NESTED pixels at `nside` overlapping the cone of `radius_arcsec`
/// around `(ra, dec)`, sorted ascending, always including the pixel of the
/// centre (as given by `healpix_nested`).
///
/// Built for a bucketed crossmatch: explode the cells of one side, join on
/// `healpix_nested(...)` of the other side, then filter on
/// `angular_sep_arcsec(...) < radius`. Completeness (every point closer than
/// the radius lands in one of the cells) is guaranteed by cdshealpix's
/// conservative `cone_coverage_approx` plus a 1e-9 relative radius margin,
/// and is tested on random pairs straddling cell edges, near the poles and
/// across RA = 0/360.
///
/// `nside` (power of two, 1..=2^29) and `radius_arcsec` (finite, >= 0) must
/// be constants; a cone estimated to exceed [`MAX_CONE_CELLS`] cells is an
/// error. Returns a NULL list for NULL/non-finite inputs or `|dec| > 90`;
/// items are never NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixConeCells {
    signature: Signature,
}

impl Default for HealpixConeCells {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixConeCells {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_LENSPIPE,
        "Sorted list of all NESTED HEALPix pixels at `nside` overlapping the cone of \
         `radius_arcsec` around (ra, dec), always including the pixel of the centre. Complete: \
         any point closer than the radius falls in one of the cells, so it can drive a bucketed \
         crossmatch join against healpix_nested(). NULL for NULL/non-finite coordinates.",
        "healpix_cone_cells(ra_deg, dec_deg, nside, radius_arcsec)",
    )
    .with_sql_example(
        r#"```sql
> SELECT a.id, b.id FROM
    (SELECT id, ra, dec, unnest(healpix_cone_cells(ra, dec, 4096, 1.5)) AS cell FROM lenses) a
    JOIN (SELECT id, ra, dec, healpix_nested(ra, dec, 4096) AS cell FROM sweeps) b
    ON a.cell = b.cell
  WHERE angular_sep_arcsec(a.ra, a.dec, b.ra, b.dec) < 1.5;
```"#,
    )
    .with_argument("ra_deg", "Right ascension of the cone centre in degrees.")
    .with_argument("dec_deg", "Declination of the cone centre in degrees.")
    .with_argument(
        "nside",
        "Constant HEALPix nside, a power of two between 1 and 2^29.",
    )
    .with_argument(
        "radius_arcsec",
        "Constant cone radius in arcseconds (finite, >= 0).",
    )
    .with_related_udf("healpix_nested")
    .with_related_udf("angular_sep_arcsec")
    .build()
});

impl ScalarUDFImpl for HealpixConeCells {
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
        Ok(list_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let sv = |i: usize| args.scalar_arguments.get(i).copied().flatten();
        let depth = sv(2)
            .map(|s| nside_depth(NAME, ARGS[2].0, s, Phase::Plan))
            .transpose()?;
        if let Some(s) = sv(3) {
            radius_rad(s, depth, Phase::Plan)?;
        }
        Ok(Arc::new(Field::new(NAME, list_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check_arity(NAME, &args.args, ARGS.len())?;
        let n = args.number_rows;
        let a = &args.args;
        let depth = nside_depth(
            NAME,
            ARGS[2].0,
            exec_scalar(NAME, ARGS[2].0, &a[2])?,
            Phase::Exec,
        )?;
        let radius = radius_rad(
            exec_scalar(NAME, ARGS[3].0, &a[3])?,
            Some(depth),
            Phase::Exec,
        )?;
        let ra = f64_arg(NAME, ARGS[0].0, &a[0], n)?;
        let dec = f64_arg(NAME, ARGS[1].0, &a[1], n)?;

        let mut builder = ListBuilder::with_capacity(Int64Builder::with_capacity(4 * n), n)
            .with_field(item_field());
        for i in 0..n {
            let cells = match (opt_f64(&ra, i), opt_f64(&dec, i)) {
                (Some(r), Some(d)) => cone_cells(depth, r, d, radius),
                _ => None,
            };
            match cells {
                Some(cells) => {
                    let values = builder.values();
                    for c in cells {
                        values.append_value(c as i64);
                    }
                    builder.append(true);
                }
                None => builder.append_null(),
            }
        }
        array_result(builder.finish())
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&*DOC)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::angular_sep_arcsec::angular_sep_arcsec_value;
    use crate::common::test_util::{a, f, i, invoke};
    use crate::healpix_nested::{nested_pixel, HealpixNested};

    /// Deterministic SplitMix64 stream for the tests.
    struct Rng(u64);
    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }
    }

    /// The point at angular distance `dist_deg` and position angle `pa` from
    /// (ra, dec) (spherical "destination point").
    fn offset(ra: f64, dec: f64, dist_deg: f64, pa: f64) -> (f64, f64) {
        let (l1, p1, d) = (ra.to_radians(), dec.to_radians(), dist_deg.to_radians());
        let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * pa.cos())
            .clamp(-1.0, 1.0)
            .asin();
        let l2 = l1 + (pa.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
        (l2.to_degrees(), p2.to_degrees())
    }

    /// A first point: uniform on the sphere, on/near a cell vertex, near a
    /// pole, or near RA = 0/360.
    fn first_point(rng: &mut Rng, depth: u8, k: usize) -> (f64, f64) {
        match k % 5 {
            0 => (
                rng.range(0.0, 360.0),
                rng.range(-1.0, 1.0).asin().to_degrees(),
            ),
            1 | 2 => {
                // a vertex of a random cell, jittered by ~1e-3 of the radius
                let n_cells = 12u64 << (2 * depth as u64);
                let h = rng.next_u64() % n_cells;
                let verts = cdshealpix::nested::vertices(depth, h);
                let (lon, lat) = verts[(rng.next_u64() % 4) as usize];
                let jitter = 1e-7 * rng.range(-1.0, 1.0);
                (
                    lon.to_degrees() + jitter,
                    (lat.to_degrees() + jitter).clamp(-90.0, 90.0),
                )
            }
            3 => {
                let sign = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                (rng.range(0.0, 360.0), sign * (90.0 - rng.range(0.0, 0.01)))
            }
            _ => (
                rng.range(-0.01, 0.01).rem_euclid(360.0),
                rng.range(-60.0, 60.0),
            ),
        }
    }

    #[test]
    fn cone_cells_are_complete_for_close_pairs() {
        let mut rng = Rng(20240611);
        let mut total = 0;
        for nside in [64i64, 128, 1024, 4096] {
            let depth = nside.trailing_zeros() as u8;
            for radius in [1.5f64, 10.0] {
                let npairs = 1000;
                let mut ra1 = Vec::with_capacity(npairs);
                let mut dec1 = Vec::with_capacity(npairs);
                let mut ra2 = Vec::with_capacity(npairs);
                let mut dec2 = Vec::with_capacity(npairs);
                for k in 0..npairs {
                    let (r1, d1) = first_point(&mut rng, depth, k);
                    // mostly close to the radius, sometimes anywhere inside
                    let frac = if k % 3 == 0 {
                        rng.unit()
                    } else {
                        1.0 - 1e-6 * rng.unit() - 1e-9
                    };
                    let pa = rng.range(0.0, std::f64::consts::TAU);
                    let (r2, d2) = offset(r1, d1, frac * radius / 3600.0, pa);
                    let sep = angular_sep_arcsec_value(r1, d1, r2, d2).unwrap();
                    if sep >= radius {
                        continue; // rounding pushed it out; not a "closer than radius" pair
                    }
                    ra1.push(r1);
                    dec1.push(d1);
                    ra2.push(r2);
                    dec2.push(d2);
                }
                let n = ra1.len();
                assert!(n > 900, "too many pairs skipped: {n}");
                let arr = |v: &Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v.clone())) };
                let cells = invoke(
                    &HealpixConeCells::new(),
                    vec![a(arr(&ra1)), a(arr(&dec1)), i(nside), f(radius)],
                    n,
                )
                .unwrap();
                let pix2 = invoke(
                    &HealpixNested::new(),
                    vec![a(arr(&ra2)), a(arr(&dec2)), i(nside)],
                    n,
                )
                .unwrap();
                let pix1 = invoke(
                    &HealpixNested::new(),
                    vec![a(arr(&ra1)), a(arr(&dec1)), i(nside)],
                    n,
                )
                .unwrap();
                let cells = cells.as_list::<i32>();
                let pix2 = pix2.as_primitive::<Int64Type>();
                let pix1 = pix1.as_primitive::<Int64Type>();
                let mut crossing = 0;
                for k in 0..n {
                    assert!(cells.is_valid(k));
                    let list = cells.value(k);
                    let list = list.as_primitive::<Int64Type>();
                    let v: Vec<i64> = list.values().to_vec();
                    assert!(v.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
                    assert!(
                        v.binary_search(&pix1.value(k)).is_ok(),
                        "centre pixel missing"
                    );
                    let p2 = pix2.value(k);
                    if p2 != pix1.value(k) {
                        crossing += 1;
                    }
                    assert!(
                        v.binary_search(&p2).is_ok(),
                        "nside {nside} radius {radius}: pixel {p2} of ({}, {}) missing from cone of ({}, {}): {v:?}",
                        ra2[k], dec2[k], ra1[k], dec1[k]
                    );
                }
                // The test must exercise pairs that straddle cell edges.
                assert!(
                    crossing > 50,
                    "nside {nside} radius {radius}: only {crossing} crossing pairs"
                );
                total += n;
            }
        }
        assert!(total > 7000);
    }

    #[test]
    fn cone_cells_are_not_absurdly_large() {
        // nside 4096 (51.5" cells), 1.5" cone: at most 4 cells.
        let c = cone_cells(12, 150.0, 2.0, (1.5f64 / 3600.0).to_radians()).unwrap();
        assert!(!c.is_empty() && c.len() <= 4, "{c:?}");
        // zero radius: just the centre
        let c = cone_cells(12, 150.0, 2.0, 0.0).unwrap();
        assert!(c.contains(&nested_pixel(12, 150.0, 2.0).unwrap()));
        assert!(c.len() <= 4);
        // nside 1 with a huge cone: whole sky
        let c = cone_cells(0, 0.0, 0.0, std::f64::consts::PI).unwrap();
        assert_eq!(c, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn nulls_and_errors() {
        let ra: ArrayRef = Arc::new(Float64Array::from(vec![
            None,
            Some(f64::NAN),
            Some(10.0),
            Some(10.0),
        ]));
        let dec: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(1.0),
            Some(95.0),
            Some(-90.0),
        ]));
        let out = invoke(
            &HealpixConeCells::new(),
            vec![a(ra.clone()), a(dec.clone()), i(1024), f(10.0)],
            4,
        )
        .unwrap();
        let l = out.as_list::<i32>();
        assert!(l.is_null(0) && l.is_null(1) && l.is_null(2) && l.is_valid(3));
        for (nside, radius) in [
            (3i64, 1.0f64),
            (1024, -1.0),
            (1024, f64::INFINITY),
            (1 << 29, 3600.0),
        ] {
            let e = invoke(
                &HealpixConeCells::new(),
                vec![a(ra.clone()), a(dec.clone()), i(nside), f(radius)],
                4,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("healpix_cone_cells"), "{e}");
        }
        let e = invoke(
            &HealpixConeCells::new(),
            vec![
                a(ra.clone()),
                a(dec.clone()),
                i(1024),
                a(Arc::new(Float64Array::from(vec![1.0; 4]))),
            ],
            4,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`radius_arcsec` must be a constant"), "{e}");
    }
}
