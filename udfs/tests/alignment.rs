//! Every function gives each row its own value, whatever shape the rows
//! arrive in: one batch, many small batches sliced out of a larger one (non-zero
//! offsets), all-constant arguments, or the subset of rows a `CASE` branch
//! evaluates. The reference is the function called on one row of literals at
//! a time.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

const ROWS: usize = 160;

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `None` one time in `one_in`.
    fn maybe<T>(&mut self, one_in: u64, v: T) -> Option<T> {
        (!self.next().is_multiple_of(one_in)).then_some(v)
    }
}

/// Rows with every value class the functions care about: NULLs, NaN,
/// negative fluxes, padded TYPE strings, high mask bits.
fn rows() -> RecordBatch {
    let mut r = Rng(7);
    let types = ["REX ", "DEV", "SER", "EXP", "PSF", "DUP", "REX", "COMP"];
    let mut id = Vec::new();
    let (mut ra, mut dec) = (Vec::new(), Vec::new());
    let mut typ = Vec::new();
    let mut maskbits = Vec::new();
    let (mut nobs_g, mut nobs_r, mut nobs_z) = (Vec::new(), Vec::new(), Vec::new());
    let (mut flux_g, mut flux_r, mut flux_z) = (Vec::new(), Vec::new(), Vec::new());
    let (mut shape_r, mut e1, mut e2) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ROWS {
        id.push(i as i64);
        let v = 10.0 + r.unit();
        ra.push(r.maybe(25, v));
        let v = -20.0 + 55.0 * r.unit();
        dec.push(r.maybe(25, v));
        let t = types[(r.next() % types.len() as u64) as usize];
        typ.push(r.maybe(20, t.to_string()));
        let bits = (r.next() & 0x3fff) as i32;
        let v = if r.unit() < 0.5 { 0 } else { bits };
        maskbits.push(r.maybe(20, v));
        for v in [&mut nobs_g, &mut nobs_r, &mut nobs_z] {
            let x = (r.next() % 9) as i16;
            v.push(r.maybe(20, x));
        }
        for v in [&mut flux_g, &mut flux_r, &mut flux_z] {
            let x = match r.next() % 12 {
                0 => f32::NAN,
                1 => -1.0,
                _ => (200.0 * r.unit()) as f32,
            };
            v.push(r.maybe(20, x));
        }
        let (a, b, c) = (
            (4.0 * r.unit()) as f32,
            (r.unit() - 0.5) as f32,
            (r.unit() - 0.5) as f32,
        );
        shape_r.push(r.maybe(20, a));
        e1.push(r.maybe(20, b));
        e2.push(r.maybe(20, c));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(id))),
        ("ra", Arc::new(Float64Array::from(ra))),
        ("dec", Arc::new(Float64Array::from(dec))),
        ("type", Arc::new(StringArray::from(typ))),
        ("maskbits", Arc::new(Int32Array::from(maskbits))),
        ("nobs_g", Arc::new(Int16Array::from(nobs_g))),
        ("nobs_r", Arc::new(Int16Array::from(nobs_r))),
        ("nobs_z", Arc::new(Int16Array::from(nobs_z))),
        ("flux_g", Arc::new(Float32Array::from(flux_g))),
        ("flux_r", Arc::new(Float32Array::from(flux_r))),
        ("flux_z", Arc::new(Float32Array::from(flux_z))),
        ("shape_r", Arc::new(Float32Array::from(shape_r))),
        ("shape_e1", Arc::new(Float32Array::from(e1))),
        ("shape_e2", Arc::new(Float32Array::from(e2))),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("consistent columns")
}

/// One call of every function, over the table's columns, thresholds as literals.
const CALLS: &[&str] = &[
    "nmgy_to_mag(flux_z)",
    "paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, \
     -18.0, 32.0, 'SER,DEV,REX,EXP', 14, 3, 3, 3, 20.0)",
    "n2_category(type, flux_g, flux_r, shape_r, 'DEV,SER', 10.0, 'EXP,SER', 1.5, 0.4, 21.0)",
    "nobs_bin(nobs_z, '1-2,3-5,6-10,11+')",
    "type_bin(type)",
    "healpix_nested(ra, dec, 128)",
    "array_to_string(healpix_cone_cells(ra, dec, 1024, 10.0), ',')",
    "angular_sep_arcsec(ra, dec, 10.5, 5.0)",
    "min_sep_arcsec(ra, dec, make_array(make_array(10.2, 1.0), make_array(10.7, 20.0)))",
    "axis_ratio(shape_e1, shape_e2)",
    "stable_hash_unit(healpix_nested(ra, dec, 64), 42)",
    "stable_hash_unit(type, 7)",
];

