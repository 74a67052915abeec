//! The SQL plans run in-process on small in-memory tables: the rows each
//! plan gives, the reasons and statuses it spells, and its output columns
//! against their one definition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use lenspipe_udfs::reasons::RejectReason;

use super::*;
use crate::columns::{Projection, OUTPUT_COLUMNS, OUTPUT_COLUMN_NAMES};
use crate::config::Config;
use crate::engine::{Engine, EngineKind};
use crate::stages::column_strings;
use crate::stages::positives::PositiveStatus;
use crate::stages::{negatives, positives, stratify};

fn config(overrides: &[&str]) -> Config {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load("paper_iv", &overrides).unwrap()
}

/// An engine whose `sweeps` table reads a few synthetic DR10 sweep rows
/// from FITS, as the stages do.
async fn engine_on_synthetic_sweeps(dir: &std::path::Path) -> (Engine, Config) {
    let mut opts = lenspipe_synth::SynthOptions::new(dir);
    opts.rows_per_file = 50;
    opts.seed = 3;
    opts.threads = 1;
    lenspipe_synth::run(&opts).unwrap();
    let config = config(&[&format!("inputs.sweeps={}", dir.display())]);
    let engine = Engine::connect(EngineKind::Embedded).await.unwrap();
    engine.register_sweeps(&config).await.unwrap();
    (engine, config)
}

