//! gRPC on the `http://` and `https://` listeners: a request whose
//! `content-type` is `application/grpc` (or `application/grpc+…`) is
//! handed here instead of to the reflection. tonic runs the services
//! without its own transport: hyper already serves the connection, with
//! its limits, counters, graceful shutdown and `--http-max-age`.
//!
//! | module | what it holds |
//! | --- | --- |
//! | `generated` | the code made from `proto/` (checked in), and its descriptors |
//! | `testing` | `grpc.testing.TestService`, gRPC's interop service |
//! | `ping` | fortio's `fgrpc.PingServer` |
//! | `health` | `grpc.health.v1.Health` over the server's serving switch |
//! | `context` | the limits a call is held to, and what it is told of its connection |
//! | `call` | one call's bodies: counted, its echoed metadata added |
//!
//! Server reflection (v1 and v1alpha, tonic-reflection) lists every
//! service here, so grpcurl, ghz and k6 need no `.proto` files. A method
//! or service that does not exist gets `UNIMPLEMENTED`; a message over
//! `--http-max-body` gets `RESOURCE_EXHAUSTED` and malformed framing
//! `INTERNAL` (tonic's answers), never unbounded memory.

mod call;
mod context;
pub mod generated;
mod health;
mod ping;
mod testing;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response};
use tonic::codegen::Service as _;
use tonic::server::NamedService;

use crate::metrics::Metrics;
use crate::serving::Serving;
use crate::shutdown::ShutdownHandle;

use generated::fgrpc::ping_server_server::PingServerServer;
use generated::testing::test_service_server::TestServiceServer;
use tonic_health::pb::health_server::HealthServer;

pub(crate) use call::AnswerBody;
pub(crate) use context::Limits;
use context::Served;

/// A call's request, as the services get it.
type CallRequest = Request<call::Counted<Incoming>>;

/// A service whose type cannot be named, called through a box.
type Dispatch =
    Box<dyn Fn(CallRequest) -> BoxFuture<'static, Response<tonic::body::Body>> + Send + Sync>;

/// Boxes a service as a [`Dispatch`].
fn dispatch<S>(service: S) -> Dispatch
where
    S: tonic::codegen::Service<
            CallRequest,
            Response = Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    Box::new(move |req| {
        let call = service.clone().call(req);
        Box::pin(async move {
            match call.await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    })
}

/// Every gRPC service of a server, shared by its HTTP connections.
pub(crate) struct Grpc {
    testing: TestServiceServer<testing::Interop>,
    ping: PingServerServer<ping::Ping>,
    health: HealthServer<health::HealthService>,
    /// Server reflection, v1 and v1alpha (their types cannot be named).
    reflection_v1: Option<Dispatch>,
    reflection_v1alpha: Option<Dispatch>,
    metrics: Arc<Metrics>,
    /// The server's `--name`, for `fill_server_id`.
    name: Arc<str>,
}

impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc").finish_non_exhaustive()
    }
}

/// Whether a request is a gRPC call (`application/grpc`, or a subtype
/// such as `application/grpc+proto`; gRPC-Web is not gRPC).
pub(crate) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t == "application/grpc"
                || t.starts_with("application/grpc+")
                || t.starts_with("application/grpc;")
        })
}

