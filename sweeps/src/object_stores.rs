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
