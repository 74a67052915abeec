//! Reading lens catalog CSV files (lenscat format: `name,RA [deg],DEC [deg],...`).
//!
//! One reader for the synthetic sweeps (which plant the lenses) and the
//! positives stage (which finds them again), so both give a lens the same line
//! number. Records come from the `csv` crate, the parser `arrow-csv` is built
//! on. `arrow-csv` itself does not fit: it stops the whole read at the first
//! record with a wrong number of fields (a catalog rejects that row and goes
//! on), counts records rather than lines (a quoted newline would shift every
//! later line number), and reads empty text as null.
//!
//! The rules: a UTF-8 byte order mark is skipped; a field that starts with
//! `"` is quoted (`""` inside stands for one `"`, and it may span lines); a
//! `"` anywhere else is an ordinary character (lenscat references contain
//! `B\"ohringer`); text after a closing quote is kept (as Python's `csv`
//! module does); an unterminated quote runs to the end of the file (also as
//! Python's). Blank lines are ignored, and so are lines starting with `#`
//! before the header. Each record has the 1-based line it starts on.

use std::fmt;
use std::path::{Path, PathBuf};

/// The records of a CSV file after its header.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// Column names as written (compare them trimmed, see [`CsvTable::column`]).
    pub header: Vec<String>,
    pub records: Vec<CsvRecord>,
}

/// One record and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRecord {
    /// 1-based line number where the record starts.
    pub line: usize,
    pub fields: Vec<String>,
}

impl CsvTable {
    /// Splits `text` into the header and the non-blank records.
    pub fn parse(text: &str) -> Result<Self, CatalogProblem> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut header: Option<Vec<String>> = None;
        let mut records = Vec::new();
        // Lines are counted here: csv's positions point before the blank
        // lines and line ends that precede a record.
        let (mut counted_to, mut line) = (0usize, 1usize);
        for record in reader.records() {
            let record = record.map_err(|e| CatalogProblem(e.to_string()))?;
            let from = record.position().map_or(0, |p| p.byte() as usize);
            let start = text[from..]
                .find(|c| c != '\r' && c != '\n')
                .map_or(text.len(), |skip| from + skip);
            line += text.as_bytes()[counted_to..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = start;
            let fields: Vec<String> = record.iter().map(str::to_string).collect();
            if fields.len() == 1 && fields[0].trim().is_empty() {
                continue;
            }
            match header {
                None if fields[0].starts_with('#') => {}
                None => header = Some(fields),
                Some(_) => records.push(CsvRecord { line, fields }),
            }
        }
        let header =
            header.ok_or_else(|| CatalogProblem("the file is empty (no header line)".into()))?;
        Ok(Self { header, records })
    }

    /// The index of the column named `name` (names compared trimmed).
    pub fn column(&self, name: &str) -> Result<usize, CatalogProblem> {
        self.header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                CatalogProblem(format!(
                    "header has no column '{name}' (columns: {})",
                    self.header.join(", ")
                ))
            })
    }

    /// The record's fields if it has as many as the header.
    pub fn fields<'a>(&self, record: &'a CsvRecord) -> Result<&'a [String], String> {
        if record.fields.len() == self.header.len() {
            Ok(&record.fields)
        } else {
            Err(format!(
                "expected {} fields as in the header, found {}",
                self.header.len(),
                record.fields.len()
            ))
        }
    }

    /// The finite number in column `at` of `fields`; the error names the column.
    pub fn number(&self, fields: &[String], at: usize) -> Result<f64, String> {
        let column = self.header[at].trim();
        let text = fields[at].trim();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(format!("column '{column}': {text:?} is not finite")),
            Err(_) => Err(format!("column '{column}': {text:?} is not a number")),
        }
    }
}

/// One lens read from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Lens {
    /// `name` column, or `line N` if the catalog has no `name` column.
    pub name: String,
    pub ra: f64,
    pub dec: f64,
    /// 1-based line number where the record starts.
    pub line: usize,
}

/// A catalog line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lens catalog {}: bad CSV line {}: {}",
            self.path.display(),
            self.line,
            self.reason
        )
    }
}

impl std::error::Error for SkippedLine {}

/// Lenses and skipped lines of a catalog.
#[derive(Debug, Clone, Default)]
pub struct LensCatalog {
    pub lenses: Vec<Lens>,
    pub skipped: Vec<SkippedLine>,
}

/// A fatal problem with the catalog as a whole (no header, missing column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProblem(pub String);