fn context() -> SessionContext {
    let mut ctx = SessionContext::new();
    lenspipe_udfs::register_all(&mut ctx).expect("register");
    ctx
}

/// Registers `batch` as `t`, cut into batches of irregular sizes that are
/// slices (non-zero offsets) of the one batch, over `partitions` partitions.
fn register_sliced(ctx: &SessionContext, batch: &RecordBatch, partitions: usize) {
    let mut parts = vec![Vec::new(); partitions];
    let (mut offset, mut k) = (0, 0);
    let sizes = [1, 7, 2, 31, 3, 64, 5];
    while offset < batch.num_rows() {
        let len = sizes[k % sizes.len()].min(batch.num_rows() - offset);
        parts[k % partitions].push(batch.slice(offset, len));
        offset += len;
        k += 1;
    }
    let table = MemTable::try_new(batch.schema(), parts).expect("mem table");
    ctx.deregister_table("t").expect("deregister");
    ctx.register_table("t", Arc::new(table)).expect("register");
}

fn render(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("id first");
        let values = ArrayFormatter::try_new(b.column(1).as_ref(), &options).expect("formatter");
        for i in 0..b.num_rows() {
            out.push((ids.value(i), values.value(i).to_string()));
        }
    }
    out.sort();
    out
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<(i64, String)>> {
    Ok(render(&ctx.sql(sql).await?.collect().await?))
}

/// A SQL literal of row `i` of `column`, typed like the column.
fn literal(batch: &RecordBatch, column: &str, i: usize) -> String {
    let array = batch.column_by_name(column).expect("column");
    let dt = array.data_type();
    let options = FormatOptions::default();
    let text = ArrayFormatter::try_new(array.as_ref(), &options)
        .expect("formatter")
        .value(i)
        .to_string();
    let sql_type = match dt {
        DataType::Utf8 => "Utf8",
        DataType::Float64 => "Float64",
        DataType::Float32 => "Float32",
        DataType::Int16 => "Int16",
        DataType::Int32 => "Int32",
        DataType::Int64 => "Int64",
        other => panic!("no literal for {other}"),
    };
    if array.is_null(i) {
        return format!("arrow_cast(NULL, '{sql_type}')");
    }
    match dt {
        DataType::Utf8 => format!("'{}'", text.replace('\'', "''")),
        DataType::Float32 | DataType::Float64 if text == "NaN" => {
            format!("arrow_cast('NaN', '{sql_type}')")
        }
        _ => format!("arrow_cast({text}, '{sql_type}')"),
    }
}

/// `call` with every column name replaced by row `i`'s literal.
fn call_on_row(batch: &RecordBatch, call: &str, i: usize) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if batch.schema().column_with_name(word).is_some() {
            out.push_str(&literal(batch, word, i));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let mut in_string = false;
    for c in call.chars() {
        if c == '\'' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[tokio::test]
async fn every_function_gives_each_row_its_own_value_whatever_the_batch_shape() -> Result<()> {
    let batch = rows();
    let ctx = context();
    for call in CALLS {
        // Reference: one all-literal call per row.
        let mut reference = Vec::with_capacity(ROWS);
        for i in 0..ROWS {
            let sql = format!(
                "SELECT arrow_cast({i}, 'Int64') AS id, {} AS v",
                call_on_row(&batch, call, i)
            );
            reference.extend(query(&ctx, &sql).await?);
        }

        for partitions in [1, 3] {
            register_sliced(&ctx, &batch, partitions);
            let got = query(&ctx, &format!("SELECT id, {call} AS v FROM t")).await?;
            assert_eq!(
                got, reference,
                "{call}: sliced batches over {partitions} partitions"
            );

            // Inside CASE: later branches see only the rows earlier ones left.
            let sql = format!(
                "SELECT id, CASE WHEN id % 3 = 0 THEN 'first' \
                                 WHEN id % 3 = 1 THEN CAST({call} AS VARCHAR) \
                                 ELSE concat('third:', CAST({call} AS VARCHAR)) END AS v FROM t"
            );
            let got = query(&ctx, &sql).await?;
            let expected: Vec<(i64, String)> = reference
                .iter()
                .map(|(id, v)| {
                    let v = match id % 3 {
                        0 => "first".to_string(),
                        1 => v.clone(),
                        _ => format!("third:{}", if v == "NULL" { "" } else { v }),
                    };
                    (*id, v)
                })
                .collect();
            assert_eq!(
                got, expected,
                "{call}: inside CASE over {partitions} partitions"
            );
        }
    }
    Ok(())
}
