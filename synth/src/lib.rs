//! Deterministic DR10-format synthetic sweep catalogs, and a synthetic sky
//! answering the viewer's cutout API ([`viewer_sky`]).
//!
//! [`run`] writes `files` FITS files named and laid out like Legacy Surveys DR10
//! sweeps (`sweep-150m010-155m005.fits`, one BINTABLE with the DR10 sweep
//! columns, see [`dr10_columns`]), each covering a distinct 5 x 5 degree box with
//! `rows_per_file` synthetic objects, and optionally plants one lens-galaxy-like
//! row per lens of a lens catalog CSV that falls in a file's box.
//!
//! Output is a pure function of `(seed, files, rows_per_file, plant catalog)`:
//! every file has its own random streams derived from `(seed, file index)`, so the
//! bytes do not depend on the number of threads.

mod catalog;
mod gen;
pub mod rng;
mod schema;
mod sky;
pub mod viewer_sky;

pub use catalog::{
    parse_catalog, CatalogProblem, CsvRecord, CsvTable, Lens, LensCatalog, SkippedLine,
};
pub use gen::ObjType;
pub use schema::{dr10_columns, OPTICAL, WISE};
pub use sky::{sweep_boxes, SkyBox, N_BOXES};

use gen::{encode_row, Enc, FileGen};
use lenspipe_fits::sphere::angular_sep_arcsec;
use lenspipe_fits::{BinTableWriter, ColumnSpec};
use rng::Rng;
use sky::BrickGrid;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Rows generated per `write_rows` call.
const CHUNK_ROWS: usize = 1024;
/// BufWriter capacity per file.
const WRITE_BUFFER: usize = 8 << 20;
/// Largest planting displacement, arcsec (exclusive).
pub const MAX_PLANT_OFFSET_ARCSEC: f64 = 0.5;
/// Name of the planting sidecar written to `out_dir` when a catalog is planted:
/// header `name,sweep_file,row_index,ra,dec,lens_ra,lens_dec,offset_arcsec,catalog_line`,
/// one line per planted row in file then row order (`name` quoted if needed;
/// `ra`/`dec` are the exact values in the file; `catalog_line` is the lens's
/// 1-based line in the catalog CSV).
pub const PLANTED_CSV: &str = "planted.csv";

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Directory the sweep files (and `planted.csv`) are written to; created if missing.
    pub out_dir: PathBuf,
    /// Number of sweep files, at most [`N_BOXES`] (864).
    pub files: usize,
    /// Background rows per file (planted rows come on top).
    pub rows_per_file: u64,
    pub seed: u64,
    /// Lens catalog CSV whose lenses are planted into the files covering them.
    pub plant: Option<PathBuf>,
    /// RA column of the lens catalog (default `"RA [deg]"`).
    pub plant_ra_column: String,
    /// Dec column of the lens catalog (default `"DEC [deg]"`).
    pub plant_dec_column: String,
    /// Worker threads; 0 means all available cores. Does not affect the output.
    pub threads: usize,
    /// Fail on the first bad catalog line instead of skipping it (default false).
    pub strict_catalog: bool,
}

impl SynthOptions {
    /// Defaults: 1 file of 100,000 rows, seed 0, no planting, one thread per core.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        SynthOptions {
            out_dir: out_dir.into(),
            files: 1,
            rows_per_file: 100_000,
            seed: 0,
            plant: None,
            plant_ra_column: "RA [deg]".to_string(),
            plant_dec_column: "DEC [deg]".to_string(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            strict_catalog: false,
        }
    }
}

/// Errors of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid synth options: {0}")]
    InvalidOptions(String),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write", "create directory".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lens catalog {}: {message}", path.display())]
    Catalog { path: PathBuf, message: String },
    /// A bad catalog line when [`SynthOptions::strict_catalog`] is set
    /// (otherwise such lines are skipped and listed in [`PlantSummary::skipped`]).
    #[error("lens catalog {}: bad CSV line {line}: {reason}", path.display())]
    BadCsvLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("a synth worker thread panicked")]
    WorkerPanicked,
}