/// The sweep columns the plans read, typed as the FITS sweeps are, nullable.
async fn sweep_columns(engine: &Engine) -> SchemaRef {
    let real = engine.ctx.table("sweeps").await.unwrap().schema().clone();
    let mut names: Vec<&str> = OUTPUT_COLUMNS
        .iter()
        .filter(|c| c.source == crate::columns::Source::Row && !c.name.starts_with("mag_"))
        .map(|c| c.name)
        .collect();
    names.extend(["nobs_g", "nobs_r"]);
    Arc::new(Schema::new(
        names
            .into_iter()
            .map(|n| {
                let field = real.field_with_name(None, n).unwrap();
                Field::new(n, field.data_type().clone(), true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// A batch of `schema`: each row names some values, the rest come from
/// `default` (or NULL); values are cast to the column's type.
fn batch(
    schema: &SchemaRef,
    default: &dyn Fn(&str, usize) -> Option<ScalarValue>,
    rows: &[Vec<(&str, ScalarValue)>],
) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let values = rows.iter().enumerate().map(|(i, row)| {
                let v = row
                    .iter()
                    .find(|(n, _)| *n == f.name())
                    .map(|(_, v)| v.clone())
                    .or_else(|| default(f.name(), i));
                match v {
                    Some(v) => v.cast_to(f.data_type()).unwrap(),
                    None => ScalarValue::try_from(f.data_type()).unwrap(),
                }
            });
            ScalarValue::iter_to_array(values).unwrap()
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn f(v: f64) -> ScalarValue {
    ScalarValue::Float64(Some(v))
}
fn i(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}
fn s(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.into()))
}

/// A sweep row that passes every Paper IV cut.
fn good_sweep_value(name: &str, row: usize) -> Option<ScalarValue> {
    Some(match name {
        "ra" => f(150.0 + row as f64 * 0.1),
        "dec" => f(10.0),
        "type" => s("EXP"),
        "brickname" => s("1500p100"),
        "objid" | "row_index" => i(row as i64),
        "sweep_file" => s("sweep-test.fits"),
        "maskbits" | "fitbits" => i(0),
        "nobs_g" | "nobs_r" | "nobs_z" => i(5),
        "flux_z" => f(100.0),
        "flux_r" => f(40.0),
        "flux_g" => f(20.0),
        "flux_w1" => f(80.0),
        _ => f(1.0),
    })
}

fn register(engine: &Engine, name: &str, batch: RecordBatch) {
    engine.ctx.deregister_table(name).unwrap();
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    engine.ctx.register_table(name, Arc::new(table)).unwrap();
}

/// Registers `lenses`, and the `lens_cells` and `match_cells` the negatives
/// and positives plans join with, made from them as the stages make them.
async fn register_lenses(engine: &Engine, config: &Config, batch: RecordBatch) {
    register(engine, "lenses", batch.clone());
    for (name, (plan, params)) in [
        ("lens_cells", crate::stages::lens_cells(config)),
        ("match_cells", crate::stages::match_cells(config)),
    ] {
        let table = crate::stages::from_lenses(plan, params, batch.clone())
            .await
            .unwrap();
        register(engine, name, table);
    }
}

fn lenses(rows: &[(i64, f64, f64)]) -> RecordBatch {
    let schema = crate::lenses::lens_schema();
    let rows: Vec<Vec<(&str, ScalarValue)>> = rows
        .iter()
        .map(|(id, ra, dec)| vec![("lens_id", i(*id)), ("ra", f(*ra)), ("dec", f(*dec))])
        .collect();
    batch(
        &schema,
        &|name, row| match name {
            "lens_name" => Some(s(&format!("lens{row}"))),
            "grade" => Some(s("confident")),
            _ => None,
        },
        &rows,
    )
}

async fn collect(engine: &Engine, plan: SqlPlan, params: Params) -> RecordBatch {
    let df = plan.dataframe(&engine.ctx, params).await.unwrap();
    let logical = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.unwrap();
    let schema = batches.first().map_or(logical, |b| b.schema());
    concat_batches(&schema, &batches).unwrap()
}

/// Runs the negatives plan through the partition writer into `dir`, as the
/// stage does; returns the funnel the writer counted and the rows committed.
async fn write_negatives(
    engine: &Engine,
    config: &Config,
    dir: &std::path::Path,
) -> (negatives::Funnel, RecordBatch) {
    let df = NEGATIVES
        .dataframe(&engine.ctx, negatives::params(config))
        .await
        .unwrap();
    let out = crate::sink::Location::resolve(&engine.runtime(), &format!("{}/", dir.display()))
        .unwrap()
        .child("negatives");
    let written = crate::sink::write(engine, df, out.clone(), "test", |folder| {
        negatives::Funnel::counters(lenspipe_sinks::WriteSpec::new(folder, OUTPUT_COLUMN_NAMES))
    })
    .await
    .unwrap();
    let funnel = negatives::Funnel::from_counts(&written.summaries.counts).unwrap();
    written.commit_if(|_| Ok(())).await.unwrap();
    // Read with the Parquet crate, which keeps the Arrow types the files
    // were written with (DataFusion would read strings as views).
    let manifest = crate::sink::committed(&out).await.unwrap().unwrap();
    let mut batches = Vec::new();
    let mut schema = None;
    for file in &manifest.files {
        let path = dir.join("negatives").join(&file.path);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        schema = Some(arrow::array::RecordBatchReader::schema(&reader));
        batches.extend(reader.map(|b| b.unwrap()));
    }
    let all = concat_batches(&schema.unwrap(), &batches).unwrap();
    let order =
        arrow::compute::sort_to_indices(all.column_by_name("galaxy_id").unwrap(), None, None)
            .unwrap();
    let columns = all
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c, &order, None).unwrap())
        .collect();
    (funnel, RecordBatch::try_new(all.schema(), columns).unwrap())
}

fn types(schema: &Schema) -> Vec<(String, DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn defined(projection: Projection) -> Vec<(String, DataType)> {
    projection
        .columns()
        .map(|c| (c.name.to_string(), c.data_type.arrow()))
        .collect()
}

/// `$name` placeholders of a SQL text, comments left out.
fn placeholders(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in sql.lines() {
        let code = line.split("--").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find('$') {
            let name: String = rest[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
            rest = &rest[at + 1..];
        }
    }
    out
}

#[test]
fn reasons_and_statuses_reach_the_plans_only_as_bound_parameters() {
    let config = config(&[]);
    let plans = [
        (NEGATIVES, negatives::params(&config)),
        crate::stages::lens_cells(&config),
        crate::stages::match_cells(&config),
        (POSITIVES, positives::params(&config)),
        (STRATIFY, stratify::params(&config)),
    ];
    for (plan, params) in plans {
        let sql = plan.sql();
        assert!(!sql.contains(crate::columns::MARKER));
        let bound: BTreeSet<String> = params.0.iter().map(|(n, _)| n.clone()).collect();
        let unbound: Vec<_> = placeholders(&sql).difference(&bound).cloned().collect();
        assert!(unbound.is_empty(), "unbound {unbound:?}");
        for r in RejectReason::ALL {
            assert!(!sql.contains(&format!("'{r}'")), "'{r}' spelled in SQL");
        }
        for st in PositiveStatus::ALL {
            assert!(!sql.contains(&format!("'{st}'")), "'{st}' spelled in SQL");
        }
    }
    assert!(placeholders(&NEGATIVES.sql())
        .contains(&variant_param("reason", RejectReason::NearKnownLens)));
    let positives = placeholders(&POSITIVES.sql());
    for st in PositiveStatus::ALL {
        assert!(positives.contains(&variant_param("status", st)), "{st:?}");
    }
}

#[tokio::test]
async fn plan_outputs_on_fits_sweeps_have_the_defined_columns_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, config) = engine_on_synthetic_sweeps(dir.path()).await;
    register_lenses(&engine, &config, lenses(&[(1, 150.0, 10.0)])).await;

    let (_, kept) = write_negatives(&engine, &config, &dir.path().join("out")).await;
    assert_eq!(types(&kept.schema()), defined(Projection::Negatives));
    assert_eq!(kept.schema().fields().len(), OUTPUT_COLUMN_NAMES.len());

    let pos = collect(&engine, POSITIVES, positives::params(&config)).await;
    let pos_types = types(&pos.schema());
    let lens_part = [
        "lens_id",
        "lens_name",
        "lens_ra",
        "lens_dec",
        "grade",
        "zlens",
        "lens_type",
        "reference",
        "status",
        "match_sep_arcsec",
        "source_reject_reason",
    ];
    let names: Vec<&str> = pos_types.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..lens_part.len()], lens_part);
    assert_eq!(
        pos_types[lens_part.len()..],
        defined(Projection::Positives)[..]
    );
}

