//! Planted bad cutouts fail exactly the named check; clean ones pass.

use lenspipe_validate::checks::{
    check_cutout, mark_duplicates, Check, Thresholds, DUPLICATE_IMAGE,
};
use lenspipe_validate::rng::SplitMix64;
use lenspipe_validate::stats::{StatsParams, EXPECTED_SHAPE};
use lenspipe_validate::synth::SynthCutout;

const N: usize = 101 * 101;

fn clean(seed: u64) -> Vec<f32> {
    SynthCutout::default().generate(&mut SplitMix64::new(seed))
}

fn run(img: &[f32], shape: &[usize], status: &str) -> Vec<Check> {
    check_cutout(
        img,
        shape,
        status,
        &StatsParams::default(),
        &Thresholds::default(),
    )
    .1
}

#[test]
fn clean_cutouts_pass_everything() {
    for seed in 0..200 {
        assert_eq!(
            run(&clean(seed), &EXPECTED_SHAPE, "ok"),
            vec![],
            "seed {seed}"
        );
    }
}

#[test]
fn wrong_shape() {
    let img = SynthCutout {
        size: 100,
        position: (49.5, 49.5),
        ..Default::default()
    }
    .generate(&mut SplitMix64::new(1));
    assert_eq!(run(&img, &[3, 100, 100], "ok"), vec![Check::WrongShape]);
    // Right declared shape, wrong pixel count.
    assert_eq!(run(&img, &EXPECTED_SHAPE, "ok"), vec![Check::WrongShape]);
}

#[test]
fn nan_pixels() {
    let mut img = clean(2);
    img[N + 3 * 101 + 7] = f32::NAN;
    img[2 * N + 10] = f32::INFINITY;
    assert_eq!(run(&img, &EXPECTED_SHAPE, "ok"), vec![Check::NanPixels]);
}

#[test]
fn no_coverage_whole_band_and_partial() {
    let mut img = clean(3);
    img[..N].fill(0.0);
    assert_eq!(run(&img, &EXPECTED_SHAPE, "ok"), vec![Check::NoCoverage]);
    // A 30-column chip gap in z: ~30% zero pixels > 20%.
    let mut img = clean(4);
    for y in 0..101 {
        img[2 * N + y * 101..2 * N + y * 101 + 30].fill(0.0);
    }
    assert_eq!(run(&img, &EXPECTED_SHAPE, "ok"), vec![Check::NoCoverage]);
}

#[test]
fn duplicate_image() {
    let a = clean(5);
    let b = clean(6);
    let p = StatsParams::default();
    let th = Thresholds::default();
    let rows = [&a, &b, &a];
    let hashes: Vec<u64> = rows
        .iter()
        .map(|img| {
            let (s, failed) = check_cutout(img, &EXPECTED_SHAPE, "ok", &p, &th);
            assert!(failed.is_empty());
            s.unwrap().content_hash
        })
        .collect();
    assert_eq!(mark_duplicates(&hashes), vec![false, false, true]);
    assert_eq!(Check::DuplicateImage.as_str(), DUPLICATE_IMAGE);
    assert_eq!(DUPLICATE_IMAGE, "duplicate_image");
}

#[test]
fn not_ok_status() {
    for status in ["no_data", "", "OK"] {
        assert_eq!(
            run(&clean(7), &EXPECTED_SHAPE, status),
            vec![Check::NotOkStatus]
        );
    }
}

#[test]
fn saturated_or_bright() {
    let img = SynthCutout {
        amplitude: 400.0,
        ..Default::default()
    }
    .generate(&mut SplitMix64::new(8));
    assert_eq!(
        run(&img, &EXPECTED_SHAPE, "ok"),
        vec![Check::SaturatedOrBright]
    );
}

#[test]
fn off_centre() {
    let img = SynthCutout {
        position: (50.0, 66.0),
        ..Default::default()
    }
    .generate(&mut SplitMix64::new(9));
    assert_eq!(run(&img, &EXPECTED_SHAPE, "ok"), vec![Check::OffCentre]);
}

#[test]
fn names_are_the_contract() {
    let names: Vec<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "wrong_shape",
            "nan_pixels",
            "no_coverage",
            "duplicate_image",
            "not_ok_status",
            "saturated_or_bright",
            "off_centre",
            "low_invvar",
            "masked_centre"
        ]
    );
    let th: Thresholds = serde_json::from_str(r#"{"max_peak": 50.0}"#).unwrap();
    assert_eq!(th.max_peak, 50.0);
    assert_eq!(
        th.max_zero_fraction,
        Thresholds::default().max_zero_fraction
    );
}
