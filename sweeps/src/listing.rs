//! Resolving a sweeps location to FITS files and reading their headers.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use lenspipe_fits::{scan_headers_sized, BinTableLayout, HeaderScan};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use url::Url;

/// How many header reads run at once when a table is opened.
const HEADER_READ_CONCURRENCY: usize = 16;
/// First header read; a sweep header with ~180 columns is about 50 KiB.
const HEADER_PROBE_BYTES: u64 = 64 * 1024;

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
    /// The file name without its directory, as reported in `sweep_file`.
    pub fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }
}

/// A parsed sweeps location: the store, the listing prefix and an optional
/// glob on the full object path.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub store_url: ObjectStoreUrl,
    base: Url,
    prefix: Path,
    glob: Option<glob::Pattern>,
    single_file: bool,
}

impl Location {
    /// Accepts `file://`, `s3://` URLs and plain paths (made absolute).
    pub fn parse(location: &str) -> Result<Self> {
        let url = if location.contains("://") {
            Url::parse(location).map_err(|e| {
                DataFusionError::Plan(format!("sweeps location '{location}' is not a URL: {e}"))
            })?
        } else {
            let path = std::path::absolute(location)
                .map_err(|e| DataFusionError::Plan(format!("sweeps location '{location}': {e}")))?;
            let text = path.to_string_lossy();
            let trailing = if location.ends_with('/') && !text.ends_with('/') {
                "/"
            } else {
                ""
            };
            Url::parse(&format!("file://{text}{trailing}"))
                .map_err(|e| DataFusionError::Plan(format!("sweeps location '{location}': {e}")))?
        };
        let base = Url::parse(&format!(
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ))
        .map_err(|e| DataFusionError::Plan(format!("sweeps location '{location}': {e}")))?;
        let store_url = ObjectStoreUrl::parse(base.as_str())?;
        let path = percent_decode(url.path());
        let (prefix, glob, single_file) = match path.find(['*', '?', '[']) {
            Some(at) => {
                let dir_end = path[..at].rfind('/').map(|i| i + 1).unwrap_or(0);
                let pattern = glob::Pattern::new(path.trim_start_matches('/')).map_err(|e| {
                    DataFusionError::Plan(format!("sweeps location '{location}': bad glob: {e}"))
                })?;
                (path[..dir_end].to_string(), Some(pattern), false)
            }
            None => {
                let single = path.ends_with(".fits") || path.ends_with(".fit");
                (path.clone(), None, single)
            }
        };
        Ok(Self {
            store_url,
            base,
            prefix: Path::from(prefix.trim_matches('/')),
            glob,
            single_file,
        })
    }

    fn url_of(&self, path: &Path) -> String {
        // `file:///a/b` and `s3://bucket/a/b`: the host part is empty for files.
        format!(
            "{}://{}/{}",
            self.base.scheme(),
            self.base.host_str().unwrap_or_default(),
            path
        )
    }

    fn accepts(&self, path: &Path) -> bool {
        match &self.glob {
            Some(pattern) => pattern.matches(path.as_ref()),
            None => {
                let name = path.filename().unwrap_or_default();
                name.ends_with(".fits") || name.ends_with(".fit")
            }
        }
    }
}

fn percent_decode(path: &str) -> String {
    // Paths with spaces or other escapes must list the real objects.
    Path::from_url_path(path)
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|_| path.to_string())
}

/// Lists the FITS files at `location` and reads each one's header, sorted by URL.
///
/// An empty match is an error: a typo in a location must not become an empty
/// training set.
pub async fn list_fits_files(
    runtime: &RuntimeEnv,
    location: &str,
) -> Result<Vec<(SweepFile, Arc<BinTableLayout>)>> {
    let loc = Location::parse(location)?;
    let store = runtime.object_store(&loc.store_url)?;
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
        listed
            .into_iter()
            .filter(|m| loc.accepts(&m.location))
            .collect()
    };
    if metas.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "no FITS files found at sweeps location '{location}'"
        )));
    }
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    futures::stream::iter(metas)
        .map(|meta| {
            let store = Arc::clone(&store);
            let url = loc.url_of(&meta.location);
            async move {
                let layout = read_layout(store.as_ref(), &meta.location, meta.size, &url).await?;
                let file = SweepFile {
                    url,
                    size: meta.size,
                    data_offset: layout.data_offset,
                    row_len: layout.row_len as u64,
                    nrows: layout.nrows,
                };
                Ok((file, Arc::new(layout)))
            }
        })
        .buffered(HEADER_READ_CONCURRENCY)
        .try_collect()
        .await
}

/// Reads and checks the header of one file: probes 64 KiB and reads more
/// only if the header is longer.
pub(crate) async fn read_layout(
    store: &dyn ObjectStore,
    path: &Path,
    size: u64,
    url: &str,
) -> Result<BinTableLayout> {
    let mut want = HEADER_PROBE_BYTES.min(size);
    loop {
        let bytes = store
            .get_range(path, 0..want)
            .await
            .map_err(|e| DataFusionError::External(format!("{url}: reading header: {e}").into()))?;
        match scan_headers_sized(&bytes, size, url)
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        {
            HeaderScan::Complete(layout) => {
                layout
                    .check_file_size(size)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                return Ok(layout);
            }
            HeaderScan::NeedMore { at_least } => {
                let at_least = at_least as u64;
                if want >= size || at_least > size {
                    return Err(DataFusionError::External(
                        format!("{url}: file ends ({size} bytes) inside its FITS header").into(),
                    ));
                }
                want = at_least.max(want * 2).min(size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let l = Location::parse("s3://bucket/dr10/south/sweep-*.fits").unwrap();
        assert_eq!(l.store_url.as_str(), "s3://bucket/");
        assert_eq!(l.prefix.as_ref(), "dr10/south");
        assert!(l.accepts(&Path::from("dr10/south/sweep-000m005-005p000.fits")));
        assert!(!l.accepts(&Path::from("dr10/south/tractor-0001m002.fits")));

        let l = Location::parse("file:///data/sweeps/").unwrap();
        assert_eq!(l.prefix.as_ref(), "data/sweeps");
        assert!(l.accepts(&Path::from("data/sweeps/a.fits")));
        assert!(!l.accepts(&Path::from("data/sweeps/a.parquet")));

        let l = Location::parse("/data/one.fits").unwrap();
        assert!(l.single_file);
        assert_eq!(l.url_of(&l.prefix), "file:///data/one.fits");
    }
}