impl SynthError {
    fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SynthError + 'p {
        move |source| SynthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One file written by [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// File index `k` (its box depends on `(seed, k)` only).
    pub index: usize,
    pub path: PathBuf,
    pub sky: SkyBox,
    /// Rows in the file (`NAXIS2`): background plus planted.
    pub rows: u64,
    /// Planted lens rows (the last `planted` rows of the file).
    pub planted: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// One planted row.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedRow {
    /// Lens name from the catalog.
    pub name: String,
    /// 1-based catalog line of the lens.
    pub catalog_line: usize,
    /// Sweep file name (no directory).
    pub sweep_file: String,
    /// 0-based row index in the file (also its `OBJID`).
    pub row_index: u64,
    /// Position written to the row (degrees).
    pub ra: f64,
    pub dec: f64,
    /// Catalog position (degrees).
    pub lens_ra: f64,
    pub lens_dec: f64,
    /// Angular distance between the two, arcsec (< 0.5).
    pub offset_arcsec: f64,
}

/// What happened to the lens catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantSummary {
    pub catalog: PathBuf,
    /// Lenses read successfully.
    pub lenses: usize,
    /// Lines skipped as bad, with line numbers and reasons.
    pub skipped: Vec<SkippedLine>,
    /// Lenses outside every generated file's box (not planted).
    pub outside: usize,
    /// Path of the `planted.csv` sidecar.
    pub sidecar: PathBuf,
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthReport {
    /// Files in index order.
    pub files: Vec<FileReport>,
    pub total_rows: u64,
    pub total_bytes: u64,
    pub total_planted: u64,
    /// Planted rows in file order, then row order.
    pub planted: Vec<PlantedRow>,
    /// Present when a catalog was planted.
    pub plant: Option<PlantSummary>,
    pub threads: usize,
    pub elapsed: Duration,
}

impl SynthReport {
    /// Throughput in MB/s (10^6 bytes per second of wall time).
    pub fn mb_per_s(&self) -> f64 {
        self.total_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for SynthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.files {
            writeln!(
                f,
                "{}  {}  rows={} planted={} bytes={}",
                r.path.display(),
                r.sky,
                r.rows,
                r.planted,
                r.bytes
            )?;
        }
        write!(
            f,
            "{} files, {} rows ({} planted), {} bytes in {:.2}s ({:.1} MB/s, {} threads)",
            self.files.len(),
            self.total_rows,
            self.total_planted,
            self.total_bytes,
            self.elapsed.as_secs_f64(),
            self.mb_per_s(),
            self.threads
        )?;
        if let Some(p) = &self.plant {
            write!(
                f,
                "\nlens catalog {}: {} lenses, {} planted, {} outside the generated boxes, {} bad lines skipped; sidecar {}",
                p.catalog.display(),
                p.lenses,
                self.total_planted,
                p.outside,
                p.skipped.len(),
                p.sidecar.display()
            )?;
            for s in &p.skipped {
                write!(f, "\n  {s}")?;
            }
        }
        Ok(())
    }
}

/// Reads a lens catalog with the column names of `opts`.
pub fn read_catalog(path: &Path, opts: &SynthOptions) -> Result<LensCatalog, SynthError> {
    let bytes = fs::read(path).map_err(SynthError::io("read", path))?;
    let text = String::from_utf8_lossy(&bytes);
    parse_catalog(&text, path, &opts.plant_ra_column, &opts.plant_dec_column).map_err(|p| {
        SynthError::Catalog {
            path: path.to_path_buf(),
            message: p.0,
        }
    })
}

/// Generates the sweep files described by `opts`.
pub fn run(opts: &SynthOptions) -> Result<SynthReport, SynthError> {
    let start = Instant::now();
    if opts.files > N_BOXES {
        return Err(SynthError::InvalidOptions(format!(
            "--files {} exceeds the {N_BOXES} distinct 5x5 degree boxes with -25 <= dec_lo < 35",
            opts.files
        )));
    }
    let boxes = sweep_boxes(opts.seed, opts.files);

    // Lenses per file, in catalog order.
    let mut per_file: Vec<Vec<Lens>> = vec![Vec::new(); opts.files];
    let mut plant_summary = None;
    if let Some(path) = &opts.plant {
        let cat = read_catalog(path, opts)?;
        if opts.strict_catalog {
            if let Some(s) = cat.skipped.first() {
                return Err(SynthError::BadCsvLine {
                    path: s.path.clone(),
                    line: s.line,
                    reason: s.reason.clone(),
                });
            }
        }
        let by_box: HashMap<SkyBox, usize> =
            boxes.iter().enumerate().map(|(k, b)| (*b, k)).collect();
        let mut outside = 0;
        for lens in &cat.lenses {
            match lens_box(lens).and_then(|b| by_box.get(&b)) {
                Some(&k) => per_file[k].push(lens.clone()),
                None => outside += 1,
            }
        }
        plant_summary = Some(PlantSummary {
            catalog: path.clone(),
            lenses: cat.lenses.len(),
            skipped: cat.skipped,
            outside,
            sidecar: opts.out_dir.join(PLANTED_CSV),
        });
    }
    let max_rows = opts.rows_per_file + per_file.iter().map(|v| v.len() as u64).max().unwrap_or(0);
    if max_rows > i32::MAX as u64 {
        return Err(SynthError::InvalidOptions(format!(
            "--rows-per-file {}: OBJID is a 32-bit integer, at most {} rows per file",
            opts.rows_per_file,
            i32::MAX
        )));
    }

    fs::create_dir_all(&opts.out_dir).map_err(SynthError::io("create directory", &opts.out_dir))?;

    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(opts.files.max(1));

    let schema = dr10_columns();
    let grid = BrickGrid::new();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    type Done = (usize, Result<(FileReport, Vec<PlantedRow>), SynthError>);
    let mut done: Vec<Done> = Vec::with_capacity(opts.files);
    let mut panicked = false;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out: Vec<Done> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= opts.files {
                            break;
                        }
                        let r = write_file(opts, k, boxes[k], &per_file[k], &schema, &grid);
                        if r.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        out.push((k, r));
                    }
                    out
                })
            })
            .collect();
        for w in workers {
            match w.join() {
                Ok(v) => done.extend(v),
                Err(_) => panicked = true,
            }
        }
    });
    if panicked {
        return Err(SynthError::WorkerPanicked);
    }
    done.sort_by_key(|d| d.0);
    let mut files = Vec::with_capacity(done.len());
    let mut planted = Vec::new();
    for (_, r) in done {
        let (f, p) = r?;
        files.push(f);
        planted.extend(p);
    }

    if let Some(summary) = &plant_summary {
        write_sidecar(&summary.sidecar, &planted)?;
    }

    Ok(SynthReport {
        total_rows: files.iter().map(|f| f.rows).sum(),
        total_bytes: files.iter().map(|f| f.bytes).sum(),
        total_planted: files.iter().map(|f| f.planted).sum(),
        files,
        planted,
        plant: plant_summary,
        threads,
        elapsed: start.elapsed(),
    })
}

