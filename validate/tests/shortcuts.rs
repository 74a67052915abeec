//! Planted shortcuts are flagged; a clean set flags nothing.

use lenspipe_validate::auc::AucParams;
use lenspipe_validate::multivariate::{cross_validated_logistic, LogisticParams};
use lenspipe_validate::rng::SplitMix64;
use lenspipe_validate::shortcuts::{
    feature_shortcuts, FeatureKind, ShortcutsReport, SplitRow, SplitsSummary,
};
use lenspipe_validate::stats::{StatsComputer, StatsParams, IMAGE_FEATURES};
use lenspipe_validate::synth::SynthCutout;

struct Sample {
    labels: Vec<bool>,
    image: Vec<Vec<f64>>,
    catalog: Vec<(&'static str, Vec<f64>)>,
    groups: Vec<u64>,
}

/// n positives then n negatives; `pos_noise` scales positives' sky noise,
/// `pos_depth_shift` shifts positives' psfdepth_r (in units of its spread).
fn sample(n: usize, pos_noise: f32, pos_depth_shift: f64, seed: u64) -> Sample {
    let mut rng = SplitMix64::new(seed);
    let mut sc = StatsComputer::new(101, 101, StatsParams::default());
    let mut image = vec![Vec::new(); IMAGE_FEATURES.len()];
    let mut labels = Vec::new();
    let mut cat: Vec<(&'static str, Vec<f64>)> = vec![
        ("psfdepth_r", vec![]),
        ("psfsize_r", vec![]),
        ("ebv", vec![]),
    ];
    let mut groups = Vec::new();
    for i in 0..2 * n {
        let pos = i < n;
        let gen = SynthCutout {
            noise_scale: if pos { pos_noise } else { 1.0 },
            ..Default::default()
        };
        let st = sc.compute(&gen.generate(&mut rng)).unwrap();
        for (k, (_, v)) in st.features().into_iter().enumerate() {
            image[k].push(v);
        }
        let depth = 24.0 + 0.4 * rng.normal() + if pos { 0.4 * pos_depth_shift } else { 0.0 };
        cat[0].1.push(if i % 97 == 0 { f64::NAN } else { depth });
        cat[1].1.push(1.3 + 0.2 * rng.normal());
        cat[2].1.push(0.03 + 0.01 * rng.next_f64());
        labels.push(pos);
        groups.push((i % 5) as u64);
    }
    Sample {
        labels,
        image,
        catalog: cat,
        groups,
    }
}

fn report(s: &Sample) -> ShortcutsReport {
    let mut cols: Vec<(&str, FeatureKind, &[f64])> = s
        .catalog
        .iter()
        .map(|(n, v)| (*n, FeatureKind::Catalog, v.as_slice()))
        .collect();
    for (k, name) in IMAGE_FEATURES.iter().enumerate() {
        cols.push((name, FeatureKind::Image, &s.image[k]));
    }
    let params = AucParams {
        n_boot: 200,
        ..Default::default()
    };
    let (features, failed) = feature_shortcuts(&cols, &s.labels, &params);
    assert!(failed.is_empty());
    let names: Vec<&str> = s.catalog.iter().map(|c| c.0).collect();
    let columns: Vec<&[f64]> = s.catalog.iter().map(|c| c.1.as_slice()).collect();
    let mv = cross_validated_logistic(
        &names,
        &columns,
        &s.labels,
        &s.groups,
        &LogisticParams::default(),
    )
    .unwrap();
    let splits = SplitsSummary::from_rows(s.labels.iter().zip(&s.groups).enumerate().map(
        |(i, (l, g))| SplitRow {
            split: if *g == 0 { "test" } else { "train" },
            label: *l,
            healpix: i as u64,
            brick: "0001p000",
        },
    ));
    ShortcutsReport {
        features,
        multivariate: Some(mv),
        splits,
    }
}

#[test]
fn clean_set_of_2000_flags_nothing() {
    let s = sample(1000, 1.0, 0.0, 42);
    let r = report(&s);
    assert_eq!(r.features.len(), 3 + IMAGE_FEATURES.len());
    assert!(r.flagged().is_empty(), "flagged: {:?}", r.flagged());
    let mv = r.multivariate.as_ref().unwrap();
    assert!((mv.oof_auc.unwrap() - 0.5).abs() < 0.06, "{:?}", mv.oof_auc);
    // Every row is in brick 0001p000, which is in both splits.
    assert!(r.splits.brick_shared && !r.splits.healpix_shared);
    let json: serde_json::Value = serde_json::from_str(&r.to_json_pretty().unwrap()).unwrap();
    assert_eq!(json["features"].as_array().unwrap().len(), 19);
}

#[test]
fn planted_catalog_and_image_shortcuts_are_flagged() {
    let s = sample(600, 1.3, 1.0, 7);
    let r = report(&s);
    let flagged = r.flagged();
    for name in ["psfdepth_r", "bg_sigma_g", "bg_sigma_r", "bg_sigma_z"] {
        assert!(flagged.contains(&name), "{name} not in {flagged:?}");
    }
    let depth = r.features.iter().find(|f| f.name == "psfdepth_r").unwrap();
    assert!(depth.auc > 0.6 && depth.median_pos > depth.median_neg && depth.n_nan_dropped > 0);
    for name in ["psfsize_r", "ebv", "centroid_offset_px"] {
        assert!(!flagged.contains(&name), "{name} wrongly flagged");
    }
    let mv = r.multivariate.as_ref().unwrap();
    assert_eq!(mv.coefficients[0].name, "psfdepth_r");
    assert!(mv.oof_auc.unwrap() > 0.6);
}
