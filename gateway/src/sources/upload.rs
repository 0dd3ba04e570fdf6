//! File uploads (the GraphQL multipart request spec) on their way to a subgraph. The
//! ingress reads a request's `operations` and `map` parts; the file parts stay in the
//! client's body until the one fetch whose variables hold them forwards them, part by
//! part as they arrive, in a multipart request of its own: a file is never held whole.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value as Json};

use super::{FetchError, Variables};

/// Why an upload request was refused; the ingress maps it to the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The request breaks the multipart request spec (400).
    #[error("{0}")]
    Invalid(String),
    /// Over a configured limit (413).
    #[error("{0}")]
    TooLarge(String),
}

/// One place a file goes: `variables.files.1` is the variable `files`, then `1`.
#[derive(Debug, Clone)]
pub struct FileTarget {
    pub variable: String,
    /// Object keys or list indexes below the variable.
    pub steps: Vec<String>,
}

impl FileTarget {
    /// Parse a `map` path (`variables.<name>[.<key or index>...]`).
    pub fn parse(path: &str) -> Option<FileTarget> {
        let mut segments = path.split('.');
        if segments.next() != Some("variables") {
            return None;
        }
        let variable = segments.next().filter(|s| !s.is_empty())?.to_string();
        let steps: Vec<String> = segments.map(str::to_string).collect();
        if steps.iter().any(String::is_empty) {
            return None;
        }
        Some(FileTarget { variable, steps })
    }

    /// The value this target points to in `variables`.
    pub fn locate<'v>(&self, variables: &'v mut Map<String, Json>) -> Option<&'v mut Json> {
        let mut at = variables.get_mut(&self.variable)?;
        for step in &self.steps {
            at = match at {
                Json::Object(object) => object.get_mut(step)?,
                Json::Array(items) => items.get_mut(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    fn path(&self) -> String {
        let mut path = format!("variables.{}", self.variable);
        for step in &self.steps {
            path.push('.');
            path.push_str(step);
        }
        path
    }
}

/// The files of one request: where each goes, and the rest of the client's body.
pub struct Uploads {
    /// `map` in the client's order: a file part's name and the places it goes.
    map: Vec<(String, Vec<FileTarget>)>,
    /// Taken by the first fetch that sends files; nobody can read them twice.
    parts: Mutex<Option<multer::Multipart<'static>>>,
    max_total_bytes: u64,
    failure: Mutex<Option<UploadError>>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("files", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Uploads {
    pub fn new(
        map: Vec<(String, Vec<FileTarget>)>,
        parts: multer::Multipart<'static>,
        max_total_bytes: u64,
    ) -> Self {
        Uploads {
            map,
            parts: Mutex::new(Some(parts)),
            max_total_bytes,
            failure: Mutex::new(None),
        }
    }

    /// Whether a fetch with these variables carries files.
    pub fn used_by<S: AsRef<str>>(&self, variables: &[S]) -> bool {
        self.map.iter().any(|(_, targets)| {
            targets
                .iter()
                .any(|t| variables.iter().any(|v| v.as_ref() == t.variable))
        })
    }

    /// Why the files could not be sent, once a fetch tried: the request's answer is
    /// then this error, not the fetch's outcome.
    pub fn failure(&self) -> Option<UploadError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fail(&self, error: UploadError) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(error);
    }

    /// The multipart request for a fetch with these variables: its content type and
    /// its body, whose `operations` part is `operations(variables)` with `null` where
    /// the files go (as the spec has it). The body streams the client's file parts.
    pub fn request_body(
        self: &Arc<Self>,
        variables: &Variables,
        operations: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<(String, reqwest::Body), FetchError> {
        let parts = self
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| FetchError::Upstream {
                code: "UPLOAD_ALREADY_SENT".into(),
                message: "the request's files went to another fetch: files can go to one \
                          subgraph request per operation"
                    .into(),
                retryable: false,
            })?;
        let mut values = variables.to_map();
        let mut map = Map::new();
        let mut wanted = HashSet::new();
        for (name, targets) in &self.map {
            let mut paths = Vec::new();
            for target in targets {
                if let Some(slot) = target.locate(&mut values) {
                    *slot = Json::Null;
                    paths.push(Json::String(target.path()));
                }
            }
            if !paths.is_empty() {
                wanted.insert(name.clone());
                map.insert(name.clone(), Json::Array(paths));
            }
        }
        let boundary = boundary();
        let mut head = Vec::new();
        let mut part = |name: &str, body: &[u8]| {
            head.extend_from_slice(
                part_head(&boundary, name, None, Some("application/json")).as_ref(),
            );
            head.extend_from_slice(body);
            head.extend_from_slice(b"\r\n");
        };
        part(
            "operations",
            &operations(Variables::from_map(&values).as_bytes()),
        );
        part("map", Json::Object(map).to_string().as_bytes());
        let forward = Forward {
            uploads: self.clone(),
            parts,
            field: None,
            wanted,
            seen: HashSet::new(),
            total: 0,
            boundary: boundary.clone(),
            finished: false,
        };
        let files = futures::stream::unfold(Some(forward), |state| async move {
            let mut forward = state?;
            match forward.step().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(forward))),
                Ok(None) => None,
                Err(error) => {
                    forward.uploads.fail(error.clone());
                    Some((Err(std::io::Error::other(error)), None))
                }
            }
        });
        let body = futures::stream::once(async move { Ok(Bytes::from(head)) }).chain(files);
        Ok((
            format!("multipart/form-data; boundary={boundary}"),
            reqwest::Body::wrap_stream(body),
        ))
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.map.iter().map(|(name, _)| name.as_str())
    }
}