impl Grpc {
    /// The services of the server called `name`, held to `limits`,
    /// reporting `serving`, counted in `metrics`; health watches end at
    /// `shutdown`.
    pub fn new(
        name: &str,
        limits: Limits,
        serving: Arc<Serving>,
        metrics: Arc<Metrics>,
        shutdown: ShutdownHandle,
    ) -> Grpc {
        let max = limits.max_message;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(generated::DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        Grpc {
            testing: TestServiceServer::new(testing::Interop::new(limits))
                .max_decoding_message_size(max),
            ping: PingServerServer::new(ping::Ping::new(limits)).max_decoding_message_size(max),
            health: HealthServer::new(health::HealthService::new(
                serving,
                shutdown,
                &[
                    TestServiceServer::<testing::Interop>::NAME,
                    PingServerServer::<ping::Ping>::NAME,
                    HealthServer::<health::HealthService>::NAME,
                ],
            ))
            .max_decoding_message_size(max),
            // The descriptors are this crate's own (a unit test builds
            // them); were they broken, reflection would be UNIMPLEMENTED.
            reflection_v1: reflection()
                .build_v1()
                .ok()
                .map(|s| dispatch(s.max_decoding_message_size(max))),
            reflection_v1alpha: reflection()
                .build_v1alpha()
                .ok()
                .map(|s| dispatch(s.max_decoding_message_size(max))),
            metrics,
            name: name.into(),
        }
    }

    /// Answers one gRPC call, on a connection served by `shard`.
    pub async fn call(&self, mut req: Request<Incoming>, shard: usize) -> Response<AnswerBody> {
        let metrics = &self.metrics;
        let served = Served {
            name: self.name.clone(),
            shard,
            asked_status: Arc::default(),
        };
        let echo = call::Echoed::from_request(req.headers());
        let asked = served.asked_status.clone();
        req.extensions_mut().insert(served);
        let req = req.map(|b| call::Counted::new(b, metrics.clone()));
        let path = req.uri().path();
        let service = path
            .get(1..)
            .and_then(|p| p.split_once('/'))
            .map(|(s, _)| s);
        let response = match service {
            Some(TestServiceServer::<testing::Interop>::NAME) => {
                self.testing.clone().call(req).await
            }
            Some(PingServerServer::<ping::Ping>::NAME) => self.ping.clone().call(req).await,
            Some(HealthServer::<health::HealthService>::NAME) => {
                self.health.clone().call(req).await
            }
            Some("grpc.reflection.v1.ServerReflection") => match &self.reflection_v1 {
                Some(s) => Ok(s(req).await),
                None => Ok(unimplemented(path)),
            },
            Some("grpc.reflection.v1alpha.ServerReflection") => match &self.reflection_v1alpha {
                Some(s) => Ok(s(req).await),
                None => Ok(unimplemented(path)),
            },
            _ => Ok(unimplemented(path)),
        };
        let response = match response {
            Ok(r) => r,
            Err(never) => match never {},
        };
        call::answer(response, echo, asked, metrics.clone())
    }
}

/// `UNIMPLEMENTED`, for a method or service that is not here.
fn unimplemented(path: &str) -> Response<tonic::body::Body> {
    tonic::Status::unimplemented(format!("echoes serves no gRPC method {path}")).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(t: &str) -> Request<()> {
        Request::builder()
            .header(header::CONTENT_TYPE, t)
            .body(())
            .unwrap()
    }

    #[test]
    fn grpc_is_told_by_its_content_type() {
        for t in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;x=1",
        ] {
            assert!(is_grpc(&with_type(t)), "{t}");
        }
        for t in [
            "application/grpc-web",
            "application/json",
            "application/grpcx",
        ] {
            assert!(!is_grpc(&with_type(t)), "{t}");
        }
        assert!(!is_grpc(&Request::new(())));
    }

    /// The checked-in descriptors decode and list every service, so
    /// reflection is served (were they broken, it would not be).
    #[test]
    fn reflection_is_built_from_the_descriptors() {
        let limits = Limits {
            max_message: 1 << 20,
            max_response: 1 << 20,
            max_delay: std::time::Duration::from_secs(1),
        };
        let grpc = Grpc::new(
            "t",
            limits,
            Arc::default(),
            Arc::default(),
            ShutdownHandle::new(),
        );
        assert!(grpc.reflection_v1.is_some() && grpc.reflection_v1alpha.is_some());
        let has = |name: &str| {
            generated::DESCRIPTOR_SET
                .windows(name.len())
                .any(|w| w == name.as_bytes())
        };
        for name in ["TestService", "PingServer", "StreamingOutputCallRequest"] {
            assert!(has(name), "{name} is not in the descriptors");
        }
    }
}
