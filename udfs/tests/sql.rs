//! SQL-level tests: every function registered with `register_all` in a
//! `SessionContext`, queried over in-memory tables.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use lenspipe_udfs::reasons::*;

const EXCLUDE: i64 = (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 11) | (1 << 12) | (1 << 13);

fn ctx() -> SessionContext {
    let mut ctx = SessionContext::new();
    lenspipe_udfs::register_all(&mut ctx).unwrap();
    ctx
}

/// (objid, ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, expected reason)
#[allow(clippy::type_complexity)]
fn sweep_rows() -> Vec<(
    i64,
    Option<f64>,
    Option<f64>,
    Option<&'static str>,
    Option<i32>,
    [Option<i16>; 3],
    Option<f32>,
    Option<&'static str>,
)> {
    let ok = [Some(4i16), Some(4), Some(4)];
    vec![
        (
            1,
            Some(150.0),
            Some(0.0),
            Some("SER"),
            Some(0),
            ok,
            Some(20.0),
            None,
        ),
        (
            2,
            Some(150.0),
            Some(-18.0),
            Some("SER"),
            Some(0),
            ok,
            Some(20.0),
            Some(OUTSIDE_DECALS),
        ),
        (
            3,
            Some(150.0),
            Some(32.0),
            Some("SER"),
            Some(0),
            ok,
            Some(20.0),
            Some(OUTSIDE_DECALS),
        ),
        (
            4,
            Some(150.0),
            Some(-17.99),
            Some("REX "),
            Some(0),
            ok,
            Some(20.0),
            None,
        ),
        (
            5,
            Some(150.0),
            Some(31.99),
            Some("REX\0"),
            Some(0),
            ok,
            Some(20.0),
            None,
        ),
        (
            6,
            None,
            Some(0.0),
            Some("SER"),
            Some(0),
            ok,
            Some(20.0),
            Some(INVALID_COORDS),
        ),
        (
            7,
            Some(f64::NAN),
            Some(50.0),
            Some("PSF"),
            Some(2),
            ok,
            None,
            Some(INVALID_COORDS),
        ),
        (
            8,
            Some(1.0),
            Some(1.0),
            Some("PSF "),
            Some(0),
            ok,
            Some(20.0),
            Some(NOT_VALID_TYPE),
        ),
        (
            9,
            Some(1.0),
            Some(1.0),
            None,
            Some(0),
            ok,
            Some(20.0),
            Some(NOT_VALID_TYPE),
        ),
        (
            10,
            Some(1.0),
            Some(1.0),
            Some("DEV"),
            Some(1 << 12),
            ok,
            Some(20.0),
            Some(MASKBIT),
        ),
        (
            11,
            Some(1.0),
            Some(1.0),
            Some("DEV"),
            Some(1 << 2),
            ok,
            Some(20.0),
            None,
        ),
        (
            12,
            Some(1.0),
            Some(1.0),
            Some("DEV"),
            None,
            ok,
            Some(20.0),
            Some(MASKBIT),
        ),
        (
            13,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            [Some(3), Some(2), Some(3)],
            Some(20.0),
            Some(INSUFFICIENT_EXPOSURES),
        ),
        (
            14,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            [Some(3), Some(3), Some(3)],
            Some(20.0),
            None,
        ),
        (
            15,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            [Some(3), None, Some(3)],
            Some(20.0),
            Some(INSUFFICIENT_EXPOSURES),
        ),
        (
            16,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            Some(10.0),
            Some(MAG_Z_FAINT),
        ),
        (
            17,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            Some(10.01),
            None,
        ),
        (
            18,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            Some(f32::NAN),
            Some(MAG_Z_FAINT),
        ),
        (
            19,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            Some(-3.0),
            Some(MAG_Z_FAINT),
        ),
        (
            20,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            Some(0.0),
            Some(MAG_Z_FAINT),
        ),
        (
            21,
            Some(1.0),
            Some(1.0),
            Some("EXP"),
            Some(0),
            ok,
            None,
            Some(MAG_Z_FAINT),
        ),
    ]
}

