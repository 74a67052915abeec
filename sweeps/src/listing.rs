//! Resolving a sweeps location to FITS files and reading their headers.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use lenspipe_fits::{BinTableLayout, HeaderProbe};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::location::ObjectUrl;

/// How many header reads run at once when a table is opened.
const HEADER_READ_CONCURRENCY: usize = 16;

/// One FITS file of the table: where it is and the geometry of its rows.
///
/// This is what travels inside a plan; the column descriptions are read again
/// from the header by whoever decodes the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepFile {
    /// Full URL of the file (`file:///...` or `s3://bucket/...`).
    pub url: String,
    pub size: u64,
    pub data_offset: u64,
    pub row_len: u64,
    pub nrows: u64,
}

impl SweepFile {
    /// The file name without its directory (unescaped), as reported in `sweep_file`.
    pub fn file_name(&self) -> String {
        ObjectUrl::parse(&self.url)
            .ok()
            .and_then(|u| u.file_name().map(str::to_string))
            .unwrap_or_else(|| self.url.rsplit('/').next().unwrap_or(&self.url).to_string())
    }
}

/// A sweeps location: a file, a directory or prefix, or a glob on the object
/// path (`*`, `?`, `[...]` in the last segments).
#[derive(Debug, Clone)]
struct Listing {
    at: ObjectUrl,
    prefix: Path,
    glob: Option<glob::Pattern>,
    single_file: bool,
}

impl Listing {
    fn parse(location: &str) -> Result<Self> {
        let at = ObjectUrl::parse(location)?;
        let path = at.path().as_ref();
        let (prefix, glob, single_file) = match path.find(['*', '?', '[']) {
            Some(glob_at) => {
                let dir_end = path[..glob_at].rfind('/').unwrap_or(0);
                let pattern = glob::Pattern::new(path).map_err(|e| {
                    DataFusionError::Plan(format!("sweeps location '{location}': bad glob: {e}"))
                })?;
                let prefix = Path::parse(&path[..dir_end]).map_err(|e| {
                    DataFusionError::Plan(format!("sweeps location '{location}': {e}"))
                })?;
                (prefix, Some(pattern), false)
            }
            None => {
                let single = !at.is_dir() && is_fits_name(path);
                (at.path().clone(), None, single)
            }
        };
        Ok(Self {
            at,
            prefix,
            glob,
            single_file,
        })
    }

    fn url_of(&self, path: &Path) -> String {
        ObjectUrl::from_store_path(&self.at.store_url(), path).to_string()
    }

    fn accepts(&self, path: &Path) -> bool {
        match &self.glob {
            Some(pattern) => pattern.matches(path.as_ref()),
            None => is_fits_name(path.filename().unwrap_or_default()),
        }
    }
}

fn is_fits_name(name: &str) -> bool {
    name.ends_with(".fits") || name.ends_with(".fit")
}

/// The files at a location: those whose header was read, and those that
/// could not be read, each with its error (see [`crate::bad_file_message`]).
#[derive(Debug, Default)]
pub struct Listed {
    pub files: Vec<ListedFile>,
    pub bad: Vec<crate::SkippedFile>,
}

/// The smallest FITS file: one 2880-byte header block.
const FITS_BLOCK: u64 = 2880;

/// Lists the FITS files at `location` and reads each one's header, sorted by URL.
///
/// An empty match is an error: a typo in a location must not become an empty
/// training set. A file whose header cannot be read is returned in `bad`.
pub async fn list_fits_files(runtime: &RuntimeEnv, location: &str) -> Result<Listed> {
    let loc = Listing::parse(location)?;
    let store = runtime.object_store(loc.at.store_url())?;
    let mut others = Vec::new();
    let mut metas = if loc.single_file {
        vec![store.head(&loc.prefix).await.map_err(|e| {
            DataFusionError::Plan(format!("sweeps file '{location}' cannot be read: {e}"))
        })?]
    } else {
        let listed: Vec<_> = store
            .list(Some(&loc.prefix))
            .try_collect()
            .await
            .map_err(|e| {
                DataFusionError::Plan(format!("cannot list sweeps at '{location}': {e}"))
            })?;
        let (fits, rest): (Vec<_>, Vec<_>) =
            listed.into_iter().partition(|m| loc.accepts(&m.location));
        others = rest;
        fits
    };
    if metas.is_empty() {
        let hint = match others.len() {
            0 => "it is empty or does not exist".to_string(),
            n => {
                others.sort_by(|a, b| a.location.cmp(&b.location));
                let names: Vec<&str> = others
                    .iter()
                    .take(3)
                    .filter_map(|m| m.location.filename())
                    .collect();
                let more = if n > 3 { ", ..." } else { "" };
                format!(
                    "it holds {n} other file{} ({}{more}) but none named *.fits or *.fit",
                    if n == 1 { "" } else { "s" },
                    names.join(", ")
                )
            }
        };
        return Err(DataFusionError::Plan(format!(
            "no FITS files found at sweeps location '{location}': {hint}; \
             set inputs.sweeps to a folder, prefix or glob of sweep FITS files"
        )));
    }
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let read: Vec<(String, Result<ListedFile>)> = futures::stream::iter(metas)
        .map(|meta| {
            let store = Arc::clone(&store);
            let url = loc.url_of(&meta.location);
            async move {
                let read = read_layout(store.as_ref(), &meta.location, meta.size, &url)
                    .await
                    .map(|layout| {
                        let file = SweepFile {
                            url: url.clone(),
                            size: meta.size,
                            data_offset: layout.data_offset,
                            row_len: layout.row_len as u64,
                            nrows: layout.nrows,
                        };
                        (file, Arc::new(layout))
                    });
                (url, read)
            }
        })
        .buffered(HEADER_READ_CONCURRENCY)
        .collect()
        .await;
    let mut listed = Listed::default();
    for (url, read) in read {
        match read {
            Ok(file) => listed.files.push(file),
            Err(e) => listed.bad.push(crate::SkippedFile {
                error: crate::bad_files::cause_of(&url, &e),
                file: url,
            }),
        }
    }
    Ok(listed)
}

