//! A sync source: an object store opened from a URL (`s3://bucket/prefix`, `gs://`,
//! `az://`/`azure://`, `http(s)://`, `file:///abs/path`) and its listing.
//!
//! Credentials come only from the environment and the providers' standard chains
//! (`AmazonS3Builder::from_env()` and friends: `AWS_ACCESS_KEY_ID`, web identity, instance
//! metadata; `GOOGLE_APPLICATION_CREDENTIALS`; `AZURE_STORAGE_*`, managed identity). The
//! options passed in are non-secret settings only (endpoint, region, allow_http, ...); a
//! credential given as an option is refused.

use super::plan::RemoteObject;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Non-secret options a source may set (any provider prefix such as `aws_` is accepted).
pub const ALLOWED_OPTIONS: &[&str] = &[
    "endpoint",
    "region",
    "allow_http",
    "virtual_hosted_style_request",
    "skip_signature",
    "use_emulator",
    "base_url",
    "timeout",
    "connect_timeout",
    "read_timeout",
];

/// Keys per listing request.
const PAGE: usize = 1000;
/// Key ranges listed at once when the keys of the last run are known.
pub const LIST_RANGES_AT_ONCE: usize = 4;

const URL_FORMS: &str = "use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, http(s)://host/path or file:///absolute/path";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("sync source {url:?}: {why}; {URL_FORMS}")]
    BadUrl { url: String, why: String },
    #[error("sync source {url:?}: option {key:?} is a credential or not a known setting; credentials come only from the environment or the provider's standard chain (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*), and the allowed options are {ALLOWED_OPTIONS:?}")]
    Option { url: String, key: String },
    #[error("sync source {url:?}: {path} is not a readable directory ({source}); create it or fix the URL")]
    LocalDir { url: String, path: String, source: std::io::Error },
    #[error("sync source {url:?}: cannot open the store: {source}; check the URL, the options and the credentials in the environment")]
    Open { url: String, source: object_store::Error },
    #[error("sync source {url:?}: listing {prefix:?} failed: {source}; check that the store is reachable, the bucket exists and the credentials in the environment allow listing")]
    List { url: String, prefix: String, source: object_store::Error },
    #[error("sync source {url:?}: reading {key:?} failed: {source}")]
    Get { url: String, key: String, source: object_store::Error },
    #[error("sync source {url:?}: {key:?} is {size} bytes, over the {limit}-byte limit for a sidecar")]
    TooLarge { url: String, key: String, size: u64, limit: u64 },
}

impl SourceError {
    /// Whether the store (or the way to it) failed, so retrying later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::List { .. } | SourceError::Get { .. })
    }
}

/// An opened source: the store and the prefix the URL points at.
#[derive(Clone)]
pub struct Source {
    url: String,
    store: Arc<dyn ObjectStore>,
    /// Cloud stores: listed page by page, so a key object_store cannot represent is
    /// stepped over instead of failing the whole listing.
    pages: Option<Arc<dyn PaginatedListStore>>,
    prefix: StorePath,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("url", &self.url).field("prefix", &self.prefix.as_ref()).finish()
    }
}

/// Requests are retried a little inside the client; the sync engine retries objects with
/// its own backoff, so a dead store is reported in seconds, not minutes.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), base: 2.0 },
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    }
}

/// No total request timeout (a large object at a capped rate takes long), but a
/// connection that stalls for 30 s fails.
fn client_options() -> ClientOptions {
    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout_disabled().with_read_timeout(Duration::from_secs(30))
}

fn option_name(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    for p in ["aws_", "google_", "azure_storage_", "azure_"] {
        if let Some(rest) = k.strip_prefix(p) {
            return rest.to_string();
        }
    }
    k
}

