//! The client's conversation over `ws://` and `wss://`: each message one
//! WebSocket message, its echo checked, the same transcript as over TCP.
//!
//! A message that is valid UTF-8 (every message given on a command line)
//! goes as a text message, any other as binary; with `--stdin`, each chunk
//! of input (up to 64 KiB, cut wherever the read ends) is a binary
//! message. Each echo must be one message of the same type with the same
//! bytes, in order. N counted over the conversation, as over TCP, a wrong
//! byte or a wrong type is `echo mismatch at byte N`, a longer message
//! a mismatch at the offset of its first extra byte (one over the size limit below by the length its header
//! announces), a shorter one or a server that closes before every message
//! came back `short echo`, as over UDP.
//!
//! Where TCP half-closes, a WebSocket client cannot (a Close frame ends
//! the sending of both sides, and some servers drop what they have not
//! echoed yet when it arrives), so the client sends its Close only once
//! every echo is in, then waits for the server's Close, as the TCP client
//! waits for end of stream. Every wait is bounded by the timeout once an
//! echo (or the Close) is owed, and no message larger than what was sent
//! (at least 64 KiB) is read: memory stays bounded whatever the server
//! sends.

use std::cell::Cell;
use std::io;

use tokio::time::Instant;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info};

use super::check::{Checker, Summary};
use super::error::{ClientError, io_err, output_err};
use super::options::ClientOptions;
use super::pipe::PIPE_WINDOW;
use super::stream::CHUNK;
use super::transcript::{NAME, connect_line};
use crate::pyrepr::PyBytes;
use crate::transport::{BoxStream, web};

type Sink = SplitSink<WebSocketStream<BoxStream>, Message>;
type Source = SplitStream<WebSocketStream<BoxStream>>;

/// What the reader hands over: a data message, or why reading stopped.
type Incoming = Result<Message, WsError>;

async fn connect(opts: &ClientOptions, max_message: usize) -> Result<(Sink, Source), ClientError> {
    let config = web::ws_config(max_message.max(CHUNK));
    let (tls, proxy) = (opts.tls.as_ref(), opts.proxy.as_ref());
    let ws = web::connect_ws(&opts.addr, opts.timeout, tls, proxy, config).await?;
    Ok(ws.split())
}

/// The message that carries `bytes`: text when it is valid UTF-8.
fn message_for(bytes: &[u8]) -> Message {
    match std::str::from_utf8(bytes) {
        Ok(text) => Message::text(text),
        Err(_) => Message::binary(Bytes::copy_from_slice(bytes)),
    }
}

fn payload(msg: &Message) -> &[u8] {
    match msg {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}

/// `text` or `binary`.
fn kind(msg: &Message) -> &'static str {
    if msg.is_text() { "text" } else { "binary" }
}

/// Checks one echoed message against the message it answers, which
/// started at byte `checker.received` of the conversation; `sent` bytes
/// have been sent in all.
fn check_message(
    checker: &mut Checker,
    got: &Message,
    want: &Message,
    sent: u64,
) -> Result<(), ClientError> {
    let at = checker.received;
    if got.is_text() != want.is_text() {
        return Err(ClientError::WrongType {
            offset: at,
            sent: kind(want),
            received: kind(got),
        });
    }
    checker.check_whole(payload(got), payload(want), sent)
}

/// Awaits `fut` for at most `timeout`, as a [`ClientError::Timeout`]
/// waiting for `what` (`echo`, or `server to read`).
async fn within<F: Future>(
    timeout: std::time::Duration,
    what: &'static str,
    fut: F,
    sent: u64,
    received: u64,
) -> Result<F::Output, ClientError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ClientError::Timeout {
            waited: timeout,
            what,
            sent,
            received,
        })
}

