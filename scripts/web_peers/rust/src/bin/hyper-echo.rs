//! The hyper 1 echo idiom (its `examples/echo.rs`, without the routes):
//! HTTP/1.1 with keep-alive, and h2c with prior knowledge (hyper-util's
//! auto builder), one task per connection, every request answered 200
//! with its own body streamed back. Usage: hyper-echo PORT [ADDRESS]
use std::convert::Infallible;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

async fn echo(req: Request<Incoming>) -> Result<Response<Incoming>, Infallible> {
    Ok(Response::new(req.into_body()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = args.next().ok_or("usage: hyper-echo PORT [ADDRESS]")?;
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = TcpListener::bind(addr.as_str()).await?;
    eprintln!("hyper-echo: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(echo))
                .await;
        });
    }
}
