//! The known-lens catalog: a CSV whose column names come from the
//! configuration (lenscat's `RA [deg]`, or `ra` of a DESI master list).
//!
//! Rows with missing, non-numeric or out-of-range coordinates are reported by
//! line number and skipped; nothing is dropped silently.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use lenspipe_synth::{CatalogProblem, CsvTable};

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

/// Parses the catalog text; `source` names it in errors. The records and
/// their line numbers come from the reader the synthetic sweeps use too.
pub fn parse_catalog(text: &str, source: &str, columns: &CatalogColumns) -> Result<LensCatalog> {
    let problem = |e: CatalogProblem| Error::Input(format!("{source}: {}", e.0));
    let table = CsvTable::parse(text).map_err(problem)?;
    let find = |name: &str| table.column(name).map_err(problem);
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
    for record in &table.records {
        let coord = |fields: &[String], at: usize, lo: f64, hi: f64| {
            let v = table.number(fields, at)?;
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                let column = table.header[at].trim();
                Err(format!("column '{column}': {v} is outside [{lo}, {hi}]"))
            }
        };
        let coords = table.fields(record).and_then(|fields| {
            Ok((
                fields,
                coord(fields, ra_i, 0.0, 360.0)?,
                coord(fields, dec_i, -90.0, 90.0)?,
            ))
        });
        let (fields, ra, dec) = match coords {
            Ok(found) => found,
            Err(reason) => {
                rejected.push(RejectedLine {
                    line: record.line,
                    reason,
                });
                continue;
            }
        };
        let text = |at: Option<usize>| {
            at.map(|a| fields[a].trim().to_string())
                .filter(|s| !s.is_empty())
        };
        ids.push(record.line as i64);
        names.push(text(Some(name_i)));
        ras.push(ra);
        decs.push(dec);
        grades.push(text(grade_i));
        zs.push(text(z_i));
        types.push(text(type_i));
        refs.push(text(ref_i));
    }
    let data_lines = table.records.len();
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
        assert!(c.rejected[0]
            .reason
            .contains("column 'RA [deg]': \"abc\" is not a number"));
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
