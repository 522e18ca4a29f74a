//! `GET /?size=N` as a hyper 1 idiom would serve it: N bytes of
//! `echo-server`'s `size=` pattern (16-byte lines, each its own offset in
//! 15 decimal digits and a newline), streamed in chunks of up to 64 KiB as
//! the connection takes them. HTTP/1.1 with keep-alive, and h2c with prior
//! knowledge (hyper-util's auto builder), one task per connection.
//! Usage: hyper-size PORT [ADDRESS]
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// `left` bytes of the pattern from `offset`, a chunk at a time.
struct Pattern {
    offset: u64,
    left: u64,
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024) as usize;
        let chunk: Vec<u8> = (self.offset..self.offset + n as u64).map(byte_at).collect();
        self.offset += n as u64;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// The pattern's byte at `offset`.
fn byte_at(offset: u64) -> u8 {
    let column = offset % 16;
    if column == 15 {
        return b'\n';
    }
    b'0' + ((offset - column) / 10u64.pow(14 - column as u32) % 10) as u8
}

async fn size(req: Request<Incoming>) -> Result<Response<Pattern>, Infallible> {
    let left = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("size="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Response::new(Pattern { offset: 0, left }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = args.next().ok_or("usage: hyper-size PORT [ADDRESS]")?;
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = TcpListener::bind(addr.as_str()).await?;
    eprintln!("hyper-size: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(size))
                .await;
        });
    }
}
