//! Progress of a long stage on the terminal: partitions (or targets) done
//! out of the total, rows so far, rate and time left. Nothing is drawn when
//! stderr is not a terminal (logs, CI, a cluster's job runner).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over a stage's partitions; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    rows: Arc<AtomicU64>,
}

impl Progress {
    /// A bar named `label` over `partitions` partitions.
    pub fn partitions(label: &str, partitions: u64) -> Self {
        Self::over(label, partitions, "partitions")
    }

    /// A bar named `label` over `total` things called `unit`, advanced by
    /// [`Progress::advance`] (the cutout stage counts targets).
    pub fn over(label: &str, total: u64, unit: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template(&format!(
            "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{msg}} ({{elapsed}}, about {{eta}} left)"
        ))
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            rows: Arc::new(AtomicU64::new(0)),
        }
    }

    /// One partition finished, having read `rows` rows.
    pub fn partition_done(&self, rows: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let seconds = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{total} rows, {:.0} rows/s",
            total as f64 / seconds
        ));
        self.bar.inc(1);
    }

    /// `done` more of the total finished, with a note on the rate.
    pub fn advance(&self, done: u64, note: &str) {
        self.bar.inc(done);
        let seconds = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{note}, {:.1} /s",
            self.bar.position() as f64 / seconds
        ));
    }

    /// Removes the bar (the stage prints its own summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