impl Source {
    /// Opens the store a URL names. `options` are non-secret settings only.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Self, SourceError> {
        let bad = |why: &str| SourceError::BadUrl { url: url.into(), why: why.into() };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if url.contains(['?', '#']) {
            return Err(bad("query strings and fragments are not supported"));
        }
        let mut opts = Vec::new();
        for (k, v) in options {
            let name = option_name(k);
            if !ALLOWED_OPTIONS.contains(&name.as_str()) {
                return Err(SourceError::Option { url: url.into(), key: k.clone() });
            }
            opts.push((name, v.clone()));
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = StorePath::from_url_path(path).map_err(|e| bad(&format!("bad path: {e}")))?;
        let open = |source| SourceError::Open { url: url.into(), source };
        let opt_err = |key: &str| SourceError::Option { url: url.into(), key: key.into() };
        let (store, pages): (Arc<dyn ObjectStore>, Option<Arc<dyn PaginatedListStore>>) = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !host.is_empty() {
                    return Err(bad("file URLs need an absolute path (file:///path, three slashes)"));
                }
                let dir = format!("/{}", prefix.as_ref());
                std::fs::read_dir(&dir).map_err(|source| SourceError::LocalDir { url: url.into(), path: dir.clone(), source })?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(open)?;
                return Ok(Source { url: url.into(), store: Arc::new(fs), pages: None, prefix: StorePath::default() });
            }
            _ if host.is_empty() => return Err(bad("no bucket, container or host")),
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env().with_url(url).with_client_options(client_options());
                for (k, v) in opts {
                    b = b.with_config(k.parse::<AmazonS3ConfigKey>().map_err(|_| opt_err(&k))?, v);
                }
                let s = Arc::new(b.with_retry(retry_config()).build().map_err(open)?);
                (s.clone(), Some(s))
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url).with_client_options(client_options());
                for (k, v) in opts {
                    b = b.with_config(k.parse::<GoogleConfigKey>().map_err(|_| opt_err(&k))?, v);
                }
                let s = Arc::new(b.with_retry(retry_config()).build().map_err(open)?);
                (s.clone(), Some(s))
            }
            "az" | "azure" => {
                // object_store knows `az://container`; `azure://` is the same thing.
                let az_url = format!("az://{rest}");
                let mut b = MicrosoftAzureBuilder::from_env().with_url(az_url).with_client_options(client_options());
                for (k, v) in opts {
                    b = b.with_config(k.parse::<AzureConfigKey>().map_err(|_| opt_err(&k))?, v);
                }
                let s = Arc::new(b.with_retry(retry_config()).build().map_err(open)?);
                (s.clone(), Some(s))
            }
            s @ ("http" | "https") => {
                let mut b = HttpBuilder::new().with_url(format!("{s}://{host}")).with_client_options(client_options());
                for (k, v) in opts {
                    b = b.with_config(k.parse::<ClientConfigKey>().map_err(|_| opt_err(&k))?, v);
                }
                (Arc::new(b.with_retry(retry_config()).build().map_err(open)?), None)
            }
            _ => return Err(bad(&format!("unsupported scheme {scheme:?}"))),
        };
        Ok(Source { url: url.into(), store, pages, prefix })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    /// Where a listed key (relative to the source prefix) is in the store.
    pub fn location(&self, key: &str) -> StorePath {
        // The key came from a parsed listing, so it parses again to the same path.
        let full = self.raw_key(key);
        StorePath::parse(&full).unwrap_or_else(|_| StorePath::from(full.as_str()))
    }

    /// Every object under `sub` (a folder below the source prefix, e.g. a channel); keys
    /// are relative to the source prefix (`rock/song.mp3`). A key the client cannot
    /// represent (control characters, `..`, `//`) is listed with its raw name and size 0,
    /// for the sync to refuse, rather than failing the listing.
    pub async fn list_objects(&self, sub: &str) -> Result<Vec<RemoteObject>, SourceError> {
        self.list_objects_hinted(sub, &[]).await
    }

    /// [`list_objects`](Self::list_objects), told the keys the last run saw (sorted, as
    /// the catalog holds them). A cloud store lists 1,000 keys per request, one request
    /// after the other; with hints, the key space is cut at every 1,000th known key and
    /// the ranges are listed [`LIST_RANGES_AT_ONCE`] at a time. Each range starts after
    /// its first bound and stops at its last, so the ranges cover every key exactly once
    /// whatever changed since: new keys make a range take more pages, nothing more.
    pub async fn list_objects_hinted(&self, sub: &str, known: &[&str]) -> Result<Vec<RemoteObject>, SourceError> {
        let sub = sub.trim_matches('/');
        let full = match (self.prefix.as_ref(), sub) {
            ("", s) => s.to_string(),
            (p, "") => p.to_string(),
            (p, s) => format!("{p}/{s}"),
        };
        let list_err = |source| SourceError::List { url: self.url.clone(), prefix: full.clone(), source };
        let mut out = match &self.pages {
            Some(pages) => {
                let prefix = (!full.is_empty()).then(|| format!("{full}/"));
                // Every 1,000th known key but the last: the final range is open-ended.
                let last = known.len().saturating_sub(1);
                let bounds: Vec<String> =
                    (PAGE - 1..last).step_by(PAGE).map(|i| self.raw_key(known[i])).collect();
                let mut ranges = Vec::with_capacity(bounds.len() + 1);
                let mut from: Option<String> = None;
                for b in bounds {
                    ranges.push((from.take(), Some(b.clone())));
                    from = Some(b);
                }
                ranges.push((from, None));
                let lists = ranges.into_iter().map(|(from, to)| self.list_range(pages.as_ref(), prefix.as_deref(), from, to));
                let parts: Vec<Vec<RemoteObject>> =
                    futures::stream::iter(lists).buffered(LIST_RANGES_AT_ONCE).try_collect().await.map_err(list_err)?;
                parts.concat()
            }
            None => {
                let location = StorePath::parse(&full).map_err(|e| list_err(e.into()))?;
                let metas: Vec<_> = self.store.list(Some(&location)).try_collect().await.map_err(list_err)?;
                metas.into_iter().map(|m| self.remote(m)).collect()
            }
        };
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The store's name for a key relative to the source prefix.
    fn raw_key(&self, key: &str) -> String {
        match self.prefix.as_ref() {
            "" => key.to_string(),
            p => format!("{p}/{key}"),
        }
    }

    /// The key relative to the source prefix.
    fn relative<'a>(&self, raw: &'a str) -> &'a str {
        let base = self.prefix.as_ref();
        if base.is_empty() {
            return raw;
        }
        raw.strip_prefix(base).and_then(|r| r.strip_prefix('/')).unwrap_or(raw)
    }

    fn remote(&self, m: ObjectMeta) -> RemoteObject {
        RemoteObject {
            key: self.relative(m.location.as_ref()).to_string(),
            size: m.size,
            etag: m.e_tag,
            last_modified_ms: m.last_modified.timestamp_millis(),
        }
    }

    /// Lists the keys after `from` (from the start when `None`) up to and including `to`
    /// (to the end when `None`), page by page. When a page holds a key the client refuses,
    /// the pages shrink until that key is alone, which is then listed by its raw name.
    async fn list_range(
        &self,
        pages: &dyn PaginatedListStore,
        prefix: Option<&str>,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<Vec<RemoteObject>, object_store::Error> {
        let mut out = Vec::new();
        let mut offset = from;
        let mut size = PAGE;
        loop {
            let opts = PaginatedListOptions { offset: offset.clone(), max_keys: Some(size), ..Default::default() };
            match pages.list_paginated(prefix, opts).await {
                Ok(page) => {
                    let n = page.result.objects.len();
                    for m in page.result.objects {
                        let raw = m.location.to_string();
                        if offset.as_ref().is_some_and(|o| raw.as_str() <= o.as_str()) {
                            let msg = format!("the listing went back from {offset:?} to {raw:?}");
                            return Err(object_store::Error::Generic { store: "sync", source: msg.into() });
                        }
                        if to.as_ref().is_some_and(|t| raw.as_str() > t.as_str()) {
                            return Ok(out);
                        }
                        offset = Some(raw);
                        out.push(self.remote(m));
                    }
                    let at_end = to.as_ref().is_some_and(|t| offset.as_ref().is_some_and(|o| o >= t));
                    if page.page_token.is_none() || n == 0 || at_end {
                        return Ok(out);
                    }
                }
                Err(e) => {
                    let Some(raw) = unrepresentable_key(&e) else { return Err(e) };
                    if size > 1 {
                        size = (size / 8).max(1);
                        continue;
                    }
                    if to.as_ref().is_some_and(|t| raw.as_str() > t.as_str()) {
                        return Ok(out);
                    }
                    tracing::warn!(url = %self.url, key = %raw.escape_debug(), "listing: the store client cannot represent this key; stepping over it");
                    let key = self.relative(&raw).to_string();
                    out.push(RemoteObject { key, size: 0, etag: None, last_modified_ms: 0 });
                    offset = Some(raw);
                    size = PAGE;
                }
            }
        }
    }

    /// Reads a small object (a sidecar) whole, refusing more than `limit` bytes.
    pub async fn get_small(&self, key: &str, limit: u64) -> Result<bytes::Bytes, SourceError> {
        let get_err = |source| SourceError::Get { url: self.url.clone(), key: key.into(), source };
        let result = self.store.get(&self.location(key)).await.map_err(get_err)?;
        if result.meta.size > limit {
            return Err(SourceError::TooLarge { url: self.url.clone(), key: key.into(), size: result.meta.size, limit });
        }
        result.bytes().await.map_err(get_err)
    }
}