fn sweep_batch(int16_mask: bool) -> RecordBatch {
    let rows = sweep_rows();
    let mask: ArrayRef = if int16_mask {
        Arc::new(Int16Array::from(
            rows.iter()
                .map(|r| r.4.map(|m| m as i16))
                .collect::<Vec<_>>(),
        ))
    } else {
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        ))
    };
    let nobs = |b: usize| -> ArrayRef {
        Arc::new(Int16Array::from(
            rows.iter().map(|r| r.5[b]).collect::<Vec<_>>(),
        ))
    };
    RecordBatch::try_from_iter(vec![
        (
            "objid",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "ra",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "dec",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "type",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("maskbits", mask),
        ("nobs_g", nobs(0)),
        ("nobs_r", nobs(1)),
        ("nobs_z", nobs(2)),
        (
            "flux_z",
            Arc::new(Float32Array::from(
                rows.iter().map(|r| r.6).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "zmax",
            Arc::new(Float64Array::from(vec![20.0; rows.len()])) as ArrayRef,
        ),
    ])
    .unwrap()
}

const REASON_SQL: &str = "SELECT objid, paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, \
     -18, 32, 'SER,DEV,REX,EXP', 14562, 3, 3, 3, 20.0) AS reason FROM sweeps ORDER BY objid";

async fn strings(ctx: &SessionContext, sql: &str) -> Result<Vec<Option<String>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = vec![];
    for b in batches {
        let col = b.column(b.num_columns() - 1);
        let col = arrow::compute::cast(col, &DataType::Utf8)?;
        out.extend(col.as_string::<i32>().iter().map(|v| v.map(str::to_string)));
    }
    Ok(out)
}

async fn floats(ctx: &SessionContext, sql: &str) -> Result<Vec<Option<f64>>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = vec![];
    for b in batches {
        let col = arrow::compute::cast(b.column(b.num_columns() - 1), &DataType::Float64)?;
        out.extend(col.as_primitive::<Float64Type>().iter());
    }
    Ok(out)
}

#[tokio::test]
async fn paper_iv_reject_reason_with_literal_thresholds_dr9_and_dr10() -> Result<()> {
    assert_eq!(EXCLUDE, 14562);
    let want: Vec<Option<String>> = sweep_rows()
        .iter()
        .map(|r| r.7.map(str::to_string))
        .collect();
    for int16 in [true, false] {
        let ctx = ctx();
        ctx.register_batch("sweeps", sweep_batch(int16))?;
        let got = strings(&ctx, REASON_SQL).await?;
        assert_eq!(got, want, "int16 maskbits = {int16}");
    }
    Ok(())
}

#[tokio::test]
async fn funnel_counts_use_reason_names() -> Result<()> {
    let ctx = ctx();
    ctx.register_batch("sweeps", sweep_batch(false))?;
    let sql = "SELECT coalesce(paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, \
               -18.0, 32.0, 'SER, DEV, REX, EXP', 14562, 3, 3, 3, 20.0), 'kept') AS reason, count(*) AS n \
               FROM sweeps GROUP BY 1 ORDER BY 1";
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut got = vec![];
    for b in &batches {
        let r = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            got.push((r.as_string::<i32>().value(i).to_string(), n.value(i)));
        }
    }
    let mut want: Vec<(String, i64)> = FUNNEL_ORDER
        .iter()
        .map(|r| {
            (
                r.to_string(),
                sweep_rows().iter().filter(|x| x.7 == Some(*r)).count() as i64,
            )
        })
        .chain([(
            "kept".to_string(),
            sweep_rows().iter().filter(|x| x.7.is_none()).count() as i64,
        )])
        .filter(|(_, n)| *n > 0)
        .collect();
    want.sort();
    assert_eq!(got, want);
    Ok(())
}

#[tokio::test]
async fn array_valued_threshold_is_a_clear_error() {
    let ctx = ctx();
    ctx.register_batch("sweeps", sweep_batch(false)).unwrap();
    let sql =
        "SELECT paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, \
               -18, 32, 'SER,DEV,REX,EXP', 14562, 3, 3, 3, zmax) FROM sweeps";
    let err = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.expect_err("must fail"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.contains("paper_iv_reject_reason")
            && msg.contains("`z_mag_max`")
            && msg.contains("constant"),
        "{msg}"
    );
}

