//! `grpc.health.v1.Health` over the server's serving switch
//! ([`crate::serving`]): the overall service (`""`) and every
//! service here are `SERVING` or `NOT_SERVING` together, any other name is
//! `NOT_FOUND` (Check) or `SERVICE_UNKNOWN` (Watch). A Watch sends the
//! status now and at every flip, and ends when the server shuts down
//! (after saying `NOT_SERVING`), so it never holds a graceful shutdown.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::serving::Serving;
use crate::shutdown::ShutdownHandle;

/// The health service.
#[derive(Debug)]
pub struct HealthService {
    serving: Arc<Serving>,
    shutdown: ShutdownHandle,
    services: &'static [&'static str],
}

impl HealthService {
    /// Reports `serving` for the overall service and `services`; watches
    /// end at `shutdown`.
    pub fn new(
        serving: Arc<Serving>,
        shutdown: ShutdownHandle,
        services: &'static [&'static str],
    ) -> HealthService {
        HealthService {
            serving,
            shutdown,
            services,
        }
    }

    /// Whether `name` is a service whose health this server reports.
    fn known(&self, name: &str) -> bool {
        name.is_empty() || self.services.contains(&name)
    }
}

/// The status the switch says.
fn status(serving: bool) -> HealthCheckResponse {
    let s = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    HealthCheckResponse { status: s as i32 }
}

type Watch = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let name = req.into_inner().service;
        if !self.known(&name) {
            return Err(Status::not_found(format!("no service {name:?} here")));
        }
        Ok(Response::new(status(
            self.serving.is_serving() && !self.shutdown.is_shutdown(),
        )))
    }

    type WatchStream = Watch;

    async fn watch(&self, req: Request<HealthCheckRequest>) -> Result<Response<Watch>, Status> {
        let name = req.into_inner().service;
        if !self.known(&name) {
            let unknown = HealthCheckResponse {
                status: ServingStatus::ServiceUnknown as i32,
            };
            // The spec: SERVICE_UNKNOWN, and the call stays open (the
            // service may appear); here it never will, so the stream just
            // waits for the shutdown.
            let shutdown = self.shutdown.clone();
            let rest = stream::once(async move { shutdown.wait_shutdown().await })
                .filter_map(|()| std::future::ready(None));
            return Ok(Response::new(Box::pin(
                stream::iter([Ok(unknown)]).chain(rest),
            )));
        }
        let rx = self.serving.subscribe();
        let shutdown = self.shutdown.clone();
        // The first answer is the status now; then one per change, until
        // the shutdown, which is said as NOT_SERVING.
        let updates = stream::unfold(Some((rx, true)), move |state| {
            let shutdown = shutdown.clone();
            async move {
                let (mut rx, first) = state?;
                if first || shutdown.is_shutdown() {
                    let now = *rx.borrow_and_update() && !shutdown.is_shutdown();
                    let next = (!shutdown.is_shutdown()).then_some((rx, false));
                    return Some((Ok(status(now)), next));
                }
                tokio::select! {
                    changed = rx.changed() => {
                        changed.ok()?;
                        let now = *rx.borrow_and_update();
                        Some((Ok(status(now)), Some((rx, false))))
                    }
                    () = shutdown.wait_shutdown() => Some((Ok(status(false)), None)),
                }
            }
        });
        Ok(Response::new(Box::pin(updates)))
    }
}
