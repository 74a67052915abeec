//! Fidelity against astropy: each file is read with [`ReaderBuilder`], written
//! as Arrow IPC, and compared column by column by `tests/compare_astropy.py`.
//!
//! Needs `python3` with `astropy`, `pyarrow` and `numpy`; without them the
//! tests fail (they are not skipped) and say what to install.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use arrow::ipc::writer::FileWriter;
use lenspipe_fits::ReaderBuilder;

const INSTALL_HINT: &str = "pip install astropy pyarrow numpy";

/// Reads `fits` (all columns) in batches of `batch_size` rows and writes
/// them to an Arrow IPC file at `ipc`.
fn fits_to_ipc(fits: &[u8], source: &str, batch_size: usize, ipc: &Path) {
    let reader = ReaderBuilder::new()
        .with_batch_size(batch_size)
        .build(Cursor::new(fits), source)
        .unwrap_or_else(|e| panic!("reading {source}: {e}"));
    let schema = reader.schema();
    let out = std::fs::File::create(ipc).expect("create IPC file");
    let mut writer = FileWriter::try_new(out, &schema).expect("IPC writer");
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("reading {source}: {e}"));
        writer.write(&batch).expect("write IPC batch");
    }
    writer.finish().expect("finish IPC file");
}

/// Runs the astropy comparison on a FITS file on disk, read in batches of
/// `batch_size` rows.
fn compare_with_astropy(fits_path: &Path, batch_size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ipc = dir.path().join("table.arrow");
    let name = fits_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::read(fits_path).expect("read FITS file");
    fits_to_ipc(&bytes, &name, batch_size, &ipc);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compare_astropy.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(fits_path)
        .arg(&ipc)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); it needs: {INSTALL_HINT}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => print!("{stdout}"),
        Some(3) => panic!("python3 lacks modules the comparison needs; {INSTALL_HINT}\n{stderr}"),
        _ => panic!(
            "{name} differs from astropy ({}):\n{stdout}{stderr}",
            out.status
        ),
    }
}

// Small batches: batch joins are checked too.
#[test]
fn real_sweep_matches_astropy() {
    compare_with_astropy(&common::real_sweeps_dir().join(common::REAL_FILES[0]), 4);
}

#[test]
fn real_tractor_matches_astropy() {
    compare_with_astropy(&common::real_sweeps_dir().join(common::REAL_FILES[1]), 4);
}

#[test]
fn synthetic_conventions_match_astropy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synthetic.fits");
    std::fs::write(&path, common::synthetic_file()).expect("write synthetic file");
    compare_with_astropy(&path, 2);
}

/// About 1 MB of rows in one batch, which the decoder walks in many blocks.
#[test]
fn large_synthetic_batch_matches_astropy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synthetic-large.fits");
    let rows: Vec<Vec<u8>> = common::synthetic_rows()
        .into_iter()
        .cycle()
        .take(7001)
        .collect();
    let bytes = common::table_file(&common::synthetic_columns(), &rows);
    std::fs::write(&path, bytes).expect("write synthetic file");
    compare_with_astropy(&path, 65536);
}
