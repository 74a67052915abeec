//! Where data lives: one way to parse, normalise, join and print a location.
//!
//! A location is a URL with a scheme (`file:///data/x`, `s3://bucket/key`) or
//! a plain local path.
//!
//! * Plain paths are literal: every character, `#`, `?`, `%` and spaces
//!   included, is part of a name. Relative paths are made absolute against the
//!   working directory.
//! * In a URL `%XX` escapes are decoded, and everything else is literal too:
//!   object stores have no queries or fragments, so `s3://bucket/key with space/a#1`
//!   names the key it shows.
//! * `.` and `..` segments are resolved in both.
//! * `file://localhost/x` is `file:///x`; any other host in a file URL is an
//!   error (`file://data/x` would silently name a host called `data`).
//!
//! Printed ([`ObjectUrl`]'s `Display`, [`Location::url`]) every location is a
//! URL with the path percent-encoded the way DataFusion's listing tables and
//! [`Url`] decode it, so a printed location parses back to the same objects.

use std::fmt;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

fn bad(text: &str, why: impl fmt::Display) -> DataFusionError {
    DataFusionError::Configuration(format!("location '{text}': {why}"))
}

/// A parsed location: its store and the object path in it, with no I/O done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    scheme: String,
    /// The bucket; empty for local files.
    host: String,
    /// The object path, unescaped: what the store itself calls the object.
    path: Path,
    /// Written with a trailing slash (or a plain path naming a directory).
    dir: bool,
}

impl ObjectUrl {
    /// Parses a URL or a plain path (see the module documentation).
    pub fn parse(text: &str) -> Result<Self> {
        match split_scheme(text) {
            Some((scheme, rest)) => Self::parse_url(text, scheme, rest),
            None => Self::parse_path(text),
        }
    }

    fn parse_url(text: &str, scheme: &str, rest: &str) -> Result<Self> {
        let scheme = scheme.to_ascii_lowercase();
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = match (scheme.as_str(), host) {
            ("file", "" | "localhost") => "",
            ("file", other) => {
                return Err(bad(
                    text,
                    format!("a file URL has no host ('{other}'); write file:///{other}/..."),
                ))
            }
            (_, "") => return Err(bad(text, "the URL names no bucket or host")),
            (_, host) => host,
        };
        let decoded = percent_decode(path)?;
        Ok(Self {
            scheme,
            host: host.to_string(),
            path: normalise(&decoded).map_err(|e| bad(text, e))?,
            dir: path.ends_with('/') || path.is_empty(),
        })
    }

    fn parse_path(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(bad(text, "empty"));
        }
        let absolute = std::path::absolute(text).map_err(|e| bad(text, e))?;
        let Some(absolute) = absolute.to_str() else {
            return Err(bad(text, "not UTF-8"));
        };
        let path = normalise(absolute).map_err(|e| bad(text, e))?;
        let dir = text.ends_with('/') || std::path::Path::new(absolute).is_dir();
        Ok(Self {
            scheme: "file".into(),
            host: String::new(),
            path,
            dir,
        })
    }

    /// An object listed in the store of `store_url`.
    pub fn from_store_path(store_url: &ObjectStoreUrl, path: &Path) -> Self {
        let url: &Url = store_url.as_ref();
        Self {
            scheme: url.scheme().to_string(),
            host: url.host_str().unwrap_or_default().to_string(),
            path: path.clone(),
            dir: false,
        }
    }

    /// The store's URL, `file:///` or `s3://bucket/`, as DataFusion keys stores.
    pub fn store_url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::parse(format!("{}://{}", self.scheme, self.host))
            .expect("scheme and host were checked when parsed")
    }

    /// The object path inside the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the location was written as a directory (trailing slash).
    pub fn is_dir(&self) -> bool {
        self.dir
    }

    /// The object `name` below this one; `name` may hold several `/`-separated
    /// segments and is taken literally, like a plain path.
    pub fn join(&self, name: &str) -> Self {
        Self {
            path: join_path(&self.path, name),
            dir: name.ends_with('/'),
            ..self.clone()
        }
    }

    /// The last segment of the path, unescaped.
    pub fn file_name(&self) -> Option<&str> {
        self.path.filename()
    }

    /// The location as a URL (with a trailing slash for a directory).
    pub fn to_url(&self) -> Url {
        let mut url = Url::parse(&format!("{}://{}/", self.scheme, self.host))
            .expect("scheme and host were checked when parsed");
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(self.path.parts());
            if self.dir && !self.path.as_ref().is_empty() {
                segments.push("");
            }
        }
        url
    }

    /// The local file path, for `file://` locations.
    pub fn to_file_path(&self) -> Option<std::path::PathBuf> {
        (self.scheme == "file")
            .then(|| self.to_url().to_file_path().ok())
            .flatten()
    }

    /// Binds the location to its store in `runtime`.
    pub fn open(self, runtime: &RuntimeEnv) -> Result<Location> {
        let store = runtime.object_store(self.store_url())?;
        Ok(Location::new(self, store))
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_url().as_str())
    }
}