#[tokio::test]
async fn negatives_plan_gives_each_row_its_first_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, config) = engine_on_synthetic_sweeps(dir.path()).await;
    let schema = sweep_columns(&engine).await;
    // Row i fails the i-th cut of the funnel (the row before it all pass).
    let rows = vec![
        vec![("ra", f(f64::NAN)), ("type", s("PSF"))],
        vec![("dec", f(40.0)), ("maskbits", i(2))],
        vec![("type", s("PSF")), ("nobs_g", i(1))],
        vec![("maskbits", i(2)), ("flux_z", f(1.0))],
        vec![("nobs_g", i(1)), ("flux_z", f(1.0))],
        vec![("flux_z", f(1.0))],
        vec![("ra", f(200.0))],
        vec![],
        vec![("type", s("DEV ")), ("flux_r", f(50.0))],
    ];
    register(&engine, "sweeps", batch(&schema, &good_sweep_value, &rows));
    // One lens on row 6, 10 arcsec radius.
    register_lenses(&engine, &config, lenses(&[(1, 200.0 + 1e-4, 10.0)])).await;

    let out = collect(&engine, NEGATIVES, negatives::params(&config)).await;
    let reasons = column_strings(&out, negatives::REASON_COLUMN).unwrap();
    let rows_of = crate::stages::column_i64(&out, "row_index").unwrap();
    let by_row: BTreeMap<i64, Option<RejectReason>> = rows_of
        .iter()
        .zip(&reasons)
        .map(|(r, s)| {
            let parsed = s.as_deref().map(|s| s.parse::<RejectReason>().unwrap());
            (r.unwrap(), parsed)
        })
        .collect();
    let want: BTreeMap<i64, Option<RejectReason>> = RejectReason::ALL
        .iter()
        .map(|r| Some(*r))
        .chain([None, None])
        .enumerate()
        .map(|(i, r)| (i as i64, r))
        .collect();
    assert_eq!(by_row, want);

    let (funnel, kept) = write_negatives(&engine, &config, &dir.path().join("out")).await;
    funnel.check(rows.len() as u64).unwrap();
    assert_eq!(funnel.nobs_low, [1, 0, 0]);
    assert_eq!(kept.num_rows(), 2);
    assert_eq!(
        column_strings(&kept, "galaxy_id").unwrap(),
        [Some("1500p100_7".into()), Some("1500p100_8".into())]
    );
    // Row 8 is a bright DEV: the ring proxy, so pool N2.
    assert_eq!(
        column_strings(&kept, "pool").unwrap(),
        [Some("N1".into()), Some("N2".into())]
    );
    assert!(column_strings(&kept, "nobs_z_bin").unwrap()[0].is_some());
}

