//! Sweep files that cannot be read: what a run does with them, and how the
//! error naming one travels back to the client as text (through a cluster,
//! an executor's error reaches the client only as its message).

use std::fmt;

use datafusion::error::DataFusionError;
use serde::{Deserialize, Serialize};

/// What a run does with a sweep file it cannot read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadFile {
    /// Stop the run with an error naming the file.
    #[default]
    Fail,
    /// Leave the file out, record it, and go on with the others.
    Skip,
}

/// A file left out of a run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file's URL.
    pub file: String,
    pub error: String,
}

const MARK: &str = "sweep file ";
const END: &str = " cannot be read: ";

/// The error for the file at `url`, in the one form [`find_bad_file`] finds
/// again in any error text that quotes it.
pub fn bad_file_error(url: &str, cause: impl fmt::Display) -> DataFusionError {
    DataFusionError::External(bad_file_message(url, cause).into())
}

/// The text of [`bad_file_error`]. The cause is one line, and its own copy
/// of the URL is dropped.
pub fn bad_file_message(url: &str, cause: impl fmt::Display) -> String {
    let cause = cause.to_string();
    let cause = cause.replace('\n', " ");
    let cause = cause
        .strip_prefix(url)
        .map(|c| c.trim_start_matches(':').trim_start())
        .unwrap_or(&cause);
    let cause = cause.strip_prefix("External error: ").unwrap_or(cause);
    format!("{MARK}{url}{END}{cause}")
}

/// The cause alone of an error about the file at `url`.
pub(crate) fn cause_of(url: &str, e: &DataFusionError) -> String {
    let text = e.to_string();
    match find_bad_file(&text) {
        Some(found) => found.error,
        None => {
            let message = bad_file_message(url, text);
            message[MARK.len() + url.len() + END.len()..].to_string()
        }
    }
}

/// The file URL and cause of the first bad-file error quoted in `text`.
pub fn find_bad_file(text: &str) -> Option<SkippedFile> {
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        rest = &rest[at + MARK.len()..];
        let Some(end) = rest.find(END) else { continue };
        let url = &rest[..end];
        // Printed URLs are percent-encoded: no spaces.
        if url.is_empty() || url.contains(char::is_whitespace) {
            continue;
        }
        let cause = rest[end + END.len()..].lines().next().unwrap_or_default();
        return Some(SkippedFile {
            file: url.to_string(),
            error: cause.trim().to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_found_again_in_wrapped_text() {
        let url = "s3://b/sweeps/a%20b.fits";
        let e = bad_file_error(url, format!("{url}: HDU 1, byte 0: truncated"));
        let wrapped = format!("Job failed: task 3: {e}\ncaused by: more");
        let found = find_bad_file(&wrapped).unwrap();
        assert_eq!(found.file, url);
        assert_eq!(found.error, "HDU 1, byte 0: truncated");
        assert!(find_bad_file("sweep file is fine").is_none());
        assert!(find_bad_file("out of memory").is_none());
    }
}