/// What a failed read means for the conversation: the end of the stream
/// (`Ok(None)`), or an error. `at` is where the message being read would
/// start; `sent` bytes have been sent in all.
fn read_failure(e: WsError, at: u64, sent: u64) -> Result<Option<Message>, ClientError> {
    match e {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ok(None),
        // A TLS server that closes without close_notify: the end all the
        // same (what came before it is checked; what did not come is short).
        WsError::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        // Longer than anything sent, by its header.
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => Err(ClientError::Extra {
            sent,
            received: at + size as u64,
        }),
        WsError::Io(error) => Err(ClientError::Io {
            context: "reading the echo",
            error,
        }),
        other => Err(ClientError::Io {
            context: "reading the echo",
            error: io::Error::new(io::ErrorKind::InvalidData, other),
        }),
    }
}

fn send_err(e: WsError) -> ClientError {
    let error = match e {
        WsError::Io(error) => error,
        // The bound of `web::ws_config`: the server sends, and does not read.
        WsError::WriteBufferFull(_) => io::Error::new(
            io::ErrorKind::WouldBlock,
            "the server does not read what it is sent (the client's buffer for it is full)",
        ),
        other => io::Error::new(io::ErrorKind::BrokenPipe, other),
    };
    ClientError::Io {
        context: "sending",
        error,
    }
}

/// Reads data messages into `tx` until the stream ends or the server's
/// Close arrives (the end of the conversation, whether or not it then
/// closes TCP), at most `limit` of them (then it stops reading: the server
/// owes nothing more). Pings are answered by tungstenite as they come.
async fn read_messages(mut source: Source, tx: mpsc::Sender<Incoming>, limit: usize) {
    let mut forwarded = 0;
    while forwarded < limit {
        let item = match source.next().await {
            None | Some(Ok(Message::Close(_))) => return,
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => Ok(msg),
            Some(Ok(_control)) => continue,
            Some(Err(e)) => Err(e),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
        forwarded += 1;
    }
}

/// The client's conversation over WebSocket: send each message, then read
/// and log every echo, check it, close.
pub async fn send_messages(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    info!(name = NAME, "{}", connect_line(&opts.addr));
    let longest = messages.iter().map(Vec::len).max().unwrap_or(0);
    let (mut sink, source) = connect(opts, longest).await?;
    let sent: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let wanted: Vec<Message> = messages.iter().map(|m| message_for(m)).collect();
    // One more than was sent, to see a server that sends too many.
    let (tx, mut rx) = mpsc::channel::<Incoming>(wanted.len() + 1);
    let reading = read_messages(source, tx, wanted.len() + 1);
    let talking = async {
        for (msg, bytes) in wanted.iter().zip(messages) {
            within(
                opts.timeout,
                "server to read",
                sink.send(msg.clone()),
                sent,
                0,
            )
            .await?
            .map_err(send_err)?;
            info!(name = NAME, "sending {}", PyBytes(bytes));
        }
        info!(name = NAME, "waiting for response");
        let mut checker = Checker::new();
        for want in &wanted {
            let at = checker.received;
            let got = match within(opts.timeout, "echo", rx.recv(), sent, at).await? {
                Some(Ok(msg)) => Some(msg),
                Some(Err(e)) => read_failure(e, at, sent)?,
                None => None,
            };
            let Some(got) = got else {
                info!(name = NAME, "closing");
                return Err(ClientError::Short { sent, received: at });
            };
            info!(name = NAME, "received {}", PyBytes(payload(&got)));
            check_message(&mut checker, &got, want, sent)?;
        }
        close(opts, &mut sink, &mut rx, sent).await?;
        info!(name = NAME, "closing");
        Ok(Summary { bytes: sent })
    };
    // The talk decides; the reader only feeds it, and is dropped with it.
    tokio::pin!(reading, talking);
    let mut reading_done = false;
    loop {
        tokio::select! {
            summary = &mut talking => return summary,
            () = &mut reading, if !reading_done => reading_done = true,
        }
    }
}

/// Every echo is in: sends the Close, and waits for the server's (the
/// end of the stream); a data message meanwhile is more than was sent.
async fn close(
    opts: &ClientOptions,
    sink: &mut Sink,
    rx: &mut mpsc::Receiver<Incoming>,
    sent: u64,
) -> Result<(), ClientError> {
    // A server that closed first has its Close answered already.
    let _ = within(opts.timeout, "server to read", sink.close(), sent, sent).await?;
    match within(opts.timeout, "echo", rx.recv(), sent, sent).await? {
        None => Ok(()),
        Some(Ok(extra)) => Err(ClientError::Extra {
            sent,
            received: sent + extra.len() as u64,
        }),
        Some(Err(e)) => read_failure(e, sent, sent).map(|_| ()),
    }
}

/// `nc`-style over WebSocket: each chunk of `input` one binary message,
/// each echo checked and written to `output`; at most [`PIPE_WINDOW`]
/// bytes in flight. The transcript is logged at debug level.
///
/// Two halves run at once on one task, `send_input` and `receive_echo`,
/// sharing their counts.
pub async fn pipe<R, W>(
    opts: &ClientOptions,
    mut input: R,
    mut output: W,
) -> Result<Summary, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    debug!(name = NAME, "{}", connect_line(&opts.addr));
    let (mut sink, mut source) = connect(opts, CHUNK).await?;
    // The messages sent and not yet echoed; its capacity bounds memory.
    let (tx, mut rx) = mpsc::channel::<Bytes>(PIPE_WINDOW / CHUNK);
    let shared = Shared {
        sent: Cell::new(0),
        received: Cell::new(0),
        input_done: Cell::new(false),
        closed: Cell::new(false),
        progress: Notify::new(),
    };
    let sending = send_input(opts, &mut input, &mut sink, tx, &shared);
    let receiving = receive_echo(opts, &mut source, &mut rx, &mut output, &shared);
    let ((), received) = tokio::try_join!(sending, receiving)?;
    let sent = shared.sent.get();
    if received < sent {
        return Err(ClientError::Short { sent, received });
    }
    Ok(Summary { bytes: received })
}

