//! gRPC services as sources: the source's SDL maps fields to unary RPCs with `@grpc`
//! and subscription fields to server-streaming ones, each message an event (see
//! `docs/sources.md`); descriptors are compiled at start-up from the registered
//! `.proto` files (protox, no system `protoc`, no generated code), calls go through
//! tonic with a codec over dynamic messages, and responses are turned into JSON
//! ([`convert`]) that the local executor maps into the selected fields.
//!
//! Start-up checks everything the descriptors can tell: the service and method exist
//! and stream as the field needs, the request mapping names fields of the request
//! message, `result` paths exist, and every GraphQL field of a type read from a message has a message
//! field behind it (by JSON or proto name, or through `@map(path:)`).

mod codec;
pub mod convert;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apollo_compiler::Name;
use apollo_compiler::schema::ExtendedType;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor,
};
use serde_json::Value as Json;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::local_exec::{
    Batch, Binding, Bound, Connector, Event, Events, FieldError, LocalExecutor, LocalSchema,
    Prepared, Site, StreamConnector,
};
use super::mapping::{CallInput, Mapping, Root, ValueSource, lookup, parse_path, string_arg};
use super::{CallLimits, EventStream, FetchError, Source, SourceRequest, SourceResponse};
use codec::DynamicCodec;

/// Definitions of the gRPC mapping directives, added to a gRPC subgraph's SDL before
/// composition when the SDL does not define them itself.
pub const DIRECTIVES: &str = r#"directive @grpc(service: String!, method: String!, request: String, result: String, batch: String, batchRequest: String, batchResult: String, batchKey: String, batchValue: String) on FIELD_DEFINITION | OBJECT
directive @map(path: String, default: String, fields: String) on FIELD_DEFINITION
"#;

/// What every call of one source shares.
struct Backend {
    endpoint: Endpoint,
    /// Created on first use, inside the runtime (tonic spawns its connection task).
    channel: OnceLock<Channel>,
    limits: CallLimits,
}

impl Backend {
    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }
}

pub struct GrpcSource {
    exec: LocalExecutor,
}

/// A read from a message that start-up checks against a GraphQL type.
struct ShapeCheck {
    coordinate: String,
    graphql_type: Name,
    message: MessageDescriptor,
}

impl GrpcSource {
    /// `tls` applies to an `https://` endpoint (see [`crate::sources::tls::grpc_client_tls`]);
    /// without it, an `https://` endpoint is verified against the system roots. A
    /// plaintext `http://` endpoint ignores it (`upstream.tls` may cover every source).
    pub fn new(
        subgraph: &str,
        url: &str,
        sdl: &str,
        protos: &[PathBuf],
        limits: CallLimits,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Self, Vec<String>> {
        let pool = compile_protos(protos)?;
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| vec![format!("invalid gRPC endpoint {url:?}: {e}")])?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if endpoint.uri().scheme_str() == Some("https") {
            let tls = tls.unwrap_or_else(|| ClientTlsConfig::new().with_native_roots());
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| vec![format!("TLS settings of {url:?}: {e}")])?;
        }
        let backend = Arc::new(Backend {
            endpoint,
            channel: OnceLock::new(),
            limits,
        });
        let mut checks = Vec::new();
        let (mut schema, mut errors) =
            LocalSchema::build(subgraph, sdl, "grpc", |site, directive| {
                binding(&backend, &pool, site, directive, &mut checks)
            });
        let mut visited = HashSet::new();
        for check in checks {
            check_shape(
                &mut schema,
                &check.graphql_type,
                &check.message,
                &check.coordinate,
                &mut visited,
                &mut errors,
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GrpcSource {
            exec: LocalExecutor::new(schema),
        })
    }
}

impl Source for GrpcSource {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        tracing::Span::current().record("kind", "grpc");
        self.exec.fetch(request)
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        tracing::Span::current().record("kind", "grpc");
        self.exec.subscribe(request)
    }
}