#[tokio::test]
async fn null_or_malformed_literal_thresholds_fail_at_planning() {
    let ctx = ctx();
    ctx.register_batch("sweeps", sweep_batch(false)).unwrap();
    let sql =
        "SELECT paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, \
               -18, 32, 'SER,DEV,REX,EXP', NULL, 3, 3, 3, 20) FROM sweeps";
    let msg = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.expect_err("must fail").to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("`exclude_mask`") && msg.contains("NULL"),
        "{msg}"
    );

    let err = ctx
        .sql("SELECT nobs_bin(nobs_g, '1-2,3-x') FROM sweeps")
        .await
        .expect_err("malformed bins is a planning error");
    let msg = err.to_string();
    assert!(
        msg.contains("nobs_bin") && msg.contains("'1-2,3-x'"),
        "{msg}"
    );

    let msg = match ctx
        .sql("SELECT healpix_nested(ra, dec, 100) FROM sweeps")
        .await
    {
        Ok(df) => df.collect().await.expect_err("must fail").to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("healpix_nested") && msg.contains("power of two"),
        "{msg}"
    );
}

#[tokio::test]
async fn scalar_functions_in_sql() -> Result<()> {
    let ctx = ctx();
    assert_eq!(
        floats(&ctx, "SELECT nmgy_to_mag(10.0)").await?,
        vec![Some(20.0)]
    );
    assert_eq!(
        floats(&ctx, "SELECT nmgy_to_mag(10)").await?,
        vec![Some(20.0)]
    );
    assert_eq!(floats(&ctx, "SELECT nmgy_to_mag(-1.0)").await?, vec![None]);
    assert_eq!(floats(&ctx, "SELECT nmgy_to_mag(NULL)").await?, vec![None]);
    assert_eq!(
        floats(&ctx, "SELECT axis_ratio(0.6, 0.0)").await?,
        vec![Some(0.25)]
    );
    let sep = floats(&ctx, "SELECT angular_sep_arcsec(0.0, 0.0, 180.0, 0.0)").await?[0].unwrap();
    assert!((sep - 648000.0).abs() < 1e-6);
    assert_eq!(
        strings(&ctx, "SELECT type_bin('REX ')").await?,
        vec![Some("REX".into())]
    );
    assert_eq!(
        strings(&ctx, "SELECT type_bin('COMP')").await?,
        vec![Some("OTHER".into())]
    );
    assert_eq!(
        strings(&ctx, "SELECT nobs_bin(4, '1-2,3-5,6-10,11+')").await?,
        vec![Some("3-5".into())]
    );
    assert_eq!(
        strings(&ctx, "SELECT nobs_bin(16, '1-2,3-5,6-10,11+')").await?,
        vec![Some("11+".into())]
    );
    assert_eq!(
        strings(&ctx, "SELECT nobs_bin(0, '1-2,3-5,6-10,11+')").await?,
        vec![None]
    );
    assert_eq!(
        strings(
            &ctx,
            "SELECT nobs_bin(arrow_cast(16, 'UInt8'), '1-2,3-5,6-10')"
        )
        .await?,
        vec![None]
    );
    assert_eq!(
        strings(
            &ctx,
            "SELECT n2_category('DEV ', 1.0, 10.0, 0.5, 'DEV', 10, 'EXP', 2, 0.4, 21)"
        )
        .await?,
        vec![Some("ring_proxy".into())]
    );
    assert_eq!(
        strings(&ctx, "SELECT n2_category(arrow_cast('EXP', 'Utf8View'), 1.0, 1.0, 2.5, 'DEV', 10, 'EXP', 2, 0.4, 21)").await?,
        vec![Some("edge_on_proxy".into())]
    );
    let pix = ctx
        .sql("SELECT healpix_nested(0.0, 0.0, 1), healpix_nested(360.0, 0.0, 1)")
        .await?
        .collect()
        .await?;
    assert_eq!(pix[0].column(0).as_primitive::<Int64Type>().value(0), 4);
    assert_eq!(pix[0].column(1).as_primitive::<Int64Type>().value(0), 4);
    let h = floats(&ctx, "SELECT stable_hash_unit('abc', 42)").await?[0].unwrap();
    assert_eq!(h, 0.8147423938673788);
    Ok(())
}

#[tokio::test]
async fn stable_hash_unit_is_independent_of_partitioning() -> Result<()> {
    let keys: Vec<i64> = (0..3000).collect();
    let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
    let batch = |r: std::ops::Range<usize>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(keys[r].to_vec())) as ArrayRef],
        )
        .unwrap()
    };
    let ctx = ctx();
    ctx.register_table(
        "one",
        Arc::new(MemTable::try_new(
            schema.clone(),
            vec![vec![batch(0..3000)]],
        )?),
    )?;
    ctx.register_table(
        "many",
        Arc::new(MemTable::try_new(
            schema.clone(),
            vec![
                vec![batch(0..1000), batch(1000..1500)],
                vec![batch(1500..2999)],
                vec![batch(2999..3000)],
            ],
        )?),
    )?;
    let a = floats(&ctx, "SELECT k, stable_hash_unit(k, 7) FROM one ORDER BY k").await?;
    let b = floats(
        &ctx,
        "SELECT k, stable_hash_unit(k, 7) FROM many ORDER BY k",
    )
    .await?;
    assert_eq!(a, b);
    let want: Vec<Option<f64>> = keys
        .iter()
        .map(|k| Some(lenspipe_udfs::stable_hash_unit_i64(*k, 7)))
        .collect();
    assert_eq!(a, want);
    Ok(())
}