/// `scheme` and the rest of `text` if it starts with a URL scheme and `://`.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as is.
fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(text, "not UTF-8 once %-escapes are decoded"))
}

/// A literal `/`-separated path as an object path: empty segments and `.`
/// dropped, `..` going up one level.
fn normalise(text: &str) -> std::result::Result<Path, String> {
    join_checked(&Path::default(), text)
}

fn join_checked(base: &Path, name: &str) -> std::result::Result<Path, String> {
    let mut segments: Vec<&str> = base.as_ref().split('/').collect();
    for segment in name.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments.retain(|s| !s.is_empty());
    // `Path::parse` keeps the names as they are (`Path::from` would escape `#`, `%`...).
    Path::parse(segments.join("/")).map_err(|e| e.to_string())
}

/// `base` joined with the literal `name`. Names the store cannot hold
/// (control characters) are escaped the way object_store escapes them.
fn join_path(base: &Path, name: &str) -> Path {
    join_checked(base, name).unwrap_or_else(|_| {
        name.split('/')
            .filter(|s| !s.is_empty())
            .fold(base.clone(), |p, s| p.join(s))
    })
}

/// A location bound to its object store.
#[derive(Debug, Clone)]
pub struct Location {
    /// The location as a URL, percent-encoded, without a trailing slash.
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    at: ObjectUrl,
}

