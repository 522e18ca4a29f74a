//! fortio's `fgrpc.PingServer/Ping`, answered as fortio's own server
//! answers it: the message back, after `delayNanos` (held to
//! `--http-max-delay`), with `ts` set to the time it was answered, in
//! nanoseconds since the Unix epoch, so that `fortio grpcping` can show
//! the clock offset as well as the round trip.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};

use super::context::Limits;
use super::generated::fgrpc::PingMessage;
use super::generated::fgrpc::ping_server_server::PingServer;

/// The ping service, held to the server's limits.
#[derive(Debug)]
pub struct Ping {
    limits: Limits,
}

impl Ping {
    /// The service, held to `limits`.
    pub fn new(limits: Limits) -> Ping {
        Ping { limits }
    }
}

#[tonic::async_trait]
impl PingServer for Ping {
    async fn ping(&self, req: Request<PingMessage>) -> Result<Response<PingMessage>, Status> {
        let mut m = req.into_inner();
        let delay = Duration::from_nanos(u64::try_from(m.delay_nanos).unwrap_or(0));
        if delay > self.limits.max_delay {
            return Err(Status::invalid_argument(format!(
                "delayNanos {} is over this server's --http-max-delay",
                m.delay_nanos
            )));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        m.ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Ok(Response::new(m))
    }
}
