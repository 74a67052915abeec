//! Our AUC against sklearn.metrics.roc_auc_score on tied data.

use lenspipe_validate::auc::auc;
use lenspipe_validate::rng::SplitMix64;
use std::process::Command;

#[test]
fn agrees_with_sklearn_on_ties() {
    let probe = Command::new("python3")
        .args(["-c", "import sklearn"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!("python3 with scikit-learn is required (pip install scikit-learn)"),
    }
    let dir = std::env::temp_dir().join(format!("lenspipe-validate-auc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = SplitMix64::new(2024);
    for case in 0..6 {
        let n = [10, 100, 1000, 5000, 20000, 3][case];
        let levels = [3, 10, 50, 5, 1000, 2][case];
        let (mut ys, mut xs, mut pos, mut neg) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let y = i % 3 == 0 || i == 1;
            // Heavily tied, mildly informative scores.
            let x = (rng.below(levels) + if y { rng.below(2) } else { 0 }) as f64 * 0.25;
            if y {
                pos.push(x)
            } else {
                neg.push(x)
            }
            ys.push(y as u8);
            xs.push(x);
        }
        let path = dir.join(format!("case{case}.txt"));
        let body: String = ys
            .iter()
            .zip(&xs)
            .map(|(y, x)| format!("{y} {x}\n"))
            .collect();
        std::fs::write(&path, body).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, numpy as np\nfrom sklearn.metrics import roc_auc_score\n\
                 d = np.loadtxt(sys.argv[1], ndmin=2)\nprint(repr(roc_auc_score(d[:, 0], d[:, 1])))",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let got = auc(&pos, &neg).unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "case {case}: {got} vs sklearn {want}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
