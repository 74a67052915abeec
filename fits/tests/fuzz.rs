//! Bounded, deterministic fuzzing in the normal test suite: mutated valid
//! files (byte flips, truncations, header value changes) go through
//! `scan_headers`, `RowDecoder` and `Reader`. Nothing may panic, and every
//! error must name the source. (`fuzz/` has the open-ended cargo-fuzz target.)

mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use lenspipe_fits::{
    scan_headers, scan_headers_sized, ErrorKind, FitsError, HeaderScan, ReaderBuilder, RowDecoder,
};

const ITERATIONS: usize = 20_000;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Card values likely to hit edge cases in the header checks.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "8",
    "16",
    "-32",
    "-64",
    "999",
    "1000",
    "383",
    "380",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "1000000000000000000",
    "18446744073709551615",
    "'BINTABLE'",
    "'IMAGE   '",
    "'TABLE   '",
    "'1PE(5)  '",
    "'5E      '",
    "'0A'",
    "'3000000000E'",
    "'2000000000A'",
    "'11X'",
    "'8A      '",
    "'1QD(2)'",
    "'C'",
    "'K'",
    "T",
    "F",
    "1.5",
    "1.0D300",
    "-128",
    "32768",
    "'",
    "''",
    "'open",
    "(1, 2)",
    "",
    "nan",
    "-0",
    "+5",
];

/// Offsets of the header cards that have a value (`= ` in bytes 9–10).
fn value_cards(file: &[u8]) -> Vec<usize> {
    let header_end = file
        .chunks_exact(80)
        .enumerate()
        .filter(|(_, c)| c.starts_with(b"END     "))
        .map(|(i, _)| i * 80)
        .nth(1)
        .unwrap_or(file.len());
    (0..header_end / 80)
        .map(|i| i * 80)
        .filter(|&at| file.get(at + 8..at + 10) == Some(b"= "))
        .collect()
}

/// One random mutation of `seed`, described for failure messages.
fn mutate(seed: &[u8], cards: &[usize], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut bytes = seed.to_vec();
    let mut what = Vec::new();
    for _ in 0..=rng.below(3) {
        match rng.below(5) {
            0 | 1 => {
                let at = rng.below(bytes.len());
                let bit = 1u8 << rng.below(8);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= bit;
                }
                what.push(format!("flip byte {at} with {bit:#04x}"));
            }
            2 => {
                let len = rng.below(bytes.len() + 1);
                bytes.truncate(len);
                what.push(format!("truncate to {len}"));
            }
            _ => {
                let Some(&at) = cards.get(rng.below(cards.len())) else {
                    continue;
                };
                let value = match rng.below(VALUES.len() + 1) {
                    i if i < VALUES.len() => VALUES[i].to_owned(),
                    _ => (rng.next() as i64 >> rng.below(64)).to_string(),
                };
                let field = format!("{value:>20}");
                let field = format!("{field:<70}");
                if let Some(dst) = bytes.get_mut(at + 10..at + 80) {
                    dst.copy_from_slice(&field.as_bytes()[..70]);
                }
                what.push(format!("card at {at} = {value}"));
            }
        }
    }
    (bytes, what.join(", "))
}

/// Runs every entry point on `bytes`; returns the errors they gave.
fn exercise(bytes: &[u8], source: &str) -> Vec<FitsError> {
    let mut errors = Vec::new();
    match scan_headers(bytes, source) {
        Ok(HeaderScan::Complete(layout)) => {
            let layout = Arc::new(layout);
            let start = usize::try_from(layout.data_offset).unwrap_or(usize::MAX);
            let have = bytes.len().saturating_sub(start) / layout.row_len;
            let n = have
                .min(usize::try_from(layout.nrows).unwrap_or(usize::MAX))
                .min(1000);
            let rows = &bytes[start.min(bytes.len())..][..n * layout.row_len];
            let all = (0..layout.columns.len()).collect::<Vec<_>>();
            let reversed = all.iter().rev().copied().collect();
            for projection in [None, Some(reversed)] {
                match RowDecoder::new(Arc::clone(&layout), projection) {
                    Ok(decoder) => {
                        if let Err(e) = decoder.decode(rows, 0) {
                            errors.push(e);
                        }
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        Ok(HeaderScan::NeedMore { at_least }) => assert!(at_least > bytes.len()),
        Err(e) => errors.push(e),
    }
    if let Err(e) = scan_headers_sized(bytes, bytes.len() as u64, source) {
        errors.push(e);
    }
    match ReaderBuilder::new()
        .with_batch_size(4)
        .build(Cursor::new(bytes), source)
    {
        Ok(reader) => errors.extend(reader.filter_map(Result::err)),
        Err(e) => errors.push(e),
    }
    errors
}

#[test]
fn mutated_files_never_panic_and_errors_name_the_source() {
    let mut seeds: Vec<(String, Vec<u8>)> = common::REAL_FILES
        .iter()
        .map(|name| (name.to_string(), common::real_file(name)))
        .collect();
    seeds.push(("synthetic.fits".into(), common::synthetic_file()));
    let seeds: Vec<_> = seeds
        .into_iter()
        .map(|(name, bytes)| {
            assert!(
                exercise(&bytes, &name).is_empty(),
                "{name} must read cleanly"
            );
            let cards = value_cards(&bytes);
            (name, bytes, cards)
        })
        .collect();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = 0;
    let mut clean = 0;
    let mut kinds: HashMap<ErrorKind, usize> = HashMap::new();
    for i in 0..ITERATIONS {
        let (name, seed, cards) = &seeds[i % seeds.len()];
        let (bytes, what) = mutate(seed, cards, &mut rng);
        let source = format!("fuzz-{i}-{name}");
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&bytes, &source)));
        let errors = outcome.unwrap_or_else(|_| panic!("iteration {i} ({name}: {what}) panicked"));
        clean += usize::from(errors.is_empty());
        for e in errors {
            *kinds.entry(e.kind).or_default() += 1;
            let text = e.to_string();
            if !text.starts_with(&format!("{source}: HDU {}, byte {}: ", e.hdu, e.offset)) {
                failures += 1;
                eprintln!("iteration {i} ({what}): error does not name its source: {text}");
            }
        }
    }
    assert_eq!(failures, 0);
    // The mutations must reach the decoder and every kind of check.
    eprintln!("{ITERATIONS} mutations: {clean} read without error; errors by kind: {kinds:?}");
    assert!(clean > ITERATIONS / 20, "{clean} clean reads");
    for kind in [
        ErrorKind::Header,
        ErrorKind::Truncated,
        ErrorKind::Unsupported,
        ErrorKind::Data,
    ] {
        assert!(kinds.contains_key(&kind), "no {kind:?} errors: {kinds:?}");
    }
}
