//! The report writes decodable, non-blank PNGs and an HTML page that
//! references each of them.

use lenspipe_validate::report::*;
use lenspipe_validate::rng::SplitMix64;
use lenspipe_validate::synth::SynthCutout;

fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn variance(px: &[u8]) -> f64 {
    let n = px.len() as f64;
    let m = px.iter().map(|v| *v as f64).sum::<f64>() / n;
    px.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / n
}

#[test]
fn writes_report_with_every_png() {
    let mut rng = SplitMix64::new(5);
    let tiles = |n: usize, rng: &mut SplitMix64, label: &str| -> Vec<GalleryTile> {
        (0..n)
            .map(|i| GalleryTile {
                label: format!("{label} #{i} ra=150.1 dec=2.2"),
                image: SynthCutout::default().generate(rng),
                height: 101,
                width: 101,
            })
            .collect()
    };
    let gallery = vec![
        GalleryGroup {
            title: "Positives".into(),
            tiles: tiles(10, &mut rng, "pos"),
        },
        GalleryGroup {
            title: "N1 random".into(),
            tiles: tiles(4, &mut rng, "n1"),
        },
        GalleryGroup {
            title: "N2: spirals & rings".into(),
            tiles: tiles(3, &mut rng, "n2"),
        },
    ];
    let pos: Vec<f64> = (0..500).map(|_| 1.0 + rng.normal()).collect();
    let neg: Vec<f64> = (0..800).map(|_| rng.normal()).chain([f64::NAN]).collect();
    let input = ReportInput {
        title: "lenspipe validation <test>".into(),
        summary: vec![
            ("positives".into(), "500".into()),
            ("negatives".into(), "800".into()),
        ],
        gallery,
        histograms: vec![
            FeatureHist {
                name: "psfdepth_r".into(),
                pos: pos.clone(),
                neg: neg.clone(),
            },
            FeatureHist {
                name: "constant".into(),
                pos: vec![1.0; 5],
                neg: vec![1.0; 5],
            },
        ],
        aucs: vec![
            FeatureAuc {
                name: "psfdepth_r".into(),
                kind: "catalog".into(),
                auc: 0.76,
                ci_low: 0.73,
                ci_high: 0.79,
                flagged: true,
            },
            FeatureAuc {
                name: "bg_sigma_r".into(),
                kind: "image".into(),
                auc: 0.51,
                ci_low: 0.48,
                ci_high: 0.54,
                flagged: false,
            },
        ],
        funnels: vec![Funnel {
            title: "Negatives".into(),
            stages: vec![
                FunnelStage {
                    stage: "sweeps".into(),
                    kept: 100_000,
                    rejected: vec![("maskbits".into(), 20_000), ("type".into(), 5_000)],
                },
                FunnelStage {
                    stage: "cutouts".into(),
                    kept: 90_000,
                    rejected: vec![("no_coverage".into(), 10_000)],
                },
            ],
        }],
        balance: vec![lenspipe_validate::balance::BalanceRow {
            name: "mag_z".into(),
            auc_before: Some(0.26),
            auc_after: Some(0.51),
            smd_before: Some(-1.1),
            smd_after: Some(0.02),
        }],
        options: ReportOptions::default(),
    };
    // LENSPIPE_VALIDATE_REPORT_DIR keeps the report for a look.
    let keep = std::env::var_os("LENSPIPE_VALIDATE_REPORT_DIR");
    let dir = keep.clone().map(Into::into).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lenspipe-validate-report-{}", std::process::id()))
    });
    let files = write_report(&input, &dir).unwrap();
    assert_eq!(files.pngs.len(), 1 + 2 + 3 + 1 + 1);
    assert!(html_has_balance(&files.html));
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("&lt;test&gt;"));
    for p in &files.pngs {
        assert_eq!(p.parent().unwrap(), dir.as_path());
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            html.contains(&format!("src=\"{name}\"")),
            "{name} not referenced"
        );
        let (w, h, px) = decode(p);
        assert!(w > 50 && h > 50);
        assert!(variance(&px) > 10.0, "{name} looks blank");
    }
    // Every PNG in the directory is accounted for.
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(on_disk, files.pngs.len());
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The matching section lists each matched column with its AUCs.
fn html_has_balance(path: &std::path::Path) -> bool {
    let html = std::fs::read_to_string(path).unwrap();
    html.contains("Matching balance") && html.contains("<td>mag_z</td><td>0.260</td><td>0.510</td>")
}
