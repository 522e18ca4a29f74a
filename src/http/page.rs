//! The browser test page, served at [`TEST_PAGE_PATH`](super::TEST_PAGE_PATH).
//!
//! One self-contained HTML file (`page.html`, inline style and script, no
//! external assets): it opens a WebSocket back to the origin it came from
//! (`ws:` or `wss:` as the page's own scheme), sends 100 messages, text
//! and binary in turn (`?count=N&size=BYTES` for others), checks every
//! echo, shows the round-trip times live, and ends with `N of N echoes
//! checked` in its `#status` element (`data-state="done"`, or `"failed"`
//! with the reason). It is what a web developer opens through their proxy
//! to see whether WebSocket gets through.
//!
//! The server writes its WebSocket limits into the page as it sends it
//! (`<meta name="echoes-ws-max-frame">`), so that a `size=` over them is
//! sent at the limit and said to be capped, never run silently smaller.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::HttpConfig;
use super::body::{self, ResBody};

/// The page, with `{{ws_max_message}}` and `{{ws_max_frame}}` for the
/// server's limits ([`html`] fills them in).
pub const HTML: &str = include_str!("page.html");

/// The page as this server sends it: [`HTML`] with `config`'s WebSocket
/// limits written in.
pub fn html(config: &HttpConfig) -> String {
    HTML.replace("{{ws_max_message}}", &config.ws_max_message.to_string())
        .replace("{{ws_max_frame}}", &config.ws_max_frame.to_string())
}

/// Only the page's own inline script and style, and WebSocket connections.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
                      style-src 'unsafe-inline'; connect-src 'self' ws: wss:";

/// The page as a response, for a server with `config`.
pub fn response(config: &HttpConfig) -> Response<ResBody> {
    let mut r = Response::new(body::full(html(config)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_needs_nothing_from_elsewhere() {
        let html = super::HTML;
        assert!(html.contains("N of N") || html.contains("\" echoes checked\""));
        for outside in ["src=\"http", "href=\"http", "@import", "<link", "src=\"//"] {
            assert!(!html.contains(outside), "the page loads {outside}…");
        }
    }

    #[test]
    fn the_page_carries_the_servers_websocket_limits() {
        let config = super::HttpConfig {
            ws_max_message: 3 << 20,
            ws_max_frame: 1 << 20,
            ..Default::default()
        };
        let html = super::html(&config);
        assert!(html.contains(r#"<meta name="echoes-ws-max-message" content="3145728">"#));
        assert!(html.contains(r#"<meta name="echoes-ws-max-frame" content="1048576">"#));
        assert!(!html.contains("{{"), "a placeholder is left");
    }
}
