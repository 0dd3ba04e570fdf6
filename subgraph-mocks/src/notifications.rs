//! The gRPC `notifications` service (tonic, unary calls and the server-streaming
//! `StreamNotifications`, served by the same hyper
//! connections as the other mocks, HTTP/2 with prior knowledge), implementing
//! `schemas/protos/notifications.proto` with hand-written prost messages (no codegen).
//!
//! User `u` has `2 + u % 2` notifications, newest first. Values exercise the mapping edge
//! cases: `sequence` and `size_bytes` beyond 2^53, a `Timestamp` with nanoseconds, an enum,
//! `action_url` and `order_id` set only on the first notification of each user (an optional
//! field otherwise missing), nested repeated `links[].targets`, and `bytes`.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use async_graphql::futures_util::{self as futures_util, StreamExt};

use crate::conn::ConnHandle;
use crate::data::data;
use crate::events::LiveEvents;
use crate::service_state::{ServicesShared, Verdict};

/// The fully qualified service name.
pub const SERVICE: &str = "notifications.v1.Notifications";

/// `notifications.v1.Channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Channel {
    /// `CHANNEL_UNSPECIFIED`
    Unspecified = 0,
    /// `EMAIL`
    Email = 1,
    /// `PUSH`
    Push = 2,
    /// `SMS`
    Sms = 3,
}

/// `notifications.v1.Notification`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notification {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub user_id: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(enumeration = "Channel", tag = "4")]
    pub channel: i32,
    #[prost(message, optional, tag = "5")]
    pub created_at: Option<prost_types::Timestamp>,
    #[prost(bool, tag = "6")]
    pub read: bool,
    #[prost(int64, tag = "7")]
    pub sequence: i64,
    #[prost(uint64, tag = "8")]
    pub size_bytes: u64,
    #[prost(string, optional, tag = "9")]
    pub action_url: Option<String>,
    #[prost(message, repeated, tag = "10")]
    pub links: Vec<Link>,
    #[prost(bytes = "vec", tag = "11")]
    pub payload: Vec<u8>,
    #[prost(string, optional, tag = "12")]
    pub order_id: Option<String>,
}

/// `notifications.v1.Link`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Link {
    #[prost(string, tag = "1")]
    pub label: String,
    #[prost(string, repeated, tag = "2")]
    pub targets: Vec<String>,
}

/// `notifications.v1.ListNotificationsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNotificationsRequest {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(int32, tag = "2")]
    pub limit: i32,
    #[prost(bool, tag = "3")]
    pub unread_only: bool,
}

/// `notifications.v1.ListNotificationsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNotificationsResponse {
    #[prost(message, repeated, tag = "1")]
    pub notifications: Vec<Notification>,
}

/// `notifications.v1.BatchListNotificationsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchListNotificationsRequest {
    #[prost(string, repeated, tag = "1")]
    pub user_ids: Vec<String>,
    #[prost(int32, tag = "2")]
    pub limit: i32,
    #[prost(bool, tag = "3")]
    pub unread_only: bool,
}

/// `notifications.v1.BatchListNotificationsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchListNotificationsResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<UserNotifications>,
}

/// `notifications.v1.UserNotifications`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserNotifications {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(message, repeated, tag = "2")]
    pub notifications: Vec<Notification>,
}

/// `notifications.v1.GetNotificationRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetNotificationRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `notifications.v1.StreamNotificationsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamNotificationsRequest {
    #[prost(string, tag = "1")]
    pub user_id: String,
}

/// The first `sequence` value: 2^53 + 1, not representable as an f64.
pub const FIRST_SEQUENCE: i64 = 9_007_199_254_740_993;

/// All notifications, by user, newest first.
pub fn notifications() -> &'static [Notification] {
    static ALL: LazyLock<Vec<Notification>> = LazyLock::new(|| {
        let d = data();
        let mut out = Vec::new();
        for (ui, user) in d.users.iter().enumerate() {
            let u = ui + 1;
            let first_order = crate::orders::orders_of(&user.id)
                .first()
                .map(|o| o.id.clone());
            for k in 0..(2 + u % 2) {
                let channel = [Channel::Email, Channel::Push, Channel::Sms][(u + k) % 3];
                out.push(Notification {
                    id: format!("n-{u}-{k}"),
                    user_id: user.id.clone(),
                    title: format!("Hello {}, update #{k}", user.username),
                    channel: channel as i32,
                    created_at: Some(prost_types::Timestamp {
                        seconds: 1_714_000_000 + (u as i64) * 3600 - (k as i64) * 60,
                        nanos: if k == 0 { 123_456_789 } else { 0 },
                    }),
                    read: k % 2 == 1,
                    sequence: FIRST_SEQUENCE + (u as i64) * 10 + k as i64,
                    size_bytes: u64::MAX - (u as u64) * 10 - k as u64,
                    action_url: (k == 0).then(|| format!("https://example.com/n/{u}")),
                    links: if k == 0 {
                        vec![
                            Link {
                                label: "open".into(),
                                targets: vec![
                                    format!("app://n/{u}"),
                                    format!("https://example.com/n/{u}"),
                                ],
                            },
                            Link {
                                label: "mute".into(),
                                targets: vec![],
                            },
                        ]
                    } else {
                        vec![]
                    },
                    payload: vec![u as u8, k as u8, 0xff],
                    order_id: if k == 0 { first_order.clone() } else { None },
                });
            }
        }
        out
    });
    &ALL
}

