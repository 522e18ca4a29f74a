//! `grpc.testing.TestService`, gRPC's interop service, with the
//! behaviours of gRPC's interop test descriptions: payloads of
//! `response_size` zeros, `response_status` answered, `interval_us`
//! waited, `fill_server_id` and `fill_username` answered (with the
//! server's `--name` and shard), and `UnimplementedCall` refused. The
//! echoed metadata is added around the service (`call`).
//!
//! Every size and wait a call asks for is held to the server's limits
//! ([`Limits`]): a call that asks for more gets `INVALID_ARGUMENT`, and
//! `HalfDuplexCall`, which must hold its requests until the client is
//! done, holds no more than one message's worth of them.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use tonic::{Code, Request, Response, Status, Streaming};

use super::context::{Limits, MAX_RESPONSE_MESSAGE, Served};
use super::generated::testing::test_service_server::TestService;
use super::generated::testing::{
    EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// The zeros every payload is cut from: a payload is a slice of this,
/// never an allocation.
static ZEROS: [u8; MAX_RESPONSE_MESSAGE] = [0; MAX_RESPONSE_MESSAGE];

/// A stream of answers.
type Answers = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// The interop service, held to the server's limits.
#[derive(Debug)]
pub struct Interop {
    limits: Limits,
}

impl Interop {
    /// The service, held to `limits`.
    pub fn new(limits: Limits) -> Interop {
        Interop { limits }
    }

    /// A payload of `size` zeros, if the limits allow it.
    fn payload(&self, size: i32) -> Result<Payload, Status> {
        let max = self.limits.max_response.min(MAX_RESPONSE_MESSAGE);
        match usize::try_from(size) {
            Ok(n) if n <= max => Ok(Payload {
                r#type: 0,
                body: Bytes::from_static(&ZEROS[..n]),
            }),
            _ => Err(Status::invalid_argument(format!(
                "response size {size} is not within 0 and this server's limit of {max} bytes"
            ))),
        }
    }

    /// The wait before an answer, if the limits allow it.
    fn interval(&self, micros: i32) -> Result<Duration, Status> {
        let wait = Duration::from_micros(u64::try_from(micros).unwrap_or(0));
        if micros < 0 || wait > self.limits.max_delay {
            return Err(Status::invalid_argument(format!(
                "interval_us {micros} is not within 0 and this server's --http-max-delay"
            )));
        }
        Ok(wait)
    }

    /// Checks one request's parameters, so that a bad one is refused
    /// before any answer goes.
    fn check(&self, params: &[ResponseParameters]) -> Result<(), Status> {
        for p in params {
            self.payload(p.size)?;
            self.interval(p.interval_us)?;
        }
        Ok(())
    }

    /// The answers to one streaming request, each after its wait, then
    /// its status if it asks for one.
    fn answers(&self, req: StreamingOutputCallRequest, served: Option<&Served>) -> Answers {
        let limits = self.limits;
        let status = asked(req.response_status, served);
        let each = stream::iter(req.response_parameters).then(move |p| async move {
            let me = Interop { limits };
            let wait = me.interval(p.interval_us)?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok(StreamingOutputCallResponse {
                payload: Some(me.payload(p.size)?),
            })
        });
        let end = stream::iter(status.map(Err));
        Box::pin(each.chain(end))
    }
}

/// The status a request asks to be answered with, if any other than OK,
/// marked as asked for (so that the metrics do not count it as an error).
fn asked(status: Option<EchoStatus>, served: Option<&Served>) -> Option<Status> {
    let s = status.filter(|s| s.code != 0)?;
    if let Some(served) = served {
        served.asked_status.store(true, Ordering::Relaxed);
    }
    Some(Status::new(Code::from_i32(s.code), s.message))
}

/// What the connection told the call.
fn served<T>(req: &Request<T>) -> Option<Served> {
    req.extensions().get::<Served>().cloned()
}

#[tonic::async_trait]
impl TestService for Interop {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        req: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let served = served(&req);
        let r = req.into_inner();
        if r.expect_compressed.is_some_and(|b| b.value) {
            return Err(Status::invalid_argument(
                "this server takes no compressed requests",
            ));
        }
        let payload = self.payload(r.response_size)?;
        if let Some(status) = asked(r.response_status, served.as_ref()) {
            return Err(status);
        }
        let name = served.as_ref().map_or("", |s| &*s.name);
        let mut answer = SimpleResponse {
            payload: Some(payload),
            ..SimpleResponse::default()
        };
        if r.fill_server_id {
            let shard = served.as_ref().map_or(0, |s| s.shard);
            answer.server_id = format!("{name}/{shard}");
            answer.hostname = name.to_string();
        }
        if r.fill_username {
            answer.username = name.to_string();
        }
        Ok(Response::new(answer))
    }

    async fn cacheable_unary_call(
        &self,
        req: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(req).await
    }

    type StreamingOutputCallStream = Answers;

    async fn streaming_output_call(
        &self,
        req: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Answers>, Status> {
        let served = served(&req);
        let r = req.into_inner();
        self.check(&r.response_parameters)?;
        Ok(Response::new(self.answers(r, served.as_ref())))
    }

    async fn streaming_input_call(
        &self,
        req: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let mut incoming = req.into_inner();
        let mut total: i64 = 0;
        while let Some(r) = incoming.message().await? {
            total += r.payload.map_or(0, |p| p.body.len() as i64);
        }
        let aggregated_payload_size = i32::try_from(total)
            .map_err(|_| Status::out_of_range("over 2 GiB of payload in one call"))?;
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size,
        }))
    }

    type FullDuplexCallStream = Answers;

    async fn full_duplex_call(
        &self,
        req: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let served = served(&req);
        let limits = self.limits;
        let incoming = req.into_inner();
        // Each request's answers go out before the next request is read:
        // a ping-pong, and a client that stops reading stops the call.
        let answers = incoming
            .map(move |r| {
                let me = Interop { limits };
                match r {
                    Ok(r) => match me.check(&r.response_parameters) {
                        Ok(()) => me.answers(r, served.as_ref()),
                        Err(e) => Box::pin(stream::iter([Err(e)])),
                    },
                    Err(e) => Box::pin(stream::iter([Err(e)])) as Answers,
                }
            })
            .flatten();
        Ok(Response::new(Box::pin(until_error(answers))))
    }

    type HalfDuplexCallStream = Answers;

    async fn half_duplex_call(
        &self,
        req: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let served = served(&req);
        let mut incoming = req.into_inner();
        let mut held = Vec::new();
        let mut held_params = 0usize;
        while let Some(mut r) = incoming.message().await? {
            self.check(&r.response_parameters)?;
            // The answers are made of zeros: the request's own payload
            // need not be held.
            r.payload = None;
            held_params += r.response_parameters.len() + 1;
            // Each held parameter is a few bytes of a message the client
            // sent: a message's worth of them bounds what a call holds.
            if held_params > self.limits.max_message / 4 + 1 {
                return Err(Status::resource_exhausted(
                    "HalfDuplexCall: more requests than this server holds at once",
                ));
            }
            held.push(r);
        }
        let me = Interop {
            limits: self.limits,
        };
        let answers = stream::iter(held)
            .map(move |r| me.answers(r, served.as_ref()))
            .flatten();
        Ok(Response::new(Box::pin(until_error(answers))))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is not implemented, as the interop tests expect",
        ))
    }
}