impl Location {
    fn new(at: ObjectUrl, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            url: at.to_string().trim_end_matches('/').to_string(),
            store,
            path: at.path.clone(),
            at,
        }
    }

    /// Parses a `file://`, `s3://` URL or a plain path and opens its store.
    pub fn resolve(runtime: &RuntimeEnv, location: &str) -> Result<Self> {
        ObjectUrl::parse(location)?.open(runtime)
    }

    /// The object `name` below this location (taken literally).
    pub fn child(&self, name: &str) -> Self {
        Self::new(self.at.join(name), Arc::clone(&self.store))
    }

    /// The location without its store.
    pub fn object_url(&self) -> &ObjectUrl {
        &self.at
    }

    /// The local file path, for `file://` locations.
    pub fn to_file_path(&self) -> Option<std::path::PathBuf> {
        self.at.to_file_path()
    }

    pub async fn put_bytes(&self, bytes: Vec<u8>) -> Result<()> {
        self.store.put(&self.path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The object's bytes, `None` if there is no such object.
    pub async fn get_bytes(&self) -> Result<Option<bytes::Bytes>> {
        match self.store.get(&self.path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, String, bool) {
        let at = ObjectUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (at.to_string(), at.path().to_string(), at.is_dir())
    }

    #[test]
    fn plain_paths_are_literal() {
        let (url, path, dir) = parsed("/data/a b/#1/50%/q?.fits");
        assert_eq!(url, "file:///data/a%20b/%231/50%25/q%3F.fits");
        assert_eq!(path, "data/a b/#1/50%/q?.fits");
        assert!(!dir);
        // `%41` in a plain path is three characters, not an escape.
        assert_eq!(parsed("/x/%41").1, "x/%41");
        let (url, path, _) = parsed("/données/ñ/猫.fits");
        assert_eq!(path, "données/ñ/猫.fits");
        assert_eq!(url, "file:///donn%C3%A9es/%C3%B1/%E7%8C%AB.fits");
        let (url, path, dir) = parsed("/data/out dir/");
        assert_eq!(
            (url.as_str(), path.as_str(), dir),
            ("file:///data/out%20dir/", "data/out dir", true)
        );
        assert_eq!(parsed("/data/./a/../b//c/..").1, "data/b");
        assert_eq!(parsed("/../..").1, "");
        let here = std::env::current_dir().unwrap();
        let rel = ObjectUrl::parse("rel dir/x#.fits").unwrap();
        assert_eq!(rel.to_file_path().unwrap(), here.join("rel dir/x#.fits"));
    }

    #[test]
    fn urls_decode_escapes_and_keep_the_rest() {
        let (url, path, dir) = parsed("s3://bucket/key with space/");
        assert_eq!((path.as_str(), dir), ("key with space", true));
        assert_eq!(url, "s3://bucket/key%20with%20space/");
        assert_eq!(
            ObjectUrl::parse("s3://bucket/k")
                .unwrap()
                .store_url()
                .as_str(),
            "s3://bucket/"
        );
        // No queries or fragments in object stores: `?` and `#` are names.
        assert_eq!(parsed("s3://b/a?x=1#frag").1, "a?x=1#frag");
        assert_eq!(parsed("file:///a%20b/c%23d%3Fe%25f").1, "a b/c#d?e%f");
        // A `%` that starts no escape stays.
        assert_eq!(parsed("s3://b/50%/%zz/%4").1, "50%/%zz/%4");
        assert_eq!(parsed("s3://b/%C3%BC/ü").1, "ü/ü");
        assert_eq!(parsed("file:///a/./b/../c/").1, "a/c");
        assert_eq!(parsed("S3://b/x").0, "s3://b/x");
        assert!(ObjectUrl::parse("s3://b/%FF").is_err());
    }

    #[test]
    fn file_urls_with_and_without_host() {
        assert_eq!(parsed("file:///data/x.fits").0, "file:///data/x.fits");
        assert_eq!(
            parsed("file://localhost/data/x.fits").0,
            "file:///data/x.fits"
        );
        let e = ObjectUrl::parse("file://data/x.fits")
            .unwrap_err()
            .to_string();
        assert!(e.contains("file:///data"), "{e}");
        assert!(ObjectUrl::parse("s3:///key").is_err());
        assert_eq!(
            ObjectUrl::parse("file:///").unwrap().store_url().as_str(),
            "file:///"
        );
    }

    #[test]
    fn printed_locations_parse_back() {
        for text in [
            "/data/a b/#1/50%/q?.fits",
            "/data/ü #/",
            "s3://bucket/key with space/x%y#z?.fits",
            "s3://bucket/",
            "file:///",
            "/x/%41/[1]*|^~",
        ] {
            let first = ObjectUrl::parse(text).unwrap();
            let again = ObjectUrl::parse(&first.to_string()).unwrap();
            assert_eq!(first, again, "{text} printed as {first}");
            // The url crate reads the printed form the same way (as DataFusion does).
            let url = Url::parse(&first.to_string()).unwrap();
            assert_eq!(
                Path::from_url_path(url.path()).unwrap(),
                *first.path(),
                "{text}"
            );
        }
    }

    #[test]
    fn join_takes_names_literally() {
        let base = ObjectUrl::parse("s3://b/out dir/").unwrap();
        let child = base.join("a #1/50%.parquet");
        assert_eq!(child.path().as_ref(), "out dir/a #1/50%.parquet");
        assert_eq!(child.to_string(), "s3://b/out%20dir/a%20%231/50%25.parquet");
        assert_eq!(child.file_name(), Some("50%.parquet"));
        let listed = Path::parse("out dir/x?.fits").unwrap();
        let file = ObjectUrl::from_store_path(&base.store_url(), &listed);
        assert_eq!(file.to_string(), "s3://b/out%20dir/x%3F.fits");
    }

    #[tokio::test]
    async fn local_round_trip_with_awkward_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a #1 50% ü?");
        let runtime = RuntimeEnv::default();
        let root = Location::resolve(&runtime, &format!("{}/", dir.display())).unwrap();
        assert!(!root.url.ends_with('/'));
        let file = root.child("sub dir/x#y%z.bin");
        file.put_bytes(b"hello".to_vec()).await.unwrap();
        // The store wrote the names as given.
        let on_disk = dir.join("sub dir").join("x#y%z.bin");
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello");
        assert_eq!(file.to_file_path().unwrap(), on_disk);
        // The printed URL finds the same object again.
        let again = Location::resolve(&runtime, &file.url).unwrap();
        assert_eq!(again.get_bytes().await.unwrap().unwrap().as_ref(), b"hello");
        assert!(root.child("missing").get_bytes().await.unwrap().is_none());
    }
}