/// Compiles the `.proto` files; each file's folder is an include path, and the
/// `google/protobuf/*.proto` well-known types are built in.
pub fn compile_protos(protos: &[PathBuf]) -> Result<DescriptorPool, Vec<String>> {
    if protos.is_empty() {
        return Err(vec![
            "a gRPC source needs at least one .proto file (`protos:`)".into(),
        ]);
    }
    let mut includes: Vec<&Path> = Vec::new();
    let mut files = Vec::new();
    for proto in protos {
        let dir = proto.parent().unwrap_or(Path::new("."));
        if !includes.contains(&dir) {
            includes.push(dir);
        }
        match proto.file_name() {
            Some(name) => files.push(PathBuf::from(name)),
            None => return Err(vec![format!("{} is not a file", proto.display())]),
        }
    }
    let descriptors = protox::compile(&files, &includes).map_err(|e| {
        vec![format!(
            "cannot compile {}: {e}",
            protos
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )]
    })?;
    DescriptorPool::from_file_descriptor_set(descriptors)
        .map_err(|e| vec![format!("invalid descriptors: {e}")])
}

fn binding(
    backend: &Arc<Backend>,
    pool: &DescriptorPool,
    site: &Site<'_>,
    d: &apollo_compiler::ast::Directive,
    checks: &mut Vec<ShapeCheck>,
) -> Result<Bound, Vec<String>> {
    let mut errors = Vec::new();
    let arg = |name: &str| string_arg(d, name);
    let (service, method_name) = match (arg("service"), arg("method")) {
        (Ok(Some(s)), Ok(Some(m))) => (s, m),
        (Err(e), _) | (_, Err(e)) => return Err(vec![e]),
        _ => return Err(vec!["`service` and `method` are required".into()]),
    };
    let Some(service_desc) = pool.get_service_by_name(&service) else {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        return Err(vec![format!(
            "no service `{service}` in the .proto files (services: {})",
            known.join(", ")
        )]);
    };
    // A subscription field reads a server-streaming method, every other field a unary one.
    let method_of = |name: &str, streaming: bool| -> Result<MethodDescriptor, String> {
        let method = service_desc
            .methods()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let known: Vec<String> = service_desc
                    .methods()
                    .map(|m| m.name().to_string())
                    .collect();
                format!(
                    "service {service} has no method `{name}` (methods: {})",
                    known.join(", ")
                )
            })?;
        if method.is_client_streaming() {
            return Err(format!(
                "{service}/{name} streams its requests; only unary and server-streaming methods are supported"
            ));
        }
        match (method.is_server_streaming(), streaming) {
            (false, true) => Err(format!(
                "{service}/{name} is unary; a subscription field needs a server-streaming method"
            )),
            (true, false) => Err(format!(
                "{service}/{name} is server-streaming; only subscription fields can read it"
            )),
            _ => Ok(method),
        }
    };
    let method = match method_of(&method_name, site.is_subscription) {
        Ok(m) => m,
        Err(e) => return Err(vec![e]),
    };
    let request = match arg("request").and_then(|r| r.map(|r| Mapping::parse(&r)).transpose()) {
        Ok(r) => r,
        Err(e) => return Err(vec![format!("request: {e}")]),
    };
    if let Some(request) = &request {
        errors.extend(check_request(request, &method.input(), "request"));
        errors.extend(site.check_vars(request.vars(), false));
    }
    let result = match arg("result").and_then(|r| r.map(|r| parse_path(&r)).transpose()) {
        Ok(r) => r,
        Err(e) => return Err(vec![format!("result: {e}")]),
    };
    let (result, result_message) = match &result {
        None => (None, Some(method.output())),
        Some(path) => match walk(&method.output(), path) {
            Ok((json_path, field)) => (Some(json_path), message_kind(&field)),
            Err(e) => {
                errors.push(format!("result: {e}"));
                (None, None)
            }
        },
    };
    let graphql_type = match site.field {
        Some(field) => field.ty.inner_named_type().clone(),
        None => site.type_name.clone(),
    };
    if let Some(message) = result_message {
        checks.push(ShapeCheck {
            coordinate: site.coordinate.clone(),
            graphql_type: graphql_type.clone(),
            message,
        });
    }
    let single = GrpcCall::new(backend, &method, request, result);
    if site.is_subscription {
        return Bound::stream(d, errors, GrpcStream(single));
    }

    let batch = match arg("batch") {
        Ok(Some(batch_method)) => {
            match batch_of(
                backend,
                site,
                d,
                method_of(&batch_method, false),
                graphql_type,
                checks,
            ) {
                Ok(b) => Some(b),
                Err(list) => {
                    errors.extend(list);
                    None
                }
            }
        }
        Ok(None) => {
            for extra in ["batchRequest", "batchKey", "batchResult", "batchValue"] {
                if d.specified_argument_by_name(extra).is_some() {
                    errors.push(format!("`{extra}` needs `batch`"));
                }
            }
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Binding {
        single: Box::new(single),
        batch,
    }
    .into())
}

