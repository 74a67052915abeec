//! The known-lens catalog: a CSV whose column names come from the
//! configuration (lenscat's `RA [deg]`, or `ra` of a DESI master list).
//!
//! Rows with missing, non-numeric or out-of-range coordinates are reported by
//! line number and skipped; nothing is dropped silently.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use crate::config::CatalogColumns;
use crate::error::{Error, Result};

/// A catalog row that was not used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedLine {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug)]
pub struct LensCatalog {
    pub batch: RecordBatch,
    pub rejected: Vec<RejectedLine>,
    pub data_lines: usize,
}

/// The lens table schema: `lens_id` is the 1-based line number in the CSV.
pub fn lens_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("lens_id", DataType::Int64, false),
        Field::new("lens_name", DataType::Utf8, true),
        Field::new("ra", DataType::Float64, false),
        Field::new("dec", DataType::Float64, false),
        Field::new("grade", DataType::Utf8, true),
        Field::new("zlens", DataType::Utf8, true),
        Field::new("lens_type", DataType::Utf8, true),
        Field::new("reference", DataType::Utf8, true),
    ]))
}

/// Splits one CSV record (RFC 4180 quoting, no embedded newlines).
fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Parses the catalog text; `source` names it in errors.
pub fn parse_catalog(text: &str, source: &str, columns: &CatalogColumns) -> Result<LensCatalog> {
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() || l.starts_with('#') => continue,
            Some((_, l)) => {
                break split_csv(l).map_err(|e| Error::Input(format!("{source}: header: {e}")))?
            }
            None => return Err(Error::Input(format!("{source}: empty catalog"))),
        }
    };
    let find = |name: &str| -> Result<usize> {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::Input(format!(
                "{source}: no column '{name}' (columns: {})",
                header.join(", ")
            ))
        })
    };
    let optional =
        |name: &Option<String>| -> Result<Option<usize>> { name.as_deref().map(find).transpose() };
    let (name_i, ra_i, dec_i) = (
        find(&columns.name)?,
        find(&columns.ra)?,
        find(&columns.dec)?,
    );
    let (grade_i, z_i, type_i, ref_i) = (
        optional(&columns.grade)?,
        optional(&columns.zlens)?,
        optional(&columns.lens_type)?,
        optional(&columns.reference)?,
    );

    let mut ids = Vec::new();
    let (mut names, mut ras, mut decs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut grades, mut zs, mut types, mut refs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rejected = Vec::new();
    let mut data_lines = 0;
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        data_lines += 1;
        let reject = |reason: String| RejectedLine {
            line: line_no,
            reason,
        };
        let fields = match split_csv(line) {
            Ok(f) if f.len() == header.len() => f,
            Ok(f) => {
                rejected.push(reject(format!(
                    "{} fields, header has {}",
                    f.len(),
                    header.len()
                )));
                continue;
            }
            Err(e) => {
                rejected.push(reject(e));
                continue;
            }
        };
        let coord = |at: usize, what: &str, lo: f64, hi: f64| -> std::result::Result<f64, String> {
            let text = fields[at].trim();
            let v: f64 = text
                .parse()
                .map_err(|_| format!("{what} '{text}' is not a number"))?;
            if v.is_finite() && v >= lo && v <= hi {
                Ok(v)
            } else {
                Err(format!("{what} {v} is outside [{lo}, {hi}]"))
            }
        };
        let (ra, dec) = match (
            coord(ra_i, "RA", 0.0, 360.0),
            coord(dec_i, "Dec", -90.0, 90.0),
        ) {
            (Ok(ra), Ok(dec)) => (ra, dec),
            (Err(e), _) | (_, Err(e)) => {
                rejected.push(reject(e));
                continue;
            }
        };
        let text = |at: Option<usize>| {
            at.map(|a| fields[a].trim().to_string())
                .filter(|s| !s.is_empty())
        };
        ids.push(line_no as i64);
        names.push(text(Some(name_i)));
        ras.push(ra);
        decs.push(dec);
        grades.push(text(grade_i));
        zs.push(text(z_i));
        types.push(text(type_i));
        refs.push(text(ref_i));
    }
    let batch = RecordBatch::try_new(
        lens_schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Float64Array::from(ras)),
            Arc::new(Float64Array::from(decs)),
            Arc::new(StringArray::from(grades)),
            Arc::new(StringArray::from(zs)),
            Arc::new(StringArray::from(types)),
            Arc::new(StringArray::from(refs)),
        ],
    )?;
    Ok(LensCatalog {
        batch,
        rejected,
        data_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenscat_columns() -> CatalogColumns {
        CatalogColumns {
            name: "name".into(),
            ra: "RA [deg]".into(),
            dec: "DEC [deg]".into(),
            grade: Some("grading".into()),
            zlens: None,
            lens_type: None,
            reference: None,
        }
    }

    #[test]
    fn reports_bad_lines_by_number_and_keeps_the_rest() {
        let text = "name,RA [deg],DEC [deg],grading\nA,10.5,-3.25,confident\nB,abc,1,probable\n\"C, quoted\",400,1,x\nD,1,2\nE,359.9,89.9,probable\n";
        let c = parse_catalog(text, "t.csv", &lenscat_columns()).unwrap();
        assert_eq!(c.batch.num_rows(), 2);
        assert_eq!(c.data_lines, 5);
        let lines: Vec<usize> = c.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(c.rejected[0].reason.contains("'abc' is not a number"));
        assert!(c.rejected[1].reason.contains("outside"));
        assert_eq!(c.data_lines, c.batch.num_rows() + c.rejected.len());
    }

    #[test]
    fn missing_column_names_the_catalog() {
        let err = parse_catalog("a,b\n1,2\n", "x.csv", &lenscat_columns())
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.csv") && err.contains("'name'"), "{err}");
    }

    #[test]
    fn reads_the_real_lenscat_catalog() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/positives/lenscat_catalog.csv"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            panic!("the lenscat catalog is missing at {path}");
        };
        let c = parse_catalog(&text, path, &lenscat_columns()).unwrap();
        assert_eq!(c.data_lines, 32838);
        assert_eq!(c.batch.num_rows() + c.rejected.len(), 32838);
    }
}
