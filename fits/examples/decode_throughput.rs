//! Measures `RowDecoder::decode` throughput on a sweep-like table held in memory.
//!
//! `cargo run -p lenspipe-fits --example decode_throughput [ROWS [batch_rows]]`
//!
//! The table has 150 columns (mostly `E`, some `D`, `I`, `J`, `K`, `B`, `L`,
//! `5E`, `8A`; about 600 bytes a row) and pseudo-random contents. Batches
//! (default 65536 rows) are decoded with a 15-column numeric projection, then with all
//! columns; throughput counts the row bytes handed to the decoder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lenspipe_fits::{scan_headers, HeaderScan, RowDecoder};

fn card(key: &str, value: &str) -> String {
    format!("{:<80}", format!("{key:<8}= {value:>20}"))
}

/// Header bytes (cards, END, padding to 2880).
fn header(cards: &[String]) -> Vec<u8> {
    let mut out: Vec<u8> = cards.concat().into_bytes();
    out.extend(format!("{:<80}", "END").bytes());
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    out
}

fn tforms() -> Vec<&'static str> {
    let mut t = vec!["I", "J", "8A", "J", "4A", "D", "E", "D", "E", "5E"];
    while t.len() < 150 {
        t.extend(["E", "E", "E", "I", "E", "E", "B", "E", "K", "L"]);
    }
    t.truncate(150);
    t
}

fn width(tform: &str) -> usize {
    let (repeat, code) = tform.split_at(tform.len() - 1);
    let repeat: usize = repeat.parse().unwrap_or(1);
    repeat
        * match code {
            "L" | "B" | "A" => 1,
            "I" => 2,
            "J" | "E" => 4,
            _ => 8,
        }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nrows: usize = std::env::args().nth(1).map_or(Ok(262_144), |s| s.parse())?;
    let batch_rows: usize = std::env::args().nth(2).map_or(Ok(65536), |s| s.parse())?;
    let tforms = tforms();
    let row_len: usize = tforms.iter().map(|t| width(t)).sum();
    let mut cards = vec![
        card("XTENSION", "'BINTABLE'"),
        card("BITPIX", "8"),
        card("NAXIS", "2"),
        card("NAXIS1", &row_len.to_string()),
        card("NAXIS2", &nrows.to_string()),
        card("PCOUNT", "0"),
        card("GCOUNT", "1"),
        card("TFIELDS", &tforms.len().to_string()),
    ];
    for (i, t) in tforms.iter().enumerate() {
        cards.push(card(&format!("TTYPE{}", i + 1), &format!("'C{}'", i + 1)));
        cards.push(card(&format!("TFORM{}", i + 1), &format!("'{t}'")));
    }
    let mut file = header(&[card("SIMPLE", "T"), card("BITPIX", "8"), card("NAXIS", "0")]);
    file.extend(header(&cards));
    let HeaderScan::Complete(layout) = scan_headers(&file, "bench.fits")? else {
        return Err("incomplete header".into());
    };
    // Printable bytes keep strings valid and logicals mostly null; numbers are arbitrary.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..row_len * nrows)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b' ' + (state % 90) as u8
        })
        .collect();
    let layout = Arc::new(layout);

    // 15 scalar numeric columns spread over the row.
    let numeric: Vec<usize> = layout
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| "EDIJK".contains(c.tform.code) && c.tform.repeat == 1)
        .map(|(i, _)| i)
        .step_by(8)
        .take(15)
        .collect();
    println!(
        "{nrows} rows x {row_len} bytes ({} MB), {} columns",
        data.len() / 1_000_000,
        layout.columns.len()
    );
    for (label, projection) in [
        ("15 numeric columns", Some(numeric)),
        ("all 150 columns", None),
    ] {
        let decoder = RowDecoder::new(Arc::clone(&layout), projection)?;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for (i, rows) in data.chunks(batch_rows * row_len).enumerate() {
                let batch = decoder.decode(rows, (i * batch_rows) as u64)?;
                std::hint::black_box(batch);
            }
            best = best.min(start.elapsed());
        }
        let gbps = data.len() as f64 / best.as_secs_f64() / 1e9;
        println!("{label}: {gbps:.2} GB/s of row bytes (best of 5: {best:.2?})");
    }
    Ok(())
}