/// A sweep file whose header was read, with its layout.
pub type ListedFile = (SweepFile, Arc<BinTableLayout>);

/// Reads and checks the header of one file, in the byte ranges the fits
/// crate's [`HeaderProbe`] asks for (64 KiB first, more if the header is longer).
pub(crate) async fn read_layout(
    store: &dyn ObjectStore,
    path: &Path,
    size: u64,
    url: &str,
) -> Result<BinTableLayout> {
    if size < FITS_BLOCK {
        let what = match size {
            0 => "the file is empty (0 bytes)".to_string(),
            n => format!("the file is {n} bytes, shorter than one {FITS_BLOCK}-byte FITS header"),
        };
        return Err(crate::bad_file_error(
            url,
            format!("{what}: not a FITS file; download it again or remove it"),
        ));
    }
    let fits_err = |e| crate::bad_file_error(url, e);
    let mut probe = HeaderProbe::new(size, url);
    let mut prefix = Vec::new();
    loop {
        let have = prefix.len() as u64;
        let bytes = store
            .get_range(path, have..probe.want())
            .await
            .map_err(|e| crate::bad_file_error(url, format!("reading the header: {e}")))?;
        prefix.extend_from_slice(&bytes);
        if let Some(layout) = probe.feed(&prefix).map_err(fits_err)? {
            layout.check_file_size(size).map_err(fits_err)?;
            return Ok(layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let l = Listing::parse("s3://bucket/dr10/south/sweep-*.fits").unwrap();
        assert_eq!(l.at.store_url().as_str(), "s3://bucket/");
        assert_eq!(l.prefix.as_ref(), "dr10/south");
        assert!(l.accepts(&Path::from("dr10/south/sweep-000m005-005p000.fits")));
        assert!(!l.accepts(&Path::from("dr10/south/tractor-0001m002.fits")));

        let l = Listing::parse("file:///data/sweeps/").unwrap();
        assert_eq!(l.prefix.as_ref(), "data/sweeps");
        assert!(l.accepts(&Path::from("data/sweeps/a.fits")));
        assert!(!l.accepts(&Path::from("data/sweeps/a.parquet")));

        let l = Listing::parse("/data/one.fits").unwrap();
        assert!(l.single_file);
        assert_eq!(l.url_of(&l.prefix), "file:///data/one.fits");
    }

    #[test]
    fn awkward_names_list_and_print_escaped() {
        // `?` is a glob character, also in a URL (no query strings).
        let l = Listing::parse("s3://bucket/key with space/sweep-?.fits").unwrap();
        assert_eq!(l.prefix.as_ref(), "key with space");
        assert!(l.accepts(&Path::parse("key with space/sweep-1.fits").unwrap()));
        let l = Listing::parse("/data/a #1/50%/").unwrap();
        assert_eq!(l.prefix.as_ref(), "data/a #1/50%");
        assert!(!l.single_file);
        let listed = Path::parse("data/a #1/50%/b c.fits").unwrap();
        let url = l.url_of(&listed);
        assert_eq!(url, "file:///data/a%20%231/50%25/b%20c.fits");
        let file = SweepFile {
            url,
            size: 0,
            data_offset: 0,
            row_len: 0,
            nrows: 0,
        };
        assert_eq!(file.file_name(), "b c.fits");
    }
}