/// The client's file parts, forwarded (the fetch's) or read past (files of variables the
/// fetch does not have), every one checked against `map` and the size limit.
struct Forward {
    uploads: Arc<Uploads>,
    parts: multer::Multipart<'static>,
    /// The part being read, and whether it is forwarded.
    field: Option<(multer::Field<'static>, bool)>,
    wanted: HashSet<String>,
    seen: HashSet<String>,
    total: u64,
    boundary: String,
    finished: bool,
}

impl Forward {
    /// The next bytes of the outgoing body; `None` after the closing boundary.
    async fn step(&mut self) -> Result<Option<Bytes>, UploadError> {
        loop {
            if let Some((field, forwarded)) = &mut self.field {
                match field.chunk().await.map_err(read_error)? {
                    Some(chunk) => {
                        self.total += chunk.len() as u64;
                        if self.total > self.uploads.max_total_bytes {
                            return Err(UploadError::TooLarge(format!(
                                "the files are larger than {} bytes together",
                                self.uploads.max_total_bytes
                            )));
                        }
                        if *forwarded {
                            return Ok(Some(chunk));
                        }
                    }
                    None => {
                        let forwarded = *forwarded;
                        self.field = None;
                        if forwarded {
                            return Ok(Some(Bytes::from_static(b"\r\n")));
                        }
                    }
                }
                continue;
            }
            if self.finished {
                return Ok(None);
            }
            let Some(field) = self.parts.next_field().await.map_err(read_error)? else {
                if let Some(missing) = self.uploads.names().find(|n| !self.seen.contains(*n)) {
                    return Err(UploadError::Invalid(format!(
                        "`map` names the file `{missing}`, which the request does not have"
                    )));
                }
                self.finished = true;
                return Ok(Some(Bytes::from(format!("--{}--\r\n", self.boundary))));
            };
            let name = field.name().unwrap_or_default().to_string();
            if !self.uploads.names().any(|n| n == name) {
                return Err(UploadError::Invalid(format!(
                    "the request has a file `{name}` that `map` does not name"
                )));
            }
            if !self.seen.insert(name.clone()) {
                return Err(UploadError::Invalid(format!(
                    "the request has the file `{name}` twice"
                )));
            }
            let forwarded = self.wanted.contains(&name);
            let head = forwarded.then(|| {
                let content_type = field.content_type().map(ToString::to_string);
                part_head(
                    &self.boundary,
                    &name,
                    Some(field.file_name().unwrap_or(&name)),
                    Some(
                        content_type
                            .as_deref()
                            .unwrap_or("application/octet-stream"),
                    ),
                )
            });
            self.field = Some((field, forwarded));
            if let Some(head) = head {
                return Ok(Some(head));
            }
        }
    }
}

/// A client body that breaks off or overruns a limit.
pub fn read_error(error: multer::Error) -> UploadError {
    match error {
        multer::Error::FieldSizeExceeded { limit, field_name } => UploadError::TooLarge(format!(
            "the part `{}` is larger than {limit} bytes",
            field_name.unwrap_or_default()
        )),
        multer::Error::StreamSizeExceeded { limit } => {
            UploadError::TooLarge(format!("the request body is larger than {limit} bytes"))
        }
        other => UploadError::Invalid(format!("the multipart body is malformed: {other}")),
    }
}

/// `--boundary` and the part's headers; quotes and line breaks in names are
/// percent-encoded, as browsers do.
fn part_head(
    boundary: &str,
    name: &str,
    file_name: Option<&str>,
    content_type: Option<&str>,
) -> Bytes {
    let quote = |s: &str| {
        s.replace('"', "%22")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
        quote(name)
    );
    if let Some(file_name) = file_name {
        head.push_str(&format!("; filename=\"{}\"", quote(file_name)));
    }
    head.push_str("\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {}\r\n", quote(content_type)));
    }
    head.push_str("\r\n");
    Bytes::from(head)
}

/// A boundary no file is likely to contain: 128 random bits.
fn boundary() -> String {
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("----gateway-{:016x}{:016x}", random(), random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_map_paths() {
        let target = FileTarget::parse("variables.files.1").map(|t| (t.variable, t.steps));
        assert_eq!(target, Some(("files".into(), vec!["1".into()])));
        assert!(FileTarget::parse("variables").is_none());
        assert!(FileTarget::parse("query.x").is_none());
        assert!(FileTarget::parse("variables..x").is_none());
        let mut values = serde_json::json!({"files": [null, null], "input": {"doc": null}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (path, found) in [
            ("variables.files.1", true),
            ("variables.files.2", false),
            ("variables.input.doc", true),
            ("variables.input.doc.x", false),
            ("variables.other", false),
        ] {
            let target = FileTarget::parse(path);
            assert_eq!(
                target
                    .and_then(|t| t.locate(&mut values).map(|_| ()))
                    .is_some(),
                found,
                "{path}"
            );
        }
    }
}