/// The raw key object_store refused to turn into a path, if that is the error.
fn unrepresentable_key(e: &object_store::Error) -> Option<String> {
    use object_store::path::Error as P;
    match e {
        object_store::Error::InvalidPath { source: P::BadSegment { path, .. } | P::EmptySegment { path } } => Some(path.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn urls_open_or_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file_url = format!("file://{}", dir.path().display());
        assert!(Source::open(&file_url, &[]).is_ok());
        let missing = format!("file://{}/nope", dir.path().display());
        let e = Source::open(&missing, &[]).unwrap_err().to_string();
        assert!(e.contains("not a readable directory") && e.contains(&missing), "{e}");
        let s3 =
            Source::open("s3://bucket/media/tv", &opts(&[("endpoint", "http://127.0.0.1:9"), ("allow_http", "true"), ("region", "x")]));
        assert_eq!(s3.unwrap().location("rock/a.mp3").as_ref(), "media/tv/rock/a.mp3");
        assert!(Source::open("http://127.0.0.1:9/media", &opts(&[("allow_http", "true")])).is_ok());
        for bad in ["ftp://host/x", "s3:///x", "no-scheme", "file://host/x", "s3://b/x?versionId=1"] {
            let e = Source::open(bad, &[]).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("s3://bucket/prefix"), "{e}");
        }
    }

    #[test]
    fn credentials_are_never_taken_from_options() {
        for key in
            ["aws_secret_access_key", "access_key_id", "token", "google_service_account_key", "azure_storage_account_key", "sas_token"]
        {
            let e = Source::open("s3://bucket/x", &opts(&[(key, "sekrit")])).unwrap_err();
            assert!(matches!(&e, SourceError::Option { key: k, .. } if k == key), "{key}: {e}");
            assert!(!e.to_string().contains("sekrit"), "the value is never echoed: {e}");
        }
    }

    #[tokio::test]
    async fn file_listing_is_relative_to_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("media/rock")).unwrap();
        std::fs::write(dir.path().join("media/rock/a b.mp3"), b"abc").unwrap();
        std::fs::write(dir.path().join("media/rock/c.mp3"), b"abcd").unwrap();
        std::fs::write(dir.path().join("media/other.mp3"), b"x").unwrap();
        let src = Source::open(&format!("file://{}/media", dir.path().display()), &[]).unwrap();
        let listed = src.list_objects("rock").await.unwrap();
        let keys: Vec<_> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
        assert_eq!(keys, [("rock/a b.mp3", 3), ("rock/c.mp3", 4)]);
        assert_eq!(src.get_small("rock/c.mp3", 10).await.unwrap().as_ref(), b"abcd");
        assert!(matches!(src.get_small("rock/c.mp3", 2).await, Err(SourceError::TooLarge { .. })));
        assert_eq!(src.list_objects("").await.unwrap().len(), 3);
    }
}