/// What the two halves of [`pipe`] share.
struct Shared {
    /// Bytes read from the input (sent, or about to be).
    sent: Cell<u64>,
    /// Bytes echoed, checked and written out.
    received: Cell<u64>,
    /// The input has ended: everything sent is owed.
    input_done: Cell<bool>,
    /// The receiving half is done: the server closed, or it failed.
    closed: Cell<bool>,
    /// Woken when `received` or `closed` changes.
    progress: Notify,
}

/// The sending half of [`pipe`]: reads `input` and sends each chunk, the
/// checker's copy first into `tx`; at the end of the input, waits for
/// every echo (or the receiving half's end) and sends the Close.
async fn send_input<R: AsyncRead + Unpin>(
    opts: &ClientOptions,
    input: &mut R,
    sink: &mut Sink,
    tx: mpsc::Sender<Bytes>,
    shared: &Shared,
) -> Result<(), ClientError> {
    let Shared {
        sent,
        received,
        closed,
        ..
    } = shared;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = input
            .read(&mut buf)
            .await
            .map_err(io_err("reading input"))?;
        if n == 0 {
            break;
        }
        sent.set(sent.get() + n as u64);
        if closed.get() {
            return Ok(());
        }
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        // The checker gets its copy first: the echo may come back
        // before `send` returns. A full window waits for an echo, or for
        // the receiving half to end (the server's Close), after which
        // nobody makes room.
        let permit = loop {
            if closed.get() {
                return Ok(());
            }
            tokio::select! {
                permit = tx.reserve() => break permit,
                () = shared.progress.notified() => {}
            }
        };
        let Ok(permit) = permit else {
            return Ok(());
        };
        permit.send(chunk.clone());
        let (s, r) = (sent.get(), received.get());
        let send = sink.send(Message::Binary(chunk.clone()));
        within(opts.timeout, "server to read", send, s, r)
            .await?
            .map_err(send_err)?;
        debug!(name = NAME, "sending {}", PyBytes(&chunk));
    }
    shared.input_done.set(true);
    drop(tx);
    debug!(name = NAME, "waiting for response");
    while received.get() < sent.get() && !closed.get() {
        shared.progress.notified().await;
    }
    if !closed.get() {
        let (sent, received) = (sent.get(), received.get());
        let _ = within(opts.timeout, "server to read", sink.close(), sent, received).await?;
    }
    Ok(())
}

