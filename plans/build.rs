// Records the commit the binary was built from, for run.json and the output rows.
fn main() {
    let commit = std::env::var("LENSPIPE_GIT_COMMIT").ok().or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=LENSPIPE_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    // Only paths that exist: a missing one would rerun this on every build
    // (a source tarball has no .git).
    for path in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LENSPIPE_GIT_COMMIT");
}