fn batch_of(
    backend: &Arc<Backend>,
    site: &Site<'_>,
    d: &apollo_compiler::ast::Directive,
    method: Result<MethodDescriptor, String>,
    graphql_type: Name,
    checks: &mut Vec<ShapeCheck>,
) -> Result<Batch, Vec<String>> {
    let method = method.map_err(|e| vec![format!("batch: {e}")])?;
    let mut errors = Vec::new();
    if site.representation_fields.is_empty() {
        errors.push(
            "`batch` serves entity fields and entity types only (the type needs @key)".into(),
        );
    }
    let path_arg = |name: &str| -> Result<Option<Vec<String>>, String> {
        string_arg(d, name)?
            .map(|p| parse_path(&p).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let request = string_arg(d, "batchRequest")
        .and_then(|r| r.map(|r| Mapping::parse(&r)).transpose())
        .map_err(|e| vec![format!("batchRequest: {e}")])?
        .ok_or_else(|| {
            vec!["`batch` needs `batchRequest`, e.g. \"user_ids: $batch.id\"".to_string()]
        })?;
    errors.extend(check_request(&request, &method.input(), "batchRequest"));
    errors.extend(site.check_vars(request.vars().filter(|v| v.root != Root::This), true));
    if request.vars().any(|v| v.root == Root::This) {
        errors.push(
            "batchRequest: a batch call serves many entities; use $batch.FIELD, not $this".into(),
        );
    }
    let this_path = super::rest::batch_var(request.vars(), &mut errors);
    let (item_key, result, item_value) = match (
        path_arg("batchKey"),
        path_arg("batchResult"),
        path_arg("batchValue"),
    ) {
        (Ok(Some(k)), Ok(Some(r)), Ok(v)) => (k, r, v),
        (Ok(None), _, _) => {
            errors.push("`batch` needs `batchKey`: the field of each returned item that holds the entity key".into());
            return Err(errors);
        }
        (_, Ok(None), _) => {
            errors.push(
                "`batch` needs `batchResult`: the repeated field of the response with the items"
                    .into(),
            );
            return Err(errors);
        }
        (k, r, v) => {
            errors.extend([k.err(), r.err(), v.err()].into_iter().flatten());
            return Err(errors);
        }
    };
    // The items: a repeated message field of the batch response.
    let (result_json, item_message) = match walk(&method.output(), &result) {
        Ok((path, field)) => match message_kind(&field) {
            Some(m) if field.is_list() => (path, m),
            _ => {
                errors.push(format!(
                    "batchResult: `{}` must be a repeated message field",
                    result.join(".")
                ));
                return Err(errors);
            }
        },
        Err(e) => {
            errors.push(format!("batchResult: {e}"));
            return Err(errors);
        }
    };
    let item_key = match walk(&item_message, &item_key) {
        Ok((path, _)) => path,
        Err(e) => {
            errors.push(format!("batchKey: {e}"));
            return Err(errors);
        }
    };
    let item_value = match &item_value {
        None => {
            checks.push(ShapeCheck {
                coordinate: site.coordinate.clone(),
                graphql_type,
                message: item_message,
            });
            None
        }
        Some(path) => match walk(&item_message, path) {
            Ok((json_path, field)) => {
                if let Some(message) = message_kind(&field) {
                    checks.push(ShapeCheck {
                        coordinate: site.coordinate.clone(),
                        graphql_type,
                        message,
                    });
                }
                Some(json_path)
            }
            Err(e) => {
                errors.push(format!("batchValue: {e}"));
                return Err(errors);
            }
        },
    };
    let Some(this_path) = this_path else {
        return Err(errors);
    };
    errors.extend(site.check_vars(
        [&super::mapping::VarRef {
            root: Root::This,
            path: this_path.clone(),
        }],
        false,
    ));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Batch {
        connector: Box::new(GrpcCall::new(
            backend,
            &method,
            Some(request),
            Some(result_json),
        )),
        this_path,
        item_key,
        item_value,
    })
}

/// The message type of a (non-well-known) message field.
fn message_kind(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(m) if !m.full_name().starts_with("google.protobuf.") && !field.is_map() => {
            Some(m)
        }
        _ => None,
    }
}