/// Parses catalog text. `path` is used in messages only.
pub fn parse_catalog(
    text: &str,
    path: &Path,
    ra_column: &str,
    dec_column: &str,
) -> Result<LensCatalog, CatalogProblem> {
    let table = CsvTable::parse(text)?;
    let (ra_i, dec_i) = (table.column(ra_column)?, table.column(dec_column)?);
    let name_i = table.column("name").ok();

    let mut cat = LensCatalog::default();
    for record in &table.records {
        let line = record.line;
        let lens = table.fields(record).and_then(|fields| {
            let ra = match table.number(fields, ra_i)? {
                v if (-360.0..=720.0).contains(&v) => v.rem_euclid(360.0),
                v => return Err(format!("{ra_column} {v} is out of range")),
            };
            let dec = match table.number(fields, dec_i)? {
                v if (-90.0..=90.0).contains(&v) => v,
                v => return Err(format!("{dec_column} {v} is outside [-90, 90]")),
            };
            let name = match name_i {
                Some(i) => fields[i].trim().to_string(),
                None => format!("line {line}"),
            };
            Ok(Lens {
                name,
                ra,
                dec,
                line,
            })
        });
        match lens {
            Ok(lens) => cat.lenses.push(lens),
            Err(reason) => cat.skipped.push(SkippedLine {
                path: path.to_path_buf(),
                line,
                reason,
            }),
        }
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> LensCatalog {
        parse_catalog(t, Path::new("x.csv"), "RA [deg]", "DEC [deg]").unwrap()
    }

    #[test]
    fn quoting_and_bad_lines() {
        let t = "name,RA [deg],DEC [deg],ref\n\
                 A,1.5,2.5,x\n\
                 \"B, quoted\",\"3.0\",-4,\"say \"\"hi\"\"\"\n\
                 \n\
                 C,abc,1,r\n\
                 D,1,2\n\
                 E,10,95,r\n\
                 F,5,6,B\\\"ohringer et al.\r\n\
                 \"G\nmultiline\",7,8,r\n\
                 H,9,10,r\n\
                 \"I\"x,11,12,r\n";
        let c = parse(t);
        let names: Vec<_> = c.lenses.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["A", "B, quoted", "F", "G\nmultiline", "H", "Ix"]);
        assert_eq!(c.lenses[1].ra, 3.0);
        assert_eq!(c.lenses[1].dec, -4.0);
        assert_eq!(c.lenses[3].line, 9);
        assert_eq!(c.lenses[4].line, 11);
        let bad: Vec<_> = c.skipped.iter().map(|s| s.line).collect();
        assert_eq!(bad, [5, 6, 7]);
        assert!(c.skipped[0].to_string().contains("bad CSV line 5"));
    }

    #[test]
    fn header_problems() {
        assert!(parse_catalog("", Path::new("x"), "RA [deg]", "DEC [deg]").is_err());
        assert!(parse_catalog("name,ra,dec\n", Path::new("x"), "RA [deg]", "DEC [deg]").is_err());
        let c = parse_catalog("\u{feff}ra,dec\n1,2\n", Path::new("x"), "ra", "dec").unwrap();
        assert_eq!(c.lenses[0].name, "line 2");
        // An unterminated quote runs to the end of the file, as in Python's csv.
        let c = parse("name,RA [deg],DEC [deg]\nq,\"1,2\nr,3,4\n");
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].line, 2);
        assert!(c.skipped[0].reason.contains("expected 3 fields"));
        // Comment lines before the header, as some catalog exports have.
        let c = parse("# exported\n\nname,RA [deg],DEC [deg]\nq,1,2\n");
        assert_eq!((c.lenses[0].name.as_str(), c.lenses[0].line), ("q", 4));
    }

    #[test]
    fn bom_quotes_and_bad_numbers() {
        let t = "\u{feff}name,RA [deg],DEC [deg]\r\n\
                 \"A, with comma\nand newline\",1,2\r\n\
                 \r\n\
                 B,1.5x,3\r\n\
                 C,4,5";
        let c = parse_catalog(t, Path::new("dir/lenses.csv"), "RA [deg]", "DEC [deg]").unwrap();
        assert_eq!(c.lenses.len(), 2);
        assert_eq!(c.lenses[0].name, "A, with comma\nand newline");
        assert_eq!(c.lenses[0].line, 2);
        assert_eq!(c.lenses[1].line, 6);
        let bad = c.skipped[0].to_string();
        assert_eq!(c.skipped[0].line, 5);
        for part in ["dir/lenses.csv", "line 5", "'RA [deg]'", "\"1.5x\""] {
            assert!(bad.contains(part), "{bad} lacks {part}");
        }
    }

    #[test]
    fn table_keeps_lines_across_quoted_newlines() {
        let t = CsvTable::parse("a,b\n\n\"x\ny\nz\",1\n2,3\n").unwrap();
        assert_eq!(t.header, ["a", "b"]);
        let lines: Vec<usize> = t.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 6]);
        assert_eq!(t.records[0].fields, ["x\ny\nz", "1"]);
        assert!(CsvTable::parse("\u{feff}\n\n").is_err());
    }
}