#[tokio::test]
async fn positives_plan_gives_every_lens_one_status() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, config) = engine_on_synthetic_sweeps(dir.path()).await;
    let schema = sweep_columns(&engine).await;
    let rows = vec![
        vec![("ra", f(150.0)), ("dec", f(10.0))],
        vec![("ra", f(160.0)), ("dec", f(10.0)), ("type", s("PSF"))],
    ];
    register(&engine, "sweeps", batch(&schema, &good_sweep_value, &rows));
    register_lenses(
        &engine,
        &config,
        lenses(&[
            (1, 150.0 + 1e-4, 10.0),
            (2, 160.0, 10.0),
            (3, 170.0, 10.0),
            (4, 150.0, 40.0),
        ]),
    )
    .await;
    let out = collect(&engine, POSITIVES, positives::params(&config)).await;
    let ids = crate::stages::column_i64(&out, "lens_id").unwrap();
    let statuses = column_strings(&out, "status").unwrap();
    let by_lens: BTreeMap<i64, PositiveStatus> = ids
        .iter()
        .zip(&statuses)
        .map(|(id, s)| {
            let st = PositiveStatus::parse(s.as_deref().unwrap()).unwrap();
            (id.unwrap(), st)
        })
        .collect();
    assert_eq!(
        by_lens,
        BTreeMap::from([
            (1, PositiveStatus::Matched),
            (2, PositiveStatus::FailsSelection),
            (3, PositiveStatus::NoSourceWithinRadius),
            (4, PositiveStatus::OutsideFootprint),
        ])
    );
    let rejected = column_strings(&out, "source_reject_reason").unwrap();
    let reason_of_2 = ids.iter().position(|id| *id == Some(2)).unwrap();
    assert_eq!(
        rejected[reason_of_2].as_deref(),
        Some(RejectReason::NotValidType.as_str())
    );
}