#[tokio::test]
async fn bucketed_crossmatch_join_matches_brute_force() -> Result<()> {
    // Lenses on a small grid, sweeps objects scattered around them, some
    // within 1.5 arcsec and some across cell edges, near the pole and RA 0.
    let mut lra = vec![];
    let mut ldec = vec![];
    let centers: [(f64, f64); 5] = [
        (150.0, 2.0),
        (0.0002, -5.0),
        (359.9999, 10.0),
        (45.0, 89.9999),
        (200.0, -41.8103149),
    ];
    for (ra, dec) in centers {
        lra.push(ra);
        ldec.push(dec);
    }
    let mut sra = vec![];
    let mut sdec = vec![];
    let steps = [-2.0, -1.4, -1.0, -0.3, 0.0, 0.3, 1.0, 1.4, 2.0];
    for (ra, dec) in centers {
        let cosd = dec.to_radians().cos().max(1e-3);
        for dx in steps {
            for dy in steps {
                sra.push((ra + dx / 3600.0 / cosd).rem_euclid(360.0));
                sdec.push((dec + dy / 3600.0).clamp(-90.0, 90.0));
            }
        }
    }
    let ctx = ctx();
    let lenses = RecordBatch::try_from_iter(vec![
        (
            "lid",
            Arc::new(Int64Array::from((0..lra.len() as i64).collect::<Vec<_>>())) as ArrayRef,
        ),
        ("ra", Arc::new(Float64Array::from(lra.clone())) as ArrayRef),
        (
            "dec",
            Arc::new(Float64Array::from(ldec.clone())) as ArrayRef,
        ),
    ])?;
    let sweeps = RecordBatch::try_from_iter(vec![
        (
            "sid",
            Arc::new(Int64Array::from((0..sra.len() as i64).collect::<Vec<_>>())) as ArrayRef,
        ),
        (
            "ra",
            Arc::new(Float32Array::from(
                sra.iter().map(|v| *v as f32).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "dec",
            Arc::new(Float32Array::from(
                sdec.iter().map(|v| *v as f32).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])?;
    ctx.register_batch("lenses", lenses)?;
    ctx.register_batch("sweeps", sweeps)?;
    for nside in [4096, 65536] {
        let bucketed = format!(
            "SELECT l.lid * 100000 + s.sid AS pair FROM \
               (SELECT lid, ra, dec, unnest(healpix_cone_cells(ra, dec, {nside}, 1.5)) AS cell FROM lenses) l \
               JOIN (SELECT sid, ra, dec, healpix_nested(ra, dec, {nside}) AS cell FROM sweeps) s ON l.cell = s.cell \
             WHERE angular_sep_arcsec(l.ra, l.dec, s.ra, s.dec) < 1.5 ORDER BY pair"
        );
        let brute = "SELECT l.lid * 100000 + s.sid AS pair FROM lenses l CROSS JOIN sweeps s \
                     WHERE angular_sep_arcsec(l.ra, l.dec, s.ra, s.dec) < 1.5 ORDER BY pair";
        let a = floats(&ctx, &bucketed).await?;
        let b = floats(&ctx, brute).await?;
        assert!(b.len() > 50, "brute force found {} pairs", b.len());
        assert_eq!(a, b, "nside {nside}");
    }
    // the cell list is a non-null List<Int64> with non-null items
    let batches = ctx
        .sql("SELECT healpix_cone_cells(ra, dec, 1024, 10.0) FROM lenses")
        .await?
        .collect()
        .await?;
    let f = batches[0].schema().field(0).clone();
    assert_eq!(
        f.data_type(),
        &DataType::List(Arc::new(Field::new_list_field(DataType::Int64, false)))
    );
    assert_eq!(batches[0].column(0).null_count(), 0);
    Ok(())
}