/// The sweep box (among all [`N_BOXES`]) containing a lens, if any.
fn lens_box(lens: &Lens) -> Option<SkyBox> {
    let dec_lo = (lens.dec / 5.0).floor() as i32 * 5;
    let ra_lo = (lens.ra / 5.0).floor() as i32 * 5;
    let b = SkyBox {
        ra_lo,
        ra_hi: ra_lo + 5,
        dec_lo,
        dec_hi: dec_lo + 5,
    };
    b.contains(lens.ra, lens.dec).then_some(b)
}

/// Writes file `k` through a temporary name, renamed into place when complete.
fn write_file(
    opts: &SynthOptions,
    k: usize,
    sky: SkyBox,
    lenses: &[Lens],
    schema: &[ColumnSpec],
    grid: &BrickGrid,
) -> Result<(FileReport, Vec<PlantedRow>), SynthError> {
    let name = sky.file_name();
    let path = opts.out_dir.join(&name);
    let tmp = opts.out_dir.join(format!(".{name}.partial"));
    let result = write_file_to(opts, k, sky, lenses, schema, grid, &tmp, &name);
    match result {
        Ok(planted) => {
            fs::rename(&tmp, &path).map_err(SynthError::io("rename into place", &path))?;
            let bytes = fs::metadata(&path)
                .map_err(SynthError::io("stat", &path))?
                .len();
            Ok((
                FileReport {
                    index: k,
                    path,
                    sky,
                    rows: opts.rows_per_file + lenses.len() as u64,
                    planted: lenses.len() as u64,
                    bytes,
                },
                planted,
            ))
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn write_file_to(
    opts: &SynthOptions,
    k: usize,
    sky: SkyBox,
    lenses: &[Lens],
    schema: &[ColumnSpec],
    grid: &BrickGrid,
    tmp: &Path,
    name: &str,
) -> Result<Vec<PlantedRow>, SynthError> {
    let werr = SynthError::io;
    let file = File::create(tmp).map_err(werr("create", tmp))?;
    let nrows = opts.rows_per_file + lenses.len() as u64;
    let cards: Vec<(String, String)> = vec![
        (
            "COMMENT".into(),
            "Synthetic DR10-format sweep written by lenspipe-synth; not real data.".into(),
        ),
        ("SYNSEED".into(), opts.seed.to_string()),
        ("SYNFILE".into(), k.to_string()),
        ("SYNPLANT".into(), lenses.len().to_string()),
        ("RAMIN".into(), sky.ra_lo.to_string()),
        ("RAMAX".into(), sky.ra_hi.to_string()),
        ("DECMIN".into(), sky.dec_lo.to_string()),
        ("DECMAX".into(), sky.dec_hi.to_string()),
    ];
    let mut w = BinTableWriter::new(
        BufWriter::with_capacity(WRITE_BUFFER, file),
        schema.to_vec(),
        nrows,
        &cards,
    )
    .map_err(werr("write", tmp))?;
    let row_len = w.row_len();

    let mut rng = Rng::for_stream(opts.seed, &[k as u64, 0]);
    let fg = FileGen::new(sky, grid, &mut rng);
    let mut buf = vec![0u8; row_len * CHUNK_ROWS];
    let mut row = 0u64;
    while row < opts.rows_per_file {
        let n = (opts.rows_per_file - row).min(CHUNK_ROWS as u64) as usize;
        for (i, slot) in buf.chunks_exact_mut(row_len).take(n).enumerate() {
            let l = fg.draw(&mut rng);
            let mut enc = Enc::new(slot, schema);
            let written = encode_row(&l, (row + i as u64) as i32, &fg, &mut rng, &mut enc);
            debug_assert_eq!(written, row_len);
        }
        w.write_rows(&buf[..n * row_len])
            .map_err(werr("write", tmp))?;
        row += n as u64;
    }

    let mut planted = Vec::with_capacity(lenses.len());
    let mut prng = Rng::for_stream(opts.seed, &[k as u64, 1]);
    for (j, lens) in lenses.iter().enumerate() {
        let row_index = opts.rows_per_file + j as u64;
        // Uniform in a disk of radius 0.5 arcsec; the RA offset is divided by cos(dec).
        let r = MAX_PLANT_OFFSET_ARCSEC * 0.999 * prng.f64().sqrt() / 3600.0;
        let theta = prng.range(0.0, std::f64::consts::TAU);
        let dec = lens.dec + r * theta.cos();
        let ra = (lens.ra + r * theta.sin() / lens.dec.to_radians().cos()).rem_euclid(360.0);
        let l = fg.draw_lens_host(&mut prng, ra, dec);
        let slot = &mut buf[..row_len];
        let mut enc = Enc::new(slot, schema);
        encode_row(&l, row_index as i32, &fg, &mut prng, &mut enc);
        w.write_rows(&buf[..row_len]).map_err(werr("write", tmp))?;
        planted.push(PlantedRow {
            name: lens.name.clone(),
            catalog_line: lens.line,
            sweep_file: name.to_string(),
            row_index,
            ra,
            dec,
            lens_ra: lens.ra,
            lens_dec: lens.dec,
            offset_arcsec: angular_sep_arcsec(ra, dec, lens.ra, lens.dec).unwrap_or(f64::NAN),
        });
    }
    let bw = w.finish().map_err(werr("write", tmp))?;
    let file = bw.into_inner().map_err(|e| SynthError::Io {
        action: "write",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    drop(file);
    Ok(planted)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `planted.csv`: one line per planted row.
fn write_sidecar(path: &Path, rows: &[PlantedRow]) -> Result<(), SynthError> {
    let err = SynthError::io("write", path);
    let mut out = String::from(
        "name,sweep_file,row_index,ra,dec,lens_ra,lens_dec,offset_arcsec,catalog_line\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{:.4},{}\n",
            csv_field(&r.name),
            csv_field(&r.sweep_file),
            r.row_index,
            r.ra,
            r.dec,
            r.lens_ra,
            r.lens_dec,
            r.offset_arcsec,
            r.catalog_line
        ));
    }
    let mut f = File::create(path).map_err(SynthError::io("create", path))?;
    f.write_all(out.as_bytes()).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_encoder_agree() {
        let schema = dr10_columns();
        let row_len: usize = schema.iter().map(|c| c.width().unwrap()).sum();
        let grid = BrickGrid::new();
        let mut rng = Rng::new(5);
        let sky = SkyBox {
            ra_lo: 150,
            ra_hi: 155,
            dec_lo: -10,
            dec_hi: -5,
        };
        let fg = FileGen::new(sky, &grid, &mut rng);
        let mut buf = vec![0u8; row_len];
        for i in 0..2000 {
            let l = if i % 10 == 0 {
                fg.draw_lens_host(&mut rng, 152.0, -7.0)
            } else {
                fg.draw(&mut rng)
            };
            let mut enc = Enc::new(&mut buf, &schema);
            assert_eq!(encode_row(&l, i, &fg, &mut rng, &mut enc), row_len);
        }
    }

    #[test]
    fn lens_boxes() {
        let l = |ra, dec| Lens {
            name: String::new(),
            ra,
            dec,
            line: 0,
        };
        assert_eq!(
            lens_box(&l(152.3, -7.0)),
            Some(SkyBox {
                ra_lo: 150,
                ra_hi: 155,
                dec_lo: -10,
                dec_hi: -5
            })
        );
        assert_eq!(lens_box(&l(0.0, -5.0)).unwrap().dec_lo, -5);
        assert_eq!(lens_box(&l(359.99, 34.9)).unwrap().ra_hi, 360);
    }
}
