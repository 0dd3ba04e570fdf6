//! The supergraph from a schema registry (`registry:` or `--supergraph-url`): fetched at
//! start-up, or read from the cached copy when the registry is unreachable, then polled
//! with `If-None-Match` by [`super::reload::poll_registry`], which swaps a new version in
//! through the hot-reload path. The last good version keeps serving through registry
//! outages and invalid publications; it is written to `cache_file` atomically.
//!
//! Works with Hive's CDN artifact endpoint (`…/supergraph` with `X-Hive-CDN-Key`) and any
//! HTTP server that serves the SDL, with or without ETags.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::spec::StartupError;
use crate::config::RegistryConfig;
use crate::schema::SchemaSnapshot;

/// A supergraph larger than this is refused (a misconfigured URL serving a large file
/// must not exhaust memory).
const MAX_SUPERGRAPH_BYTES: usize = 64 * 1024 * 1024;

/// What one poll brought.
#[derive(Debug)]
pub enum Fetched {
    /// `304`: the version already seen is current.
    NotModified,
    /// A version, with its ETag when the registry sent one.
    Sdl { sdl: String, etag: Option<String> },
}

/// Why a poll brought nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("registry {url}: {message}")]
    Transport { url: String, message: String },
    #[error("registry {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("registry {url}: {message}")]
    Body { url: String, message: String },
}

/// A registry and what the gateway last took from it.
pub struct Registry {
    config: RegistryConfig,
    client: reqwest::Client,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// The version serving (or about to).
    good: Option<Arc<str>>,
    /// The ETag of the last answer, good or rejected, so that a rejected version is not
    /// fetched and rejected again on every poll.
    etag: Option<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.config.url)
            .finish()
    }
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Self, StartupError> {
        config.validate().map_err(StartupError::Registry)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| StartupError::Registry(format!("registry client: {e}")))?;
        Ok(Registry {
            config,
            client,
            seen: Mutex::default(),
        })
    }

    /// The supergraph to start with: the registry's, or when it cannot give a valid
    /// one, the cached copy.
    pub async fn load(&self) -> Result<Arc<str>, StartupError> {
        let problem = match self.fetch(None).await {
            Ok(Fetched::Sdl { sdl, etag }) => match SchemaSnapshot::from_supergraph_sdl(&sdl) {
                Ok(_) => {
                    let sdl: Arc<str> = sdl.into();
                    self.accept(sdl.clone(), etag);
                    return Ok(sdl);
                }
                Err(e) => format!("the registry's supergraph is invalid: {e}"),
            },
            Ok(Fetched::NotModified) => {
                format!("registry {} answered 304 unasked", self.config.url)
            }
            Err(e) => e.to_string(),
        };
        let Some(path) = &self.config.cache_file else {
            return Err(StartupError::Registry(format!(
                "{problem}; no cached supergraph to start from (set registry.cache_file)"
            )));
        };
        let cached = std::fs::read_to_string(path).map_err(|e| {
            StartupError::Registry(format!(
                "{problem}; and no cached supergraph at {}: {e}",
                path.display()
            ))
        })?;
        SchemaSnapshot::from_supergraph_sdl(&cached).map_err(|e| {
            StartupError::Registry(format!(
                "{problem}; and the cached supergraph at {} is invalid: {e}",
                path.display()
            ))
        })?;
        tracing::warn!(
            cache = %path.display(),
            reason = %problem,
            "registry unavailable at start-up: serving the cached supergraph"
        );
        let sdl: Arc<str> = cached.into();
        // No ETag: the first poll fetches whatever the registry has by then.
        if let Ok(mut seen) = self.seen.lock() {
            seen.good = Some(sdl.clone());
        }
        Ok(sdl)
    }

    /// The version serving.
    pub fn current(&self) -> Option<Arc<str>> {
        self.seen.lock().ok().and_then(|s| s.good.clone())
    }

    /// The ETag to send as `If-None-Match`.
    pub fn etag(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|s| s.etag.clone())
    }

    /// `sdl` is serving now: remember it, and keep a copy for starts without the
    /// registry.
    pub fn accept(&self, sdl: Arc<str>, etag: Option<String>) {
        if let Some(path) = &self.config.cache_file
            && let Err(e) = write_atomically(path, sdl.as_bytes())
        {
            tracing::warn!(cache = %path.display(), error = %e, "cannot write the supergraph cache");
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.good = Some(sdl);
            seen.etag = etag;
        }
    }

    /// A version that was refused, or is the one serving: send its ETag next time, so
    /// that it is not fetched again.
    pub fn remember(&self, etag: Option<String>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.etag = etag;
        }
    }

    /// How long to wait before the next poll: the interval, shortened by a random part
    /// of the jitter.
    pub fn next_wait(&self) -> Duration {
        use std::hash::{BuildHasher, Hasher};
        let jitter = self.config.jitter.as_micros() as u64;
        if jitter == 0 {
            return self.config.poll_interval;
        }
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        self.config.poll_interval - Duration::from_micros(random % jitter)
    }

    /// One `GET`, with `If-None-Match` when an ETag is known and the key header.
    pub async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, RegistryError> {
        let url = &self.config.url;
        let mut request = self.client.get(url);
        if let Some(etag) = etag {
            request = request.header(http::header::IF_NONE_MATCH, etag);
        }
        if let (Some(name), Some(value)) = (&self.config.key_header, &self.config.key) {
            request = request.header(name.as_str(), value.as_str());
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                RegistryError::Timeout {
                    url: url.clone(),
                    timeout: self.config.timeout,
                }
            } else {
                RegistryError::Transport {
                    url: url.clone(),
                    message: e.to_string(),
                }
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if status == 304 {
            return Ok(Fetched::NotModified);
        }
        if status != 200 {
            return Err(RegistryError::Status {
                url: url.clone(),
                status,
            });
        }
        let etag = response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_SUPERGRAPH_BYTES {
                return Err(RegistryError::Body {
                    url: url.clone(),
                    message: format!("the supergraph is larger than {MAX_SUPERGRAPH_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let sdl = String::from_utf8(body).map_err(|_| RegistryError::Body {
            url: url.clone(),
            message: "the supergraph is not UTF-8".into(),
        })?;
        Ok(Fetched::Sdl { sdl, etag })
    }
}

/// Write `bytes` next to `path` and rename it over, so that a crash mid-write never
/// leaves a truncated cache.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