/// Ends a stream after its first error: gRPC ends a call with its status.
fn until_error<S>(s: S) -> impl Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send
where
    S: Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send,
{
    s.scan(false, |failed, item| {
        let out = if *failed {
            None
        } else {
            *failed = item.is_err();
            Some(item)
        };
        std::future::ready(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interop() -> Interop {
        Interop::new(Limits {
            max_message: 1 << 20,
            max_response: 1000,
            max_delay: Duration::from_millis(10),
        })
    }

    #[test]
    fn sizes_and_waits_are_held_to_the_limits() {
        let i = interop();
        assert_eq!(i.payload(1000).unwrap().body, vec![0u8; 1000]);
        assert_eq!(i.payload(0).unwrap().body.len(), 0);
        for bad in [1001, -1, i32::MAX] {
            let e = i.payload(bad).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
        }
        assert_eq!(i.interval(10_000).unwrap(), Duration::from_millis(10));
        assert_eq!(
            i.interval(10_001).unwrap_err().code(),
            Code::InvalidArgument
        );
        assert_eq!(i.interval(-1).unwrap_err().code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_stream_ends_with_its_asked_status_and_nothing_after() {
        let i = interop();
        let req = StreamingOutputCallRequest {
            response_parameters: vec![ResponseParameters {
                size: 3,
                ..Default::default()
            }],
            response_status: Some(EchoStatus {
                code: Code::Aborted as i32,
                message: "stop".into(),
            }),
            ..Default::default()
        };
        let twice = stream::iter([req.clone(), req]).map(move |r| i.answers(r, None));
        let got: Vec<_> = until_error(twice.flatten()).collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0]
                .as_ref()
                .unwrap()
                .payload
                .as_ref()
                .unwrap()
                .body
                .len(),
            3
        );
        let e = got[1].as_ref().unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::Aborted, "stop"));
    }
}
