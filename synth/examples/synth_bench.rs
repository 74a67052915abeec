//! Generates synthetic sweeps and prints the report with throughput.
//!
//! `cargo run --release -p lenspipe-synth --example synth_bench -- OUT_DIR FILES ROWS_PER_FILE [SEED] [THREADS] [PLANT.csv]`

use lenspipe_synth::{run, SynthOptions};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!(
            "usage: {} OUT_DIR FILES ROWS_PER_FILE [SEED] [THREADS] [PLANT.csv]",
            a[0]
        );
        std::process::exit(2);
    }
    let mut o = SynthOptions::new(&a[1]);
    o.files = a[2].parse().expect("FILES");
    o.rows_per_file = a[3].parse().expect("ROWS_PER_FILE");
    if let Some(s) = a.get(4) {
        o.seed = s.parse().expect("SEED");
    }
    if let Some(t) = a.get(5) {
        o.threads = t.parse().expect("THREADS");
    }
    o.plant = a.get(6).map(Into::into);
    match run(&o) {
        Ok(r) => println!("{r}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