/// Follows a dotted path of field names (JSON or proto form) through messages; gives the
/// path in JSON form and the last field.
fn walk(
    message: &MessageDescriptor,
    path: &[String],
) -> Result<(Vec<String>, FieldDescriptor), String> {
    let mut current = message.clone();
    let mut json_path = Vec::with_capacity(path.len());
    let mut last = None;
    for (i, segment) in path.iter().enumerate() {
        let field = current
            .get_field_by_json_name(segment)
            .or_else(|| current.get_field_by_name(segment))
            .ok_or_else(|| {
                format!(
                    "message {} has no field `{segment}` (fields: {})",
                    current.full_name(),
                    current
                        .fields()
                        .map(|f| f.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        json_path.push(field.json_name().to_string());
        if i + 1 < path.len() {
            match field.kind() {
                Kind::Message(m) if !field.is_list() => current = m,
                _ => {
                    return Err(format!(
                        "{}.{} is not a single message, so `{}` cannot be read inside it",
                        current.full_name(),
                        field.name(),
                        path[i + 1]
                    ));
                }
            }
        }
        last = Some(field);
    }
    last.map(|f| (json_path, f))
        .ok_or_else(|| "empty path".to_string())
}

/// The request mapping's targets are fields of the request message.
fn check_request(request: &Mapping, input: &MessageDescriptor, what: &str) -> Vec<String> {
    match request {
        Mapping::Whole(ValueSource::Literal(_)) => {
            vec![format!("{what}: map fields, e.g. \"id: $args.id\"")]
        }
        Mapping::Whole(ValueSource::Var(_)) => Vec::new(),
        Mapping::Object(entries) => entries
            .iter()
            .filter_map(|(target, _)| walk(input, target).err())
            .map(|e| format!("{what}: {e}"))
            .collect(),
    }
}

/// Every field of `graphql_type` read from `message` must exist in it; paths are
/// rewritten to the JSON field names the converted messages use.
fn check_shape(
    schema: &mut LocalSchema,
    graphql_type: &Name,
    message: &MessageDescriptor,
    coordinate: &str,
    visited: &mut HashSet<(Name, String)>,
    errors: &mut Vec<String>,
) {
    if !visited.insert((graphql_type.clone(), message.full_name().to_string())) {
        return;
    }
    let Some(ExtendedType::Object(object)) = schema.schema.types.get(graphql_type) else {
        return;
    };
    let fields: Vec<(Name, Name)> = object
        .fields
        .iter()
        .map(|(name, f)| (name.clone(), f.ty.inner_named_type().clone()))
        .collect();
    for (field, field_type) in fields {
        if field.starts_with("__") || schema.has_binding(graphql_type, &field) {
            continue;
        }
        let map = schema.field_map_mut(graphql_type, &field);
        if let Some(fields) = &mut map.fields {
            let Mapping::Object(entries) = fields else {
                continue;
            };
            for (_, source) in entries.iter_mut() {
                if let ValueSource::Var(var) = source
                    && var.root == Root::This
                {
                    match walk(message, &var.path) {
                        Ok((json_path, _)) => var.path = json_path,
                        Err(e) => errors.push(format!(
                            "{graphql_type}.{field} (read by {coordinate}): @map(fields:): {e}"
                        )),
                    }
                }
            }
            continue;
        }
        let path = map.path.clone().unwrap_or_else(|| vec![field.to_string()]);
        match walk(message, &path) {
            Ok((json_path, proto_field)) => {
                if json_path != path {
                    map.path = Some(json_path);
                }
                if let Some(nested) = message_kind(&proto_field) {
                    check_shape(schema, &field_type, &nested, coordinate, visited, errors);
                }
            }
            Err(e) => errors.push(format!(
                "{graphql_type}.{field} (read by {coordinate}): {e}"
            )),
        }
    }
}

/// One RPC described by a `@grpc` directive.
struct GrpcCall {
    backend: Arc<Backend>,
    input: MessageDescriptor,
    output: MessageDescriptor,
    path: PathAndQuery,
    name: String,
    request: Option<Mapping>,
    result: Option<Vec<String>>,
}

impl GrpcCall {
    fn new(
        backend: &Arc<Backend>,
        method: &MethodDescriptor,
        request: Option<Mapping>,
        result: Option<Vec<String>>,
    ) -> Self {
        let name = format!("{}/{}", method.parent_service().full_name(), method.name());
        GrpcCall {
            backend: backend.clone(),
            input: method.input(),
            output: method.output(),
            path: PathAndQuery::from_maybe_shared(format!("/{name}"))
                .unwrap_or_else(|_| PathAndQuery::from_static("/")),
            name,
            request,
            result,
        }
    }
}

impl GrpcCall {
    /// The request message for one call, and its key for deduplication.
    fn message(&self, input: &CallInput<'_>) -> Result<(String, DynamicMessage), FieldError> {
        let json = self
            .request
            .as_ref()
            .and_then(|m| m.build(input))
            .unwrap_or_else(|| Json::Object(Default::default()));
        let key = format!("{} {json}", self.name);
        let message = DynamicMessage::deserialize_with_options(
            self.input.clone(),
            json,
            &DeserializeOptions::new(),
        )
        .map_err(|e| {
            FieldError::invalid_request(format!(
                "cannot build the {} request: {e}",
                self.input.full_name()
            ))
        })?;
        Ok((key, message))
    }

    /// Everything a call's future needs, owned.
    fn start(&self, message: DynamicMessage, headers: &http::HeaderMap) -> Started {
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers.clone());
        Started {
            backend: self.backend.clone(),
            path: self.path.clone(),
            name: self.name.clone(),
            codec: DynamicCodec::new(self.output.clone()),
            result: self.result.clone(),
            request,
        }
    }
}

/// A call ready to be sent.
struct Started {
    backend: Arc<Backend>,
    path: PathAndQuery,
    name: String,
    codec: DynamicCodec,
    result: Option<Vec<String>>,
    request: tonic::Request<DynamicMessage>,
}

/// A client on a channel that is ready to take a call, within the source's timeout
/// (which bounds opening a stream, not its life).
async fn ready(backend: &Backend, name: &str) -> Result<tonic::client::Grpc<Channel>, FieldError> {
    let mut grpc = tonic::client::Grpc::new(backend.channel())
        .max_decoding_message_size(backend.limits.max_response_bytes);
    grpc.ready().await.map_err(|e| {
        FieldError::new(
            "UPSTREAM_GRPC_UNAVAILABLE",
            format!("{name}: UNAVAILABLE: {e}"),
        )
    })?;
    Ok(grpc)
}

/// Runs `call` within the source's timeout.
async fn within<T>(
    timeout: Duration,
    name: &str,
    call: impl Future<Output = Result<T, FieldError>>,
) -> Result<T, FieldError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| deadline_exceeded(name, timeout))?
}

fn deadline_exceeded(name: &str, timeout: Duration) -> FieldError {
    FieldError::new(
        "UPSTREAM_GRPC_DEADLINE_EXCEEDED",
        format!("{name}: DEADLINE_EXCEEDED after {timeout:?}"),
    )
}

/// The JSON a response message gives the field: the whole message or its `result` path.
fn read_result(result: &Option<Vec<String>>, message: &DynamicMessage) -> Json {
    let json = convert::message_to_json(message);
    match result {
        None => json,
        Some(path) => lookup(&json, path).cloned().unwrap_or(Json::Null),
    }
}

impl Connector for GrpcCall {
    fn prepare(
        &self,
        input: &CallInput<'_>,
        headers: &http::HeaderMap,
    ) -> Result<Prepared, FieldError> {
        let (key, message) = self.message(input)?;
        let Started {
            backend,
            path,
            name,
            codec,
            result,
            mut request,
        } = self.start(message, headers);
        let future = async move {
            let timeout = backend.limits.timeout;
            request.set_timeout(timeout);
            let started = tokio::time::Instant::now();
            let response = within(timeout, &name, async {
                let mut grpc = ready(&backend, &name).await?;
                grpc.unary(request, path, codec).await.map_err(|status| {
                    // The channel enforces the `grpc-timeout` it sends too, as CANCELLED,
                    // racing the timer above.
                    if status.code() == tonic::Code::Cancelled && started.elapsed() >= timeout {
                        deadline_exceeded(&name, timeout)
                    } else {
                        status_error(&name, &status)
                    }
                })
            })
            .await?;
            Ok(read_result(&result, response.get_ref()))
        };
        Ok(Prepared {
            key,
            future: Box::pin(future),
        })
    }
}

/// A server-streaming RPC behind a subscription field: each message is one event, a
/// non-OK status ends the stream with that error. The source's timeout bounds opening
/// the call, not its life.
struct GrpcStream(GrpcCall);

impl StreamConnector for GrpcStream {
    fn open(
        &self,
        input: &CallInput<'_>,
        headers: &http::HeaderMap,
    ) -> BoxFuture<'static, Result<Events, FieldError>> {
        let Started {
            backend,
            path,
            name,
            codec,
            result,
            request,
        } = match self.0.message(input) {
            Ok((_, message)) => self.0.start(message, headers),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move {
            let response = within(backend.limits.timeout, &name, async {
                let mut grpc = ready(&backend, &name).await?;
                grpc.server_streaming(request, path, codec)
                    .await
                    .map_err(|status| status_error(&name, &status))
            })
            .await?;
            let events = response.into_inner().map(move |item| match item {
                Ok(message) => Ok(Event::Value(read_result(&result, &message))),
                // A status with a cause was made by the client from a broken transport,
                // not sent by the service: the stream may be reopened.
                Err(status)
                    if status.code() == tonic::Code::Unknown
                        && std::error::Error::source(&status).is_some() =>
                {
                    Err(FieldError::new(
                        "UPSTREAM_GRPC_UNAVAILABLE",
                        format!(
                            "{name}: UNAVAILABLE: the stream broke off ({})",
                            status.message()
                        ),
                    ))
                }
                Err(status) => Err(status_error(&name, &status)),
            });
            Ok(events.boxed())
        })
    }
}

fn status_error(method: &str, status: &tonic::Status) -> FieldError {
    let name = code_name(status.code());
    FieldError::new(
        format!("UPSTREAM_GRPC_{name}"),
        format!("{method}: {name}: {}", status.message()),
    )
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