fn list_for(user_id: &str, limit: i32, unread_only: bool) -> Vec<Notification> {
    let limit = if limit > 0 {
        limit as usize
    } else {
        usize::MAX
    };
    notifications()
        .iter()
        .filter(|n| n.user_id == user_id && !(unread_only && n.read))
        .take(limit)
        .cloned()
        .collect()
}

/// The service alone, with state of its own (no faults, counters not visible): for
/// serving it on a listener of the caller's, e.g. over TLS. Any axum-compatible HTTP/2
/// server will do; gRPC clients need HTTP/2.
pub fn standalone_router() -> Router {
    router(
        Arc::new(ServicesShared::default()),
        Arc::new(notification_events_source()),
    )
}

/// The source of `StreamNotifications`.
pub(crate) type NotificationEvents = LiveEvents<Notification>;

pub(crate) fn notification_events_source() -> NotificationEvents {
    LiveEvents::new(|id| notifications().iter().find(|n| n.id == id).cloned())
}

pub(crate) fn router(shared: Arc<ServicesShared>, events: Arc<NotificationEvents>) -> Router {
    Router::new()
        .route(&format!("/{SERVICE}/{{method}}"), post(call))
        .with_state(shared.clone())
        .merge(
            Router::new()
                .route(
                    &format!("/{SERVICE}/StreamNotifications"),
                    post(stream_notifications),
                )
                .with_state((shared, events)),
        )
}

async fn call(
    State(s): State<Arc<ServicesShared>>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    match method.as_str() {
        "ListNotifications" => {
            unary(
                s,
                req,
                "ListNotifications",
                |_| None,
                |r: ListNotificationsRequest| {
                    Ok(ListNotificationsResponse {
                        notifications: list_for(&r.user_id, r.limit, r.unread_only),
                    })
                },
            )
            .await
        }
        "BatchListNotifications" => {
            unary(
                s,
                req,
                "BatchListNotifications",
                |r: &BatchListNotificationsRequest| Some(r.user_ids.len()),
                |r: BatchListNotificationsRequest| {
                    Ok(BatchListNotificationsResponse {
                        results: r
                            .user_ids
                            .iter()
                            .map(|u| UserNotifications {
                                user_id: u.clone(),
                                notifications: list_for(u, r.limit, r.unread_only),
                            })
                            .collect(),
                    })
                },
            )
            .await
        }
        "GetNotification" => {
            unary(
                s,
                req,
                "GetNotification",
                |_| None,
                |r: GetNotificationRequest| {
                    notifications()
                        .iter()
                        .find(|n| n.id == r.id)
                        .cloned()
                        .ok_or_else(|| Status::not_found(format!("no notification {}", r.id)))
                },
            )
            .await
        }
        other => Status::unimplemented(format!("no method {other}"))
            .into_http::<tonic::body::Body>()
            .map(axum::body::Body::new),
    }
}

/// Serves one unary call: decode, count and apply faults, answer.
async fn unary<Req, Resp>(
    s: Arc<ServicesShared>,
    req: Request,
    endpoint: &'static str,
    keys: impl Fn(&Req) -> Option<usize> + Send + 'static,
    answer: impl Fn(Req) -> Result<Resp, Status> + Send + Clone + 'static,
) -> Response
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let svc = tower::service_fn(move |request: tonic::Request<Req>| {
        let s = s.clone();
        let keys = keys(request.get_ref());
        let answer = answer.clone();
        async move {
            let reply = match refusal(s.notifications.guard(endpoint, keys).await)? {
                Some(garbage) => garbage,
                None => Reply::Message(answer(request.into_inner())?),
            };
            Ok(tonic::Response::new(reply))
        }
    });
    let mut grpc = tonic::server::Grpc::new(ReplyCodec::<Req, Resp>::default());
    grpc.unary(svc, req).await.map(axum::body::Body::new)
}

