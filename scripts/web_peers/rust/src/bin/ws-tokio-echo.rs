//! The tokio-tungstenite echo idiom (its `examples/echo-server.rs`): one
//! task per connection, `accept_async`, every text and binary message
//! forwarded back. Usage: ws-tokio-echo PORT [ADDRESS]
use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = args.next().ok_or("usage: ws-tokio-echo PORT [ADDRESS]")?;
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = TcpListener::bind(addr.as_str()).await?;
    eprintln!("ws-tokio-echo: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // As echo-server and the TCP peers do: no Nagle delay on replies.
        stream.set_nodelay(true)?;
        tokio::spawn(echo(stream));
    }
}

async fn echo(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
