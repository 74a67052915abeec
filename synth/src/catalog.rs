//! Reading the lens catalog CSV (lenscat format: `name,RA [deg],DEC [deg],...`).
//!
//! A small hand-written CSV reader: comma-separated fields, a field that starts
//! with `"` is quoted (`""` inside stands for one `"`, and it may span lines);
//! a `"` anywhere else is an ordinary character (lenscat references contain
//! `B\"ohringer`), and text after a closing quote is kept as is (as Python's
//! `csv` module does). Blank lines are ignored. Lines that do not parse are
//! reported with their 1-based line number and skipped.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// Splits `text` into records: (1-based start line, fields) or (line, error).
fn records(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let mut line = 1usize;
    while i < b.len() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut err: Option<String> = None;
        // Parse one record.
        loop {
            let mut field = Vec::new();
            if i < b.len() && b[i] == b'"' {
                // Quoted field.
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    match b[i] {
                        b'"' if i + 1 < b.len() && b[i + 1] == b'"' => {
                            field.push(b'"');
                            i += 2;
                        }
                        b'"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        c => {
                            if c == b'\n' {
                                line += 1;
                            }
                            field.push(c);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    err.get_or_insert_with(|| "unterminated quoted field".to_string());
                }
                // Text between the closing quote and the next separator is kept
                // as is (lenient, like Python's csv module).
                while i < b.len() && !matches!(b[i], b',' | b'\n' | b'\r') {
                    field.push(b[i]);
                    i += 1;
                }
            } else {
                while i < b.len() && !matches!(b[i], b',' | b'\n' | b'\r') {
                    field.push(b[i]);
                    i += 1;
                }
            }
            fields.push(String::from_utf8_lossy(&field).into_owned());
            if i < b.len() && b[i] == b',' {
                i += 1;
                continue;
            }
            // End of record: consume \r\n, \n or \r.
            if i < b.len() && b[i] == b'\r' {
                i += 1;
            }
            if i < b.len() && b[i] == b'\n' {
                i += 1;
            }
            line += 1;
            break;
        }
        let blank = fields.len() == 1 && fields[0].trim().is_empty() && err.is_none();
        if !blank {
            out.push((start_line, err.map_or(Ok(fields), Err)));
        }
    }
    out
}

/// Parses catalog text. `path` is used in messages only.
pub fn parse_catalog(
    text: &str,
    path: &Path,
    ra_column: &str,
    dec_column: &str,
) -> Result<LensCatalog, CatalogProblem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut recs = records(text).into_iter();
    let Some((hline, header)) = recs.next() else {
        return Err(CatalogProblem("the file is empty (no header line)".into()));
    };
    let header = header.map_err(|e| CatalogProblem(format!("header (line {hline}): {e}")))?;
    let find = |want: &str| header.iter().position(|h| h.trim() == want);
    let ra_i = find(ra_column).ok_or_else(|| {
        CatalogProblem(format!(
            "header has no column {ra_column:?} (columns: {})",
            header.join(", ")
        ))
    })?;
    let dec_i = find(dec_column).ok_or_else(|| {
        CatalogProblem(format!(
            "header has no column {dec_column:?} (columns: {})",
            header.join(", ")
        ))
    })?;
    let name_i = find("name");

    let mut cat = LensCatalog::default();
    for (line, rec) in recs {
        let skip = |reason: String| SkippedLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let fields = match rec {
            Ok(f) => f,
            Err(e) => {
                cat.skipped.push(skip(e));
                continue;
            }
        };
        if fields.len() != header.len() {
            cat.skipped.push(skip(format!(
                "expected {} fields as in the header, found {}",
                header.len(),
                fields.len()
            )));
            continue;
        }
        let num = |i: usize, what: &str| -> Result<f64, String> {
            let s = fields[i].trim();
            let v: f64 = s
                .parse()
                .map_err(|_| format!("{what} {s:?} is not a number"))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{what} {s:?} is not finite"))
            }
        };
        let ra = match num(ra_i, ra_column) {
            Ok(v) if (-360.0..=720.0).contains(&v) => v.rem_euclid(360.0),
            Ok(v) => {
                cat.skipped
                    .push(skip(format!("{ra_column} {v} is out of range")));
                continue;
            }
            Err(e) => {
                cat.skipped.push(skip(e));
                continue;
            }
        };
        let dec = match num(dec_i, dec_column) {
            Ok(v) if (-90.0..=90.0).contains(&v) => v,
            Ok(v) => {
                cat.skipped
                    .push(skip(format!("{dec_column} {v} is outside [-90, 90]")));
                continue;
            }
            Err(e) => {
                cat.skipped.push(skip(e));
                continue;
            }
        };
        let name = match name_i {
            Some(i) => fields[i].trim().to_string(),
            None => format!("line {line}"),
        };
        cat.lenses.push(Lens {
            name,
            ra,
            dec,
            line,
        });
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
        let c = parse("name,RA [deg],DEC [deg]\nq,\"1,2\n");
        assert_eq!(c.skipped.len(), 1);
        assert!(c.skipped[0].reason.contains("unterminated"));
    }
}