/// What a fault makes of a call: an error status, a garbage answer (`Some`), or
/// nothing (`None`: serve it).
fn refusal<M>(verdict: Verdict) -> Result<Option<Reply<M>>, Status> {
    match verdict {
        Verdict::Serve => Ok(None),
        Verdict::Down => Err(Status::unavailable("injected: notifications is down")),
        Verdict::GateTimeout => Err(Status::deadline_exceeded(
            "gate timed out: the calls did not arrive together",
        )),
        Verdict::Error => Err(Status::internal("injected error (notifications)")),
        Verdict::Garbage => Ok(Some(Reply::Garbage)),
    }
}

/// `StreamNotifications`: the requested user's notifications from the live source
/// ([`crate::events`]). A failure ends the stream with `INTERNAL` (gRPC has no error
/// events), a completion with `OK`, a disconnect drops the connection.
async fn stream_notifications(
    State((s, live)): State<(Arc<ServicesShared>, Arc<NotificationEvents>)>,
    req: Request,
) -> Response {
    let conn = req.extensions().get::<ConnHandle>().cloned();
    let svc = tower::service_fn(move |request: tonic::Request<StreamNotificationsRequest>| {
        let (s, live, conn) = (s.clone(), live.clone(), conn.clone());
        async move {
            let first = refusal(s.notifications.guard("StreamNotifications", None).await)?;
            live.note_connection(&request.metadata().clone().into_headers());
            let user = request.into_inner().user_id;
            let events = live
                .stream(conn)
                .filter_map(move |event| {
                    std::future::ready(match event {
                        Ok(n) if n.user_id == user => Some(Ok(Reply::Message(n))),
                        Ok(_) => None,
                        Err(message) => Some(Err(Status::internal(message))),
                    })
                })
                .scan(false, |failed, item| {
                    // Nothing after the status that ends the call.
                    let next = (!*failed).then_some(item);
                    *failed = matches!(next, Some(Err(_)));
                    std::future::ready(next)
                });
            let stream = futures_util::stream::iter(first.map(Ok)).chain(events);
            Ok::<_, Status>(tonic::Response::new(stream.boxed()))
        }
    });
    let mut grpc =
        tonic::server::Grpc::new(ReplyCodec::<StreamNotificationsRequest, Notification>::default());
    grpc.server_streaming(svc, req)
        .await
        .map(axum::body::Body::new)
}

/// One unary call of any gRPC service, answered by `answer`: a gRPC peer for tests
/// that need one of their own (route it at `/{package.Service}/{Method}` and serve it
/// with [`crate::conn::serve_router`]).
pub async fn unary_with<Req, Resp>(
    req: Request,
    answer: impl Fn(Req) -> Resp + Send + Clone + 'static,
) -> Response
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let svc = tower::service_fn(move |request: tonic::Request<Req>| {
        let answer = answer.clone();
        async move {
            Ok::<_, Status>(tonic::Response::new(Reply::Message(answer(
                request.into_inner(),
            ))))
        }
    });
    let mut grpc = tonic::server::Grpc::new(ReplyCodec::<Req, Resp>::default());
    grpc.unary(svc, req).await.map(axum::body::Body::new)
}

/// Bytes that are not a valid protobuf message of any of these types.
const GARBAGE: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];

/// An answer: a message, or garbage bytes (the `graphql_error_rate` fault).
enum Reply<M> {
    Message(M),
    Garbage,
}

/// Decodes requests with prost, encodes a [`Reply`].
struct ReplyCodec<Req, Resp>(std::marker::PhantomData<(Req, Resp)>);

impl<Req, Resp> Default for ReplyCodec<Req, Resp> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<Req, Resp> Codec for ReplyCodec<Req, Resp>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    type Encode = Reply<Resp>;
    type Decode = Req;
    type Encoder = ReplyEncoder<Resp>;
    type Decoder = RequestDecoder<Req>;

    fn encoder(&mut self) -> Self::Encoder {
        ReplyEncoder(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(std::marker::PhantomData)
    }
}

struct ReplyEncoder<M>(std::marker::PhantomData<M>);

impl<M: prost::Message> Encoder for ReplyEncoder<M> {
    type Item = Reply<M>;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        match item {
            Reply::Message(m) => m.encode(dst).map_err(|e| Status::internal(e.to_string())),
            Reply::Garbage => {
                prost::bytes::BufMut::put_slice(dst, GARBAGE);
                Ok(())
            }
        }
    }
}

struct RequestDecoder<M>(std::marker::PhantomData<M>);

impl<M: prost::Message + Default> Decoder for RequestDecoder<M> {
    type Item = M;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        M::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }
}
