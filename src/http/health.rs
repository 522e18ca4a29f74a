//! The HTTP side of the server's serving switch ([`crate::serving`]),
//! which gRPC health reports, so that a load-balancer test can drain a
//! backend without stopping it (as agnhost's `/make-not-serving` does):
//!
//! - `GET /.well-known/echoes/health`: `200 SERVING` or `503 NOT_SERVING`
//!   (for a balancer's HTTP health check);
//! - `POST /.well-known/echoes/health/not-serving` and
//!   `POST /.well-known/echoes/health/serving` flip it (answered with the
//!   new state).
//!
//! While the server shuts down it is not serving, whatever the switch says.

use hyper::{Method, StatusCode};

use crate::serving::Serving;

/// Where the serving switch is read.
pub const HEALTH_PATH: &str = "/.well-known/echoes/health";

/// The answer to a request for the health paths, or `None` for any other
/// request (which is reflected as usual). `shutting_down` says not serving.
pub fn answer(
    serving: &Serving,
    shutting_down: bool,
    method: &Method,
    path: &str,
) -> Option<(StatusCode, &'static str)> {
    let rest = path.strip_prefix(HEALTH_PATH)?;
    let flip = match (method, rest) {
        (&Method::GET | &Method::HEAD, "") => None,
        (&Method::POST, "/serving") => Some(true),
        (&Method::POST, "/not-serving") => Some(false),
        _ => return None,
    };
    if let Some(on) = flip {
        serving.set(on);
    }
    Some(if serving.is_serving() && !shutting_down {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_flip_and_get_reads() {
        let s = Serving::default();
        let get = |s: &Serving| answer(s, false, &Method::GET, HEALTH_PATH);
        assert_eq!(get(&s), Some((StatusCode::OK, "SERVING")));
        let off = answer(
            &s,
            false,
            &Method::POST,
            "/.well-known/echoes/health/not-serving",
        );
        assert_eq!(off, Some((StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")));
        assert_eq!(
            get(&s),
            Some((StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING"))
        );
        answer(
            &s,
            false,
            &Method::POST,
            "/.well-known/echoes/health/serving",
        );
        assert!(s.is_serving());
        // A shutdown says not serving; the switch is left as it was.
        assert_eq!(
            answer(&s, true, &Method::GET, HEALTH_PATH),
            Some((StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING"))
        );
        // A GET does not flip, and other paths and methods are not ours.
        let not_ours = [
            (Method::GET, "/.well-known/echoes/health/not-serving"),
            (Method::POST, HEALTH_PATH),
            (Method::GET, "/.well-known/echoes/healthz"),
        ];
        for (m, p) in not_ours {
            assert_eq!(answer(&s, false, &m, p), None, "{m} {p}");
        }
        assert!(s.is_serving());
    }
}
