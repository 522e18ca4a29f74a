//! What the WebSocket client and bench tests share: a WebSocket echo
//! server that misbehaves on purpose (tokio-tungstenite, on loopback),
//! and a throwaway CA with a server certificate it signed.
#![allow(dead_code)]

use std::path::PathBuf;
use std::thread;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_tungstenite::tungstenite::Message;

/// How [`BadServer`] answers each data message (counted from 1 on each
/// connection).
#[derive(Debug, Clone, Copy)]
pub enum Misbehave {
    /// Echoes, but flips byte `at` of every `every`-th message.
    Flip { every: u64, at: usize },
    /// Echoes `n` messages, then sends a Close.
    CloseAfter(u64),
    /// Reads and never answers.
    Silent,
    /// Answers every message with one of this many bytes.
    Huge(usize),
    /// Answers every message with a text message of its length.
    Text,
    /// Sends pings as fast as it can for 20 s and never reads: whatever
    /// the client answers piles up on the client's side.
    PingFloodDeaf,
    /// Sends pings as fast as it can for 20 s, reads (and answers the
    /// client's pings), and echoes nothing.
    PingFlood,
    /// Echoes, answers the client's Close with its own, and keeps the
    /// TCP connection open for 20 s.
    CloseKeepOpen,
    /// Reads `n` messages without answering, then sends a Close and
    /// reads on.
    SilentThenClose(u64),
}

/// How long a flooding or lingering [`BadServer`] goes on.
const MISBEHAVE_FOR: std::time::Duration = std::time::Duration::from_secs(20);

/// A misbehaving WebSocket server on 127.0.0.1, for as long as the test
/// process lives.
pub struct BadServer {
    pub port: u16,
}

impl BadServer {
    pub fn start(mode: Misbehave) -> BadServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(serve(tcp, mode));
                }
            });
        });
        BadServer { port }
    }

    /// `ws://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

async fn serve(tcp: tokio::net::TcpStream, mode: Misbehave) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let ping = || Message::Ping(vec![b'p'; 125].into());
    let until = tokio::time::Instant::now() + MISBEHAVE_FOR;
    match mode {
        Misbehave::PingFloodDeaf => {
            // `send` writes and never reads.
            while tokio::time::Instant::now() < until && ws.send(ping()).await.is_ok() {}
            return;
        }
        Misbehave::PingFlood => {
            let (mut tx, mut rx) = ws.split();
            let reading = async { while let Some(Ok(_)) = rx.next().await {} };
            let flooding = async {
                while tokio::time::Instant::now() < until && tx.send(ping()).await.is_ok() {}
            };
            let _ =
                tokio::time::timeout(MISBEHAVE_FOR, futures_util::future::join(reading, flooding))
                    .await;
            return;
        }
        _ => {}
    }
    let mut n = 0u64;
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() && matches!(mode, Misbehave::CloseKeepOpen) {
            // tungstenite queued the answer: send it, keep the socket.
            let _ = ws.flush().await;
            tokio::time::sleep(MISBEHAVE_FOR).await;
            return;
        }
        if !(msg.is_text() || msg.is_binary()) {
            continue;
        }
        n += 1;
        let reply = match mode {
            Misbehave::Flip { every, at } => {
                let text = msg.is_text();
                let mut data = msg.into_data().to_vec();
                if n.is_multiple_of(every) && at < data.len() {
                    data[at] ^= 0x20;
                }
                match (text, String::from_utf8(data)) {
                    (true, Ok(s)) => Message::text(s),
                    (_, Ok(s)) => Message::binary(s.into_bytes()),
                    (_, Err(e)) => Message::binary(e.into_bytes()),
                }
            }
            Misbehave::CloseAfter(limit) if n > limit => {
                let _ = ws.close(None).await;
                continue;
            }
            Misbehave::SilentThenClose(limit) if n == limit => {
                let _ = ws.close(None).await;
                continue;
            }
            Misbehave::SilentThenClose(_) => continue,
            Misbehave::CloseAfter(_) | Misbehave::CloseKeepOpen => msg,
            Misbehave::PingFloodDeaf | Misbehave::PingFlood => continue,
            Misbehave::Silent => continue,
            Misbehave::Huge(size) => Message::binary(vec![b'x'; size]),
            // As many bytes as came, but text.
            Misbehave::Text => Message::text("x".repeat(msg.len())),
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 that it
/// signed, as PEM files: `ca.pem`, `server.pem`, `server.key`.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: with rcgen's default name on both, the leaf's
        // issuer is its own subject, and BoringSSL (grpcio) takes it for
        // self-signed.
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "echoes test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let issuer = Issuer::new(params, ca_key);
        let leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}