/// The receiving half of [`pipe`]: checks each echo against what `rx`
/// says was sent and writes it to `output`, until the server closes;
/// then tells the sending half, and returns the bytes received.
async fn receive_echo<W: AsyncWrite + Unpin>(
    opts: &ClientOptions,
    source: &mut Source,
    rx: &mut mpsc::Receiver<Bytes>,
    output: &mut W,
    shared: &Shared,
) -> Result<u64, ClientError> {
    let mut checker = Checker::new();
    let result = read_echoes(opts, source, rx, output, shared, &mut checker).await;
    shared.closed.set(true);
    shared.progress.notify_one();
    result?;
    output.flush().await.map_err(output_err)?;
    debug!(name = NAME, "closing");
    Ok(checker.received)
}

/// [`receive_echo`]'s loop: one echoed message a turn, until the
/// server's Close or the end of the stream. The wait for the echo is
/// restarted by echoed bytes, and when an echo becomes owed, never by a
/// ping or a pong.
async fn read_echoes<W: AsyncWrite + Unpin>(
    opts: &ClientOptions,
    source: &mut Source,
    rx: &mut mpsc::Receiver<Bytes>,
    output: &mut W,
    shared: &Shared,
    checker: &mut Checker,
) -> Result<(), ClientError> {
    let sent = &shared.sent;
    let mut deadline: Option<Instant> = None;
    loop {
        let owed = shared.input_done.get() || checker.received < sent.get();
        if !owed {
            deadline = None;
        } else if deadline.is_none() {
            deadline = Some(Instant::now() + opts.timeout);
        }
        let timed_out = |received| ClientError::Timeout {
            waited: opts.timeout,
            what: "echo",
            sent: sent.get(),
            received,
        };
        // Checked here too: a flood of pings keeps `next` ready, and a
        // ready future is never timed out.
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Err(timed_out(checker.received));
        }
        let next = source.next();
        let item = match deadline {
            Some(at) => tokio::time::timeout_at(at, next)
                .await
                .map_err(|_| timed_out(checker.received))?,
            None => next.await,
        };
        let got = match item {
            // The server's Close ends the conversation, even when it
            // keeps its TCP connection open.
            None | Some(Ok(Message::Close(_))) => return Ok(()),
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => msg,
            Some(Ok(_control)) => continue,
            Some(Err(e)) => match read_failure(e, checker.received, sent.get())? {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        debug!(name = NAME, "received {}", PyBytes(payload(&got)));
        let Some(want) = rx.recv().await else {
            // Every message is echoed: this one is extra.
            return Err(ClientError::Extra {
                sent: sent.get(),
                received: checker.received + got.len() as u64,
            });
        };
        check_message(checker, &got, &Message::Binary(want), sent.get())?;
        output.write_all(payload(&got)).await.map_err(output_err)?;
        shared.received.set(checker.received);
        deadline = None;
        shared.progress.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_goes_as_text_and_the_rest_as_binary() {
        assert!(message_for(b"hello").is_text());
        assert!(message_for(b"").is_text());
        assert!(message_for(b"\xff\x00").is_binary());
    }

    #[test]
    fn echoes_are_checked_by_type_bytes_and_length() {
        let text = Message::text("abc");
        let check = |got: Message| {
            let mut c = Checker { received: 10 };
            check_message(&mut c, &got, &text, 20).map(|()| c.received)
        };
        assert_eq!(check(Message::text("abc")).unwrap(), 13);
        let e = check(Message::binary(&b"abc"[..])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "echo mismatch at byte 10: sent a text message, received a binary one"
        );
        let e = check(Message::text("aXc")).unwrap_err();
        assert!(
            matches!(e, ClientError::Mismatch { offset: 11, .. }),
            "{e:?}"
        );
        let e = check(Message::text("ab")).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Short {
                    sent: 20,
                    received: 12
                }
            ),
            "{e:?}"
        );
        let e = check(Message::text("abcd")).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Extra {
                    sent: 20,
                    received: 14
                }
            ),
            "{e:?}"
        );
    }
}