/// A table of stratify's inputs: the named columns, typed as the stages write them.
fn strata_table(columns: &[&str], rows: &[Vec<(&str, ScalarValue)>]) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|n| {
            let t = OUTPUT_COLUMNS
                .iter()
                .find(|c| c.name == *n)
                .map(|c| c.data_type.arrow())
                .unwrap_or(DataType::Utf8);
            Field::new(*n, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    batch(
        &schema,
        &|name, row| match name {
            "ra" => Some(f(150.0 + row as f64)),
            "dec" => Some(f(10.0)),
            "galaxy_id" => Some(s(&format!("g{row}"))),
            "row_index" => Some(i(row as i64)),
            _ => None,
        },
        rows,
    )
}

#[tokio::test]
async fn stratify_plan_draws_the_quotas_and_splits_by_pixel() {
    let engine = Engine::connect(EngineKind::Embedded).await.unwrap();
    let config = config(&[]);
    let common = [
        "stratum",
        "galaxy_id",
        "ra",
        "dec",
        "type",
        "nobs_z",
        "nobs_z_bin",
        "type_bin",
        "mag_g",
        "mag_r",
        "mag_z",
        "psfsize_z",
        "healpix_64",
        "healpix_128",
        "sweep_file",
        "row_index",
    ];
    let mut pos_columns = common.to_vec();
    pos_columns.extend(["lens_name", "grade"]);
    let mut neg_columns = common.to_vec();
    // The draw orders by match_distance first: NULL in every row here, so
    // the hash alone orders them, as with 0 throughout without matching.
    neg_columns.extend(["pool", "confuser_category", "match_distance"]);
    let positives = strata_table(
        &pos_columns,
        &[
            vec![("stratum", s("a")), ("grade", s("confident"))],
            vec![("stratum", s("a")), ("grade", s("probable"))],
        ],
    );
    let negatives: Vec<Vec<(&str, ScalarValue)>> = (0..8)
        .map(|k| {
            vec![
                ("stratum", s(if k < 6 { "a" } else { "b" })),
                ("pool", s(if k < 5 { "N1" } else { "N2" })),
                ("galaxy_id", s(&format!("n{k}"))),
                ("ra", f(30.0 + k as f64)),
            ]
        })
        .collect();
    register(&engine, "positives_strata", positives);
    register(
        &engine,
        "negatives_ranked",
        strata_table(&neg_columns, &negatives),
    );
    // N2 as a short matched cell: each drawn row stands for two.
    let quotas = [("a", "N1", 3i64, 1.0), ("a", "N2", 1, 2.0)];
    let quota_rows: Vec<Vec<(&str, ScalarValue)>> = quotas
        .iter()
        .map(|(st, p, q, w)| {
            vec![
                ("stratum", s(st)),
                ("pool", s(p)),
                ("quota", i(*q)),
                ("draw_weight", f(*w)),
            ]
        })
        .collect();
    let quota_schema = Arc::new(Schema::new(vec![
        Field::new("stratum", DataType::Utf8, false),
        Field::new("pool", DataType::Utf8, false),
        Field::new("quota", DataType::Int64, false),
        Field::new("draw_weight", DataType::Float64, false),
    ]));
    register(
        &engine,
        "quotas",
        batch(&quota_schema, &|_, _| None, &quota_rows),
    );
    let weight_schema = Arc::new(Schema::new(vec![
        Field::new("grade", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, false),
    ]));
    register(
        &engine,
        "grade_weights",
        batch(
            &weight_schema,
            &|_, _| None,
            &[vec![("grade", s("probable")), ("weight", f(0.5))]],
        ),
    );

    let out = collect(&engine, STRATIFY, stratify::params(&config)).await;
    let labels = crate::stages::column_i64(&out, "label").unwrap();
    let pools = column_strings(&out, "pool").unwrap();
    let mut drawn: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for (l, p) in labels.iter().zip(&pools) {
        *drawn.entry((l.unwrap(), p.clone().unwrap())).or_default() += 1;
    }
    assert_eq!(
        drawn,
        BTreeMap::from([
            ((0, "N1".to_string()), 3),
            ((0, "N2".to_string()), 1),
            ((1, "positive".to_string()), 2),
        ])
    );
    // Positives weigh their grade's weight, negatives their quota's draw weight.
    let weights = crate::stages::column_f64(&out, "weight").unwrap();
    let grades = column_strings(&out, "grade").unwrap();
    for ((w, g), p) in weights.iter().zip(&grades).zip(&pools) {
        let want = match (p.as_deref(), g.as_deref()) {
            (Some("N2"), _) => 2.0,
            (_, Some("probable")) => 0.5,
            _ => 1.0,
        };
        assert_eq!(*w, want, "{p:?} {g:?}");
    }
    // One split per pixel, and the same draw again.
    let pixels = crate::stages::column_i64(&out, "split_pixel").unwrap();
    let splits = column_strings(&out, "split").unwrap();
    let mut split_of: BTreeMap<i64, String> = BTreeMap::new();
    for (p, sp) in pixels.iter().zip(&splits) {
        let sp = sp.clone().unwrap();
        assert!(["train", "val", "test"].contains(&sp.as_str()));
        assert_eq!(split_of.entry(p.unwrap()).or_insert(sp.clone()), &sp);
    }
    let again = collect(&engine, STRATIFY, stratify::params(&config)).await;
    let ids = |b: &RecordBatch| {
        let mut v = column_strings(b, "galaxy_id").unwrap();
        v.sort();
        v
    };
    assert_eq!(ids(&out), ids(&again));
}
