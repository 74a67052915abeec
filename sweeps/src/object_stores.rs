//! Object stores resolved on demand: `file://` is always there, and an
//! `s3://bucket` store is built from the standard AWS environment the first
//! time a URL names that bucket.
//!
//! Credentials and endpoints therefore never appear in a plan or a log: every
//! process (client, scheduler, executor) reads them from its own environment.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use url::Url;

/// An [`ObjectStoreRegistry`] that builds S3 stores from `AWS_*` variables.
///
/// Honoured beyond what `AmazonS3Builder::from_env` reads: `AWS_ENDPOINT_URL`
/// (the name the AWS CLI uses) as the endpoint, and plain `http://`
/// endpoints are allowed when the endpoint itself says so.
#[derive(Debug, Default)]
pub struct EnvObjectStoreRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl EnvObjectStoreRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    fn build_s3(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        if !has_s3_credentials(|name| std::env::var(name).ok()) {
            return Err(DataFusionError::Configuration(format!(
                "s3://{bucket}: no S3 credentials in the environment: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an S3-compatible store), \
                 AWS_SKIP_SIGNATURE=true for a public bucket, or AWS_EC2_METADATA_DISABLED=false \
                 to use an EC2 instance role"
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok();
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                // S3-compatible servers rarely support virtual-hosted buckets.
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| {
            DataFusionError::External(
                format!("cannot open s3://{bucket} from the AWS_* environment: {e}").into(),
            )
        })?;
        Ok(Arc::new(store))
    }
}

/// Whether the environment names a way to sign S3 requests. Without one,
/// the S3 client would fall back to the EC2 instance metadata service and,
/// off EC2, fail minutes later with a message about token requests; that
/// fallback is taken only when asked for (`AWS_EC2_METADATA_DISABLED=false`).
fn has_s3_credentials(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || var("AWS_SKIP_SIGNATURE").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

impl ObjectStoreRegistry for EnvObjectStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        match (url.scheme(), url.host_str()) {
            ("s3", Some(bucket)) => {
                let store = Self::build_s3(bucket)?;
                let key = Url::parse(&format!("s3://{bucket}"))
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                self.inner.register_store(&key, Arc::clone(&store));
                Ok(store)
            }
            _ => self.inner.get_store(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_any_documented_source() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!has_s3_credentials(env(&[])));
        assert!(!has_s3_credentials(env(&[("AWS_ACCESS_KEY_ID", " ")])));
        assert!(!has_s3_credentials(env(&[("AWS_SKIP_SIGNATURE", "false")])));
        assert!(has_s3_credentials(env(&[("AWS_ACCESS_KEY_ID", "k")])));
        assert!(has_s3_credentials(env(&[("AWS_SKIP_SIGNATURE", "TRUE")])));
        assert!(has_s3_credentials(env(&[(
            "AWS_EC2_METADATA_DISABLED",
            "false"
        )])));
    }
}
