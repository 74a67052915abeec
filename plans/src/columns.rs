//! The output columns of every sampled galaxy, defined once.
//!
//! The negatives plan writes all of them, in this order (the 48-column
//! schema of the original pipeline, profile `request_v1`); the positives
//! plan writes the matched source with the same columns, minus the
//! negatives' sampling columns. Both plans take their final projection from
//! here (the `@output_columns` line of their SQL), the negatives sink
//! projects its kept rows onto these names, and the tests compare the plans'
//! schemas with this list.

use arrow::datatypes::DataType;

/// An output column's Arrow type. A small copyable mirror of
/// [`DataType`], so the list can be a `const`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Utf8,
    /// What DataFusion's `concat` and `CAST(.. AS VARCHAR)` give.
    Utf8View,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            Self::Utf8 => DataType::Utf8,
            Self::Utf8View => DataType::Utf8View,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
        }
    }
}

/// Where a plan takes a column's value from. Expressions are SQL over the
/// plan's row (the sweep columns plus the `mag_*` the plans compute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The row's column of the same name.
    Row,
    /// An expression, evaluated for every row.
    Sql(&'static str),
    /// An expression the negatives plan evaluates for kept rows only
    /// (rejected rows are not written, so the work would be lost).
    KeptOnly(&'static str),
    /// A sampling column only the negatives have.
    NegativesOnly(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: &'static str,
    pub data_type: ColumnType,
    pub source: Source,
}

const fn c(name: &'static str, data_type: ColumnType, source: Source) -> OutputColumn {
    OutputColumn {
        name,
        data_type,
        source,
    }
}

use ColumnType::*;
use Source::*;

/// The output columns, in order.
pub const OUTPUT_COLUMNS: [OutputColumn; 48] = [
    c(
        "galaxy_id",
        Utf8View,
        KeptOnly("concat(brickname, '_', CAST(objid AS VARCHAR))"),
    ),
    c("brickname", Utf8, Row),
    c("objid", Int32, Row),
    c("ra", Float64, Row),
    c("dec", Float64, Row),
    c("type", Utf8, Row),
    c("nobs_z", Int16, Row),
    c(
        "nobs_z_bin",
        Utf8,
        KeptOnly("nobs_bin(nobs_z, $nobs_z_bins)"),
    ),
    c("type_bin", Utf8, KeptOnly("type_bin(type)")),
    c("flux_g", Float32, Row),
    c("flux_r", Float32, Row),
    c("flux_z", Float32, Row),
    c("flux_w1", Float32, Row),
    c("mag_g", Float64, Row),
    c("mag_r", Float64, Row),
    c("mag_z", Float64, Row),
    c("g_minus_r", Float64, Sql("mag_g - mag_r")),
    c("r_minus_z", Float64, Sql("mag_r - mag_z")),
    c("z_minus_w1", Float64, Sql("mag_z - mag_w1")),
    c("psfsize_g", Float32, Row),
    c("psfsize_r", Float32, Row),
    c("psfsize_z", Float32, Row),
    c("psfdepth_g", Float32, Row),
    c("psfdepth_r", Float32, Row),
    c("psfdepth_z", Float32, Row),
    c("galdepth_g", Float32, Row),
    c("galdepth_r", Float32, Row),
    c("galdepth_z", Float32, Row),
    c("ebv", Float32, Row),
    c("maskbits", Int32, Row),
    c("fitbits", Int16, Row),
    c("mw_transmission_g", Float32, Row),
    c("mw_transmission_r", Float32, Row),
    c("mw_transmission_z", Float32, Row),
    c("shape_r", Float32, Row),
    c("shape_e1", Float32, Row),
    c("shape_e2", Float32, Row),
    c("sersic", Float32, Row),
    c("healpix_64", Int64, KeptOnly("healpix_nested(ra, dec, 64)")),
    c(
        "healpix_128",
        Int64,
        KeptOnly("healpix_nested(ra, dec, 128)"),
    ),
    c("split", Utf8View, NegativesOnly("CAST(NULL AS VARCHAR)")),
    c(
        "pool",
        Utf8,
        NegativesOnly("CASE WHEN confuser_category IS NULL THEN 'N1' ELSE 'N2' END"),
    ),
    c(
        "confuser_category",
        Utf8,
        NegativesOnly("confuser_category"),
    ),
    c("sweep_file", Utf8, Row),
    c("row_index", Int64, Row),
    c("pipeline_version", Utf8, Sql("$pipeline_version")),
    c("git_commit", Utf8, Sql("$git_commit")),
    c("extraction_timestamp", Utf8, Sql("$extraction_timestamp")),
];

/// The output column names, in order.
pub const OUTPUT_COLUMN_NAMES: [&str; OUTPUT_COLUMNS.len()] = {
    let mut out = [""; OUTPUT_COLUMNS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = OUTPUT_COLUMNS[i].name;
        i += 1;
    }
    out
};

/// Which plan a projection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Every column; `KeptOnly` expressions are evaluated where `reject_reason` is NULL.
    Negatives,
    /// Every column but the negatives' sampling ones, all evaluated.
    Positives,
}

impl Projection {
    /// The columns this projection writes.
    pub fn columns(self) -> impl Iterator<Item = &'static OutputColumn> {
        OUTPUT_COLUMNS
            .iter()
            .filter(move |c| self == Projection::Negatives || !matches!(c.source, NegativesOnly(_)))
    }

    /// The SQL select list, one column a line.
    pub fn select_list(self) -> String {
        self.columns()
            .map(|c| match (c.source, self) {
                // The scan may hand strings over as views; the output
                // schema is the one declared here, whatever the scan does.
                (Row, _) if c.data_type == ColumnType::Utf8 => {
                    format!("arrow_cast({0}, 'Utf8') AS {0}", c.name)
                }
                (Row, _) => c.name.to_string(),
                (KeptOnly(e), Projection::Negatives) => {
                    format!(
                        "CASE WHEN {} IS NULL THEN {e} END AS {}",
                        crate::stages::negatives::REASON_COLUMN,
                        c.name
                    )
                }
                (Sql(e) | KeptOnly(e) | NegativesOnly(e), _) if e == c.name => c.name.to_string(),
                (Sql(e) | KeptOnly(e) | NegativesOnly(e), _) => format!("{e} AS {}", c.name),
            })
            .collect::<Vec<_>>()
            .join(",\n    ")
    }
}

/// The line of a plan's SQL that stands for its output columns.
pub const MARKER: &str = "@output_columns";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_the_positives_drop_only_the_sampling_columns() {
        let mut names = OUTPUT_COLUMN_NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OUTPUT_COLUMNS.len());
        assert_eq!(
            Projection::Negatives.columns().count(),
            OUTPUT_COLUMNS.len()
        );
        let dropped: Vec<&str> = OUTPUT_COLUMNS
            .iter()
            .filter(|c| !Projection::Positives.columns().any(|p| p.name == c.name))
            .map(|c| c.name)
            .collect();
        assert_eq!(dropped, ["split", "pool", "confuser_category"]);
    }

    #[test]
    fn the_select_list_gates_output_only_work_in_the_negatives() {
        let neg = Projection::Negatives.select_list();
        let pos = Projection::Positives.select_list();
        assert!(neg.contains("CASE WHEN reject_reason IS NULL THEN type_bin(type) END AS type_bin"));
        assert!(pos.contains("type_bin(type) AS type_bin"));
        assert!(!pos.contains("reject_reason"));
        assert_eq!(neg.lines().count(), 48);
        assert_eq!(pos.lines().count(), 45);
    }
}
