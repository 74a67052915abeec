//! Arbitrary bytes through header scanning, row decoding and the reader:
//! nothing may panic, and every error must name its source.
//!
//! Seed the corpus with real files, e.g.
//! `mkdir -p corpus/parse_and_decode && cp ../../data/real-sweeps/*.fits corpus/parse_and_decode/`.
#![no_main]

use std::io::Cursor;
use std::sync::Arc;

use lenspipe_fits::{
    scan_headers, scan_headers_sized, FitsError, HeaderScan, ReaderBuilder, RowDecoder,
};
use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "fuzz.fits";

fn check(e: FitsError) {
    assert!(e.to_string().starts_with("fuzz.fits: HDU "), "{e}");
}

fuzz_target!(|data: &[u8]| {
    match scan_headers(data, SOURCE) {
        Ok(HeaderScan::Complete(layout)) => {
            let start = usize::try_from(layout.data_offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let rows = &data[start..];
            let whole = rows.len() / layout.row_len * layout.row_len;
            let whole = whole.min(layout.data_len().try_into().unwrap_or(usize::MAX));
            match RowDecoder::new(Arc::new(layout), None) {
                Ok(decoder) => {
                    if let Err(e) = decoder.decode(&rows[..whole], 0) {
                        check(e);
                    }
                }
                Err(e) => check(e),
            }
        }
        Ok(HeaderScan::NeedMore { at_least }) => assert!(at_least > data.len()),
        Err(e) => check(e),
    }
    if let Err(e) = scan_headers_sized(data, data.len() as u64, SOURCE) {
        check(e);
    }
    match ReaderBuilder::new()
        .with_batch_size(7)
        .build(Cursor::new(data), SOURCE)
    {
        Ok(reader) => reader.filter_map(Result::err).for_each(check),
        Err(e) => check(e),
    }
});
