//! `lenspipe cp`: copies a file or a folder between locations (local paths,
//! `file://`, `s3://`), so a cluster's inputs can be loaded into its object
//! store with the same credentials and endpoint the stages use.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use lenspipe_plans::sink::Location;
use lenspipe_plans::{Error, Result};

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub objects: u64,
    pub bytes: u64,
}

/// Copies `from` to `to`. A single object is copied to `to` itself, or into
/// it when `to` ends with `/`; a folder (`from` ending with `/`, or naming
/// no object) has its objects copied with their relative paths under `to`.
/// Objects are streamed, never held whole in memory.
pub async fn copy(runtime: &RuntimeEnv, from: &str, to: &str) -> Result<Copied> {
    let src = Location::resolve(runtime, from)?;
    let dst = Location::resolve(runtime, to)?;
    // A trailing slash names a folder: no HEAD, which some S3-compatible
    // stores answer with an error rather than 404 for a folder's name.
    let single = if from.ends_with('/') {
        None
    } else {
        match src.store.head(&src.path).await {
            Ok(meta) => Some(meta),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    };
    let mut plan: Vec<(Path, Path)> = Vec::new();
    match single {
        Some(meta) => {
            let target = if to.ends_with('/') {
                let name = meta.location.filename().unwrap_or_default().to_string();
                dst.path.clone().join(name.as_str())
            } else {
                dst.path.clone()
            };
            plan.push((meta.location, target));
        }
        None => {
            let mut listed: Vec<Path> = src
                .store
                .list(Some(&src.path))
                .map_ok(|m| m.location)
                .try_collect()
                .await?;
            listed.sort();
            for object in listed {
                let Some(rel) = object.prefix_match(&src.path) else {
                    continue;
                };
                let target = rel.fold(dst.path.clone(), |p, part| p.join(part));
                plan.push((object, target));
            }
        }
    }
    if plan.is_empty() {
        return Err(Error::Config(format!("cp: nothing at {}", src.url)));
    }
    let mut copied = Copied::default();
    for (object, target) in plan {
        copied.bytes += copy_object(&src.store, &object, &dst.store, target).await?;
        copied.objects += 1;
    }
    Ok(copied)
}

async fn copy_object(
    from_store: &Arc<dyn ObjectStore>,
    from: &Path,
    to_store: &Arc<dyn ObjectStore>,
    to: Path,
) -> Result<u64> {
    let what = |e: &dyn std::fmt::Display| Error::Other(format!("cp {from} -> {to}: {e}"));
    let mut body = from_store.get(from).await?.into_stream();
    let mut writer = BufWriter::new(Arc::clone(to_store), to.clone());
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        writer.write_all(&chunk).await.map_err(|e| what(&e))?;
    }
    writer.shutdown().await.map_err(|e| what(&e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_folders_and_single_files() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("top.fits"), vec![7u8; 100_000]).unwrap();
        std::fs::write(src.join("a/b/deep.csv"), b"x,y\n1,2\n").unwrap();
        let runtime = RuntimeEnv::default();
        let out = tmp.path().join("out");
        let copied = copy(
            &runtime,
            &format!("{}/", src.display()),
            &format!("{}/", out.display()),
        )
        .await
        .unwrap();
        assert_eq!(copied.objects, 2);
        assert_eq!(copied.bytes, 100_008);
        assert_eq!(
            std::fs::read(out.join("top.fits")).unwrap(),
            vec![7u8; 100_000]
        );
        assert_eq!(
            std::fs::read(out.join("a/b/deep.csv")).unwrap(),
            b"x,y\n1,2\n"
        );

        let one = tmp.path().join("one/");
        std::fs::create_dir_all(&one).unwrap();
        let copied = copy(
            &runtime,
            &src.join("a/b/deep.csv").display().to_string(),
            &format!("{}/", one.display()),
        )
        .await
        .unwrap();
        assert_eq!(copied.objects, 1);
        assert!(one.join("deep.csv").is_file());

        let err = copy(
            &runtime,
            &tmp.path().join("nothing").display().to_string(),
            "x",
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("nothing at"), "{err}");
    }
}
