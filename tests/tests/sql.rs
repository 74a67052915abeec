//! `lenspipe sql` over real Legacy Surveys files and synthetic DR10 sweeps:
//! schema unification across data releases, clear errors for missing columns.

use lenspipe_tests::{lenspipe, run_ok, shared_data, synth};

#[test]
fn dr8_and_dr10_files_unify_and_a_missing_column_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mixed = tmp.path().join("mixed");
    synth(&mixed, 1, 1_000, 4, &[]);
    // A real DR8-era sweep beside it: MASKBITS is int16 there, int32 in DR10.
    let real = shared_data().join("real-sweeps/sweep-310m005-320p000.fits");
    std::fs::copy(&real, mixed.join("sweep-310m005-320p000.fits")).unwrap();

    let out = run_ok(
        lenspipe()
            .args([
                "sql",
                "SELECT arrow_typeof(maskbits) AS t, count(*) AS n FROM sweeps GROUP BY 1",
            ])
            .arg("--set")
            .arg(format!("inputs.sweeps={}/", mixed.display())),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Int32") && text.contains("1006"), "{text}");

    // DR8 has no SHAPE_R: the error names the file and the column.
    let bad = lenspipe()
        .args(["sql", "SELECT max(shape_r) FROM sweeps"])
        .arg("--set")
        .arg(format!("inputs.sweeps={}/", mixed.display()))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("sweep-310m005-320p000.fits") && err.contains("'shape_r'"),
        "{err}"
    );
}

#[test]
fn sql_writes_parquet_and_reads_tractor_catalogs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let real = shared_data().join("real-sweeps");
    let out = tmp.path().join("out");
    run_ok(
        lenspipe()
            .args([
                "sql",
                "SELECT sweep_file, row_index, type, dchisq FROM sweeps WHERE type <> 'PSF'",
                "--out",
            ])
            .arg(&out)
            .arg("--set")
            .arg(format!("inputs.sweeps={}/tractor-*.fits", real.display())),
    );
    let manifest = lenspipe_tests::read_json(&out.join("_SUCCESS"));
    let parts = manifest["files"].as_array().unwrap();
    assert!(!parts.is_empty());
    for part in parts {
        assert!(out.join(part["path"].as_str().unwrap()).is_file(), "{part}");
    }
    let check = run_ok(
        lenspipe_tests::python()
            .arg("tests/py/parquet_rows.py")
            .arg(&out)
            .arg("type"),
    );
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let types = v["type"].as_array().unwrap();
    assert!(!types.is_empty());
    // DR8 writes TYPE as 4A ("PSF "): the reader trims the padding.
    assert!(
        types
            .iter()
            .all(|t| t.as_str().is_some_and(|s| s != "PSF" && !s.ends_with(' '))),
        "{types:?}"
    );
    assert!(v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k[0].as_str().unwrap().starts_with("tractor-")));
}
