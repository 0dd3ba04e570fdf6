//! File uploads: `multipart/form-data` requests of the GraphQL multipart request spec
//! (`operations`, then `map`, then the files). This reads the first two parts and
//! leaves the files in the body for the fetch that sends them on
//! (`sources::upload`), so a file never sits whole in memory.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value as Json};

use crate::request::Request;
use crate::sources::upload::{FileTarget, UploadError, Uploads, read_error};

use super::http::{MediaType, decode_request, simple_error};

/// `edge.uploads:` in the config file.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    /// Accept `multipart/form-data` requests with files on the GraphQL endpoints. Off
    /// by default: only turn it on when a subgraph takes `Upload` arguments.
    #[serde(default)]
    pub enabled: bool,
    /// Most files in one request (entries of `map`).
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    /// Most bytes of all files of one request together; a request with more is
    /// refused with 413, even when its files are being sent on already.
    #[serde(default = "default_max_total_bytes")]
    pub max_total_bytes: u64,
    /// Headers of which a multipart request must carry one (CSRF protection: a page of
    /// another origin can post a form, but not with such a header without a CORS
    /// preflight the gateway's CORS settings decide on).
    #[serde(default = "default_preflight_headers")]
    pub preflight_headers: Vec<String>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            enabled: false,
            max_files: default_max_files(),
            max_total_bytes: default_max_total_bytes(),
            preflight_headers: default_preflight_headers(),
        }
    }
}

fn default_max_files() -> usize {
    10
}

fn default_max_total_bytes() -> u64 {
    50 * 1024 * 1024
}

fn default_preflight_headers() -> Vec<String> {
    vec![
        "apollo-require-preflight".into(),
        "x-apollo-operation-name".into(),
    ]
}

/// The answer to a refused upload request: 400 or 413, as GraphQL errors.
pub(super) fn refusal(error: &UploadError, media: MediaType) -> axum::response::Response {
    let (status, code) = match error {
        UploadError::Invalid(_) => (StatusCode::BAD_REQUEST, "BAD_UPLOAD"),
        UploadError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "UPLOAD_TOO_LARGE"),
    };
    simple_error(status, media, &error.to_string(), code)
}

/// The request of a multipart body, and its files. `max_part_bytes` bounds the
/// `operations` and `map` parts (the JSON body limit).
pub(super) async fn read(
    config: &UploadConfig,
    headers: &HeaderMap,
    body: Body,
    max_part_bytes: usize,
) -> Result<(Request, Arc<Uploads>), UploadError> {
    let has_preflight = config.preflight_headers.iter().any(|name| {
        headers
            .get(name.as_str())
            .is_some_and(|v| !v.as_bytes().is_empty())
    });
    if !has_preflight {
        return Err(UploadError::Invalid(format!(
            "a multipart request must carry one of the headers {} (CSRF protection)",
            config.preflight_headers.join(", ")
        )));
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| UploadError::Invalid(format!("bad multipart content type: {e}")))?;
    let part = max_part_bytes as u64;
    // A backstop for the whole body: our own count bounds the files exactly.
    let whole = config
        .max_total_bytes
        .saturating_add(2 * part)
        .saturating_add(64 * 1024 * (config.max_files as u64 + 2));
    let limits = multer::SizeLimit::new()
        .whole_stream(whole)
        .for_field("operations", part)
        .for_field("map", part);
    let mut parts = multer::Multipart::with_constraints(
        OneChunkPerPoll {
            inner: body.into_data_stream(),
            yielded: false,
        },
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let operations = json_part(&mut parts, "operations").await?;
    let map = json_part(&mut parts, "map").await?;
    let Json::Object(mut operations) = operations else {
        return Err(UploadError::Invalid(
            "`operations` must be one GraphQL request object (batches are not supported)".into(),
        ));
    };
    let mut variables = match operations.remove("variables") {
        Some(Json::Object(v)) => v,
        None | Some(Json::Null) => Map::new(),
        Some(_) => return Err(UploadError::Invalid("`variables` must be an object".into())),
    };
    let map = files_of(map, &mut variables, config.max_files)?;
    let request = decode_request(
        operations.get("query"),
        operations.get("operationName"),
        Some(Json::Object(variables)),
        operations.get("extensions").cloned(),
    )
    .map_err(UploadError::Invalid)?;
    Ok((
        request,
        Arc::new(Uploads::new(map, parts, config.max_total_bytes)),
    ))
}

/// The next part, which must be `name` and hold JSON.
async fn json_part(
    parts: &mut multer::Multipart<'static>,
    name: &str,
) -> Result<Json, UploadError> {
    let field = parts.next_field().await.map_err(read_error)?;
    let Some(field) = field.filter(|f| f.name() == Some(name)) else {
        return Err(UploadError::Invalid(format!(
            "the multipart request has no `{name}` part where the spec puts it \
             (`operations`, then `map`, then the files)"
        )));
    };
    let bytes = field.bytes().await.map_err(read_error)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| UploadError::Invalid(format!("`{name}` is not valid JSON: {e}")))
}

/// `map` read and checked against the variables: each path must point to a `null`,
/// which is replaced by a placeholder so that `Upload!` variables coerce (the fetch
/// sends `null` there again).
fn files_of(
    map: Json,
    variables: &mut Map<String, Json>,
    max_files: usize,
) -> Result<Vec<(String, Vec<FileTarget>)>, UploadError> {
    let Json::Object(map) = map else {
        return Err(UploadError::Invalid(
            "`map` must be an object of file names to lists of paths".into(),
        ));
    };
    if map.len() > max_files {
        return Err(UploadError::TooLarge(format!(
            "the request has {} files; at most {max_files} are allowed",
            map.len()
        )));
    }
    let mut files = Vec::with_capacity(map.len());
    for (name, paths) in map {
        let Json::Array(paths) = paths else {
            return Err(UploadError::Invalid(format!(
                "`map.{name}` must be a list of paths"
            )));
        };
        if paths.is_empty() {
            return Err(UploadError::Invalid(format!(
                "`map.{name}` names no place for the file"
            )));
        }
        let mut targets = Vec::with_capacity(paths.len());
        for path in paths {
            let text = path.as_str().unwrap_or_default();
            let target = FileTarget::parse(text).ok_or_else(|| {
                UploadError::Invalid(format!(
                    "`map.{name}` has the path {path}; paths look like `variables.file` \
                     or `variables.files.0`"
                ))
            })?;
            match target.locate(variables) {
                Some(slot) if slot.is_null() => *slot = Json::String(format!("<file {name}>")),
                _ => {
                    return Err(UploadError::Invalid(format!(
                        "`map.{name}` points to `{text}`, which is not a `null` in `variables`"
                    )));
                }
            }
            targets.push(target);
        }
        files.push((name, targets));
    }
    Ok(files)
}

/// Gives multer one chunk of the client's body per poll. Its buffer takes everything
/// the stream has ready at once, so with a fast client and a slow subgraph the file
/// would pile up in memory; one chunk per poll keeps the buffer at about a chunk, and
/// the subgraph's pace (through the outgoing body) sets the client's.
struct OneChunkPerPoll<S> {
    inner: S,
    yielded: bool,
}

impl<S: futures::Stream + Unpin> futures::Stream for OneChunkPerPoll<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        if self.yielded {
            self.yielded = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        self.yielded = matches!(next, std::task::Poll::Ready(Some(_)));
        next
    }
}
