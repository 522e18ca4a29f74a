//! The echo loop over real loopback sockets, looked at from inside: how
//! much a connection owes at most, what size its reads are, what wakes its
//! thread, and what it allocates.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::*;
use crate::addr::Transport;
use crate::metrics::Metrics;
use crate::transport::socket_queues;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client socket and the server's end of it, not yet registered.
fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    server.set_nonblocking(true).unwrap();
    (client, server)
}

/// The echo loop for the server's end; call inside a runtime.
fn echo_for(
    server: TcpStream,
    read_size: usize,
    metrics: &Arc<Metrics>,
) -> EchoSocket<mio::net::TcpStream> {
    let peer = PeerName::Inet(server.peer_addr().unwrap());
    let io = crate::transport::register(mio::net::TcpStream::from_std(server)).unwrap();
    let opts = EchoOptions {
        read_size,
        idle_timeout: None,
        zero_copy: false,
    };
    echo_socket(io, peer, opts, metrics.bytes(Transport::Tcp))
}

/// A deterministic pattern, so that order and loss both show.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What the loop holds, as seen between two polls.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    /// Bytes read and not yet written back.
    owed: usize,
    writing_only: bool,
    reads_back: bool,
    next_read: usize,
}

fn snapshot<S: StreamSocket>(echo: &EchoSocket<S>) -> Snapshot {
    Snapshot {
        owed: echo
            .pending
            .as_ref()
            .map_or(0, |p| p.chunk.len() - p.written),
        writing_only: echo.writing_only,
        reads_back: echo.reads_back,
        next_read: echo.next_read(),
    }
}

/// What the test asks of the server's thread.
enum Ask {
    /// A [`Snapshot`] of the loop.
    Snapshot,
    /// Register the socket for reading and writing again now, as the loop
    /// does when it finds it drained (which can be while its send buffer
    /// is full), then a snapshot.
    Rearm,
}

/// A server connection echoing on a thread of its own (a current-thread
/// runtime, as with `--threads 1`), which answers for snapshots.
struct Served {
    client: TcpStream,
    /// The server's descriptor, to read its kernel queues.
    fd: RawFd,
    /// The server thread's id, to read its context switches.
    tid: i32,
    ask: tokio::sync::mpsc::UnboundedSender<Ask>,
    answers: std_mpsc::Receiver<Snapshot>,
    thread: std::thread::JoinHandle<io::Result<Ending>>,
}

impl Served {
    /// With the client's receive buffer and the server's send buffer set
    /// to `buffers` (and so no longer grown by the kernel), if given; the
    /// server's receive buffer then has room for what its peer sends while
    /// the echo is stuck.
    fn start(read_size: usize, buffers: Option<usize>) -> Served {
        let (client, server) = connected();
        if let Some(size) = buffers {
            socket2::SockRef::from(&client)
                .set_recv_buffer_size(size)
                .unwrap();
            let server = socket2::SockRef::from(&server);
            server.set_send_buffer_size(size).unwrap();
            server.set_recv_buffer_size(1 << 20).unwrap();
        }
        let fd = server.as_raw_fd();
        let (ask, mut asked) = tokio::sync::mpsc::unbounded_channel::<Ask>();
        let (answer, answers) = std_mpsc::channel();
        let (tid_tx, tid_rx) = std_mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let metrics = Arc::new(Metrics::new());
            runtime().block_on(async move {
                let mut echo = echo_for(server, read_size, &metrics);
                loop {
                    tokio::select! {
                        biased;
                        ended = &mut echo => return ended,
                        asked = asked.recv() => match asked {
                            Some(Ask::Snapshot) => answer.send(snapshot(&echo)).unwrap(),
                            Some(Ask::Rearm) => {
                                echo.io.register(false).unwrap();
                                echo.writing_only = false;
                                answer.send(snapshot(&echo)).unwrap();
                            }
                            None => return echo.await,
                        },
                    }
                }
            })
        });
        let tid = tid_rx.recv().unwrap();
        Served {
            client,
            fd,
            tid,
            ask,
            answers,
            thread,
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.ask(Ask::Snapshot)
    }

    fn ask(&self, what: Ask) -> Snapshot {
        self.ask.send(what).unwrap();
        self.answers.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Waits until the loop is stuck on an echo its peer does not take.
    fn wait_stuck(&self) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.snapshot();
            if s.owed > 0 && s.writing_only {
                return s;
            }
            assert!(Instant::now() < deadline, "never stuck: {s:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Bytes the server's kernel holds, received but not read yet.
    fn unread(&self) -> usize {
        socket_queues(self.fd).map_or(0, |(_, unread)| unread)
    }

    /// Times the server thread went to sleep and was woken.
    fn wakeups(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/self/task/{}/status", self.tid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// Half-closes, reads everything back, and checks it is `sent`, in
    /// order; the loop then ends at end of stream.
    fn finish(mut self, sent: &[u8]) {
        self.client.set_nonblocking(false).unwrap();
        self.client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        self.client.shutdown(Shutdown::Write).unwrap();
        let mut echoed = Vec::with_capacity(sent.len());
        self.client.read_to_end(&mut echoed).unwrap();
        assert_eq!(echoed.len(), sent.len(), "bytes lost or added");
        assert!(echoed == sent, "the echo differs");
        drop(self.ask);
        assert_eq!(self.thread.join().unwrap().unwrap(), Ending::Eof);
    }
}

/// Writes `data` without blocking until the kernel refuses; returns how
/// much it took.
fn write_until_refused(conn: &mut TcpStream, data: &[u8]) -> usize {
    conn.set_nonblocking(true).unwrap();
    let mut sent = 0;
    while sent < data.len() {
        match conn.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    sent
}

/// Feeds `data` from `sent` on, `chunk` bytes at a time without blocking,
/// until the loop is stuck on an echo; returns how far it got and the
/// loop's state then.
fn feed_until_stuck(
    served: &Served,
    data: &[u8],
    mut sent: usize,
    chunk: usize,
) -> (usize, Snapshot) {
    let mut conn = served.client.try_clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let end = (sent + chunk).min(data.len());
        sent += write_until_refused(&mut conn, &data[sent..end]);
        let s = served.snapshot();
        if s.owed > 0 && s.writing_only {
            return (sent, s);
        }
        assert!(
            end < data.len() && Instant::now() < deadline,
            "{sent} bytes in and not stuck: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A peer that sends and never reads: its echo gets stuck with at most one
/// small read owed (not `read_size`), the socket is registered for writing
/// only, and what the peer goes on sending waits in the kernel without
/// waking the server's thread. Then everything comes back, in order.
#[test]
fn a_peer_that_never_reads_owes_one_small_read_and_wakes_nobody() {
    // Buffers that take several echoes before one gets stuck.
    let served = Served::start(256 * 1024, Some(256 * 1024));
    let data = pattern(1, 4 << 20);
    let (mut sent, stuck) = feed_until_stuck(&served, &data, 0, 256 * 1024);
    assert!(stuck.owed <= BASE_READ, "owes {} bytes", stuck.owed);
    assert!(!stuck.reads_back);
    assert_eq!(stuck.next_read, BASE_READ);
    sent += segments_wake_nobody(&served, &data[sent..]);
    // Registered anew for reading while the send buffer is full (as when
    // the loop finds the socket drained just after a flush): tokio has
    // never seen this registration writable, and the loop must not wait
    // for that with reading registered, but find out and switch again.
    let s = served.ask(Ask::Rearm);
    assert!(!s.writing_only && s.owed > 0, "{s:?}");
    std::thread::sleep(Duration::from_millis(20));
    let s = served.snapshot();
    assert!(s.writing_only, "stuck, and registered for reading: {s:?}");
    sent += segments_wake_nobody(&served, &data[sent..]);
    // The rest, as the peer now reads: nothing lost, in order.
    served.finish(&data[..sent]);
}

/// Sends 32 segments of 1 KiB from `data` to a server whose echo is
/// stuck: they must reach the server's kernel and wake nothing there.
/// Returns how much was sent.
fn segments_wake_nobody(served: &Served, data: &[u8]) -> usize {
    let mut client = served.client.try_clone().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (unread, wakeups) = (served.unread(), served.wakeups());
    let mut more = 0;
    for _ in 0..32 {
        more += write_until_refused(&mut client, &data[more..more + 1024]);
        std::thread::sleep(Duration::from_millis(3));
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        more,
        32 * 1024,
        "the peer's own buffer filled: the test needs room"
    );
    assert!(
        served.unread() >= unread + more,
        "the segments did not arrive"
    );
    let woken = served.wakeups() - wakeups;
    assert!(woken <= 3, "{woken} wake-ups for 32 segments nobody reads");
    let s = served.snapshot();
    assert!(s.writing_only && s.owed <= BASE_READ, "{s:?}");
    more
}

/// A peer that streams and reads back, then stops reading: while it reads,
/// reads grow to `read_size`; once it stops, the loop owes at most one
/// such read, and stops reading. Then everything comes back, in order.
#[test]
fn a_stream_that_stops_reading_owes_at_most_one_read() {
    let read_size = 256 * 1024;
    let served = Served::start(read_size, Some(64 * 1024));
    let mut writer = served.client.try_clone().unwrap();
    let data = Arc::new(pattern(2, 24 << 20));
    // A first stretch unread, so an echo is refused and then taken.
    let (mut sent, _) = feed_until_stuck(&served, &data, 0, 64 * 1024);
    // Read back while writing 4 MiB more: it streams. (The clones share
    // one open file, so blocking again is for both.)
    writer.set_nonblocking(false).unwrap();
    let mut reader = served.client.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = sent + (4 << 20);
    let reading = std::thread::spawn(move || {
        let mut got = vec![0u8; target];
        reader.read_exact(&mut got).unwrap();
        got
    });
    writer.write_all(&data[sent..target]).unwrap();
    sent = target;
    let got = reading.join().unwrap();
    assert!(
        got[..] == data[..target],
        "the echo differs while streaming"
    );
    assert!(
        served.snapshot().reads_back,
        "the peer read back, but is not trusted to"
    );
    // Now it stops reading: the loop owes at most one read.
    let stuck;
    (sent, stuck) = feed_until_stuck(&served, &data, sent, 64 * 1024);
    assert!(stuck.owed <= read_size, "owes {} bytes", stuck.owed);
    std::thread::sleep(Duration::from_millis(50));
    let later = served.wait_stuck();
    assert_eq!(later.owed, stuck.owed, "read on while an echo was stuck");
    // The rest, in order, after the part already checked.
    let mut client = served.client.try_clone().unwrap();
    client.set_nonblocking(false).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), sent - target, "bytes lost or added");
    assert!(
        rest[..] == data[target..sent],
        "the echo differs after the stall"
    );
    drop(served.ask);
    assert_eq!(served.thread.join().unwrap().unwrap(), Ending::Eof);
}

/// Runs one step of the loop to completion on `rt`.
fn step<S: StreamSocket>(
    rt: &tokio::runtime::Runtime,
    echo: &mut EchoSocket<S>,
    flush: bool,
) -> Option<Ending> {
    rt.block_on(std::future::poll_fn(|cx| {
        if flush {
            if echo.pending.is_none() {
                return Poll::Ready(None);
            }
            match echo.poll_flush(cx) {
                Poll::Ready(Ok(None)) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(r) => Poll::Ready(r.unwrap()),
                Poll::Pending => Poll::Pending,
            }
        } else {
            echo.poll_echo(cx).map(Result::unwrap)
        }
    }))
}

/// The read sizes, step by step: 64 KiB until the peer has read back a
/// refused echo, then as large as `read_size` while reads fill up, and 64
/// KiB again after a short one. One scenario, step by step, so longer
/// than 80 lines: split, its steps would lose the state they share.
#[test]
fn reads_grow_only_while_a_reading_peer_streams() {
    let rt = runtime();
    let read_size = 128 * 1024;
    let (client, server) = connected();
    // Room for several large reads in the server's kernel, and for the
    // echo on the way back.
    for s in [&client, &server] {
        let s = socket2::SockRef::from(s);
        s.set_recv_buffer_size(1 << 20).unwrap();
        s.set_send_buffer_size(1 << 20).unwrap();
    }
    let fd = server.as_raw_fd();
    let metrics = Arc::new(Metrics::new());
    let mut echo = {
        let _runtime = rt.enter();
        echo_for(server, read_size, &metrics)
    };
    let data = Arc::new(pattern(3, (2 << 20) + 12_345));
    let mut writer = client.try_clone().unwrap();
    let to_write = data.clone();
    let writing = std::thread::spawn(move || writer.write_all(&to_write).unwrap());
    let mut reader = client.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    let received = || metrics.snapshot(Transport::Tcp).received as usize;
    // One read, once the kernel holds more than it may take.
    let read = |echo: &mut EchoSocket<_>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while socket_queues(fd).map_or(0, |q| q.1) < read_size + 1 {
            assert!(Instant::now() < deadline, "the peer's data does not arrive");
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = received();
        assert_eq!(step(&rt, echo, false), None);
        step(&rt, echo, true);
        received() - before
    };
    for _ in 0..3 {
        echo.reads_back = false;
        assert_eq!(
            read(&mut echo),
            BASE_READ,
            "read past 64 KiB for a peer not known to read"
        );
        assert_eq!(echo.next_read(), BASE_READ);
    }
    echo.reads_back = true;
    assert_eq!(
        read(&mut echo),
        BASE_READ,
        "the first read after is still small"
    );
    assert_eq!(echo.next_read(), read_size, "a full read of a reading peer");
    for _ in 0..3 {
        echo.reads_back = true;
        assert_eq!(read(&mut echo), read_size);
        assert_eq!(echo.next_read(), read_size);
    }
    // The rest, to the end, once all of it is in the server's kernel: a
    // short read makes the next one small again.
    writing.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while socket_queues(client.as_raw_fd()).is_none_or(|q| q.0 > 0) {
        assert!(Instant::now() < deadline, "the peer's data does not leave");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut short = false;
    while let Some((_, unread)) = socket_queues(fd).filter(|q| q.1 > 0) {
        let want = echo.next_read();
        let before = received();
        assert_eq!(step(&rt, &mut echo, false), None);
        step(&rt, &mut echo, true);
        let n = received() - before;
        assert_eq!(
            n,
            want.min(unread),
            "read {n} of {unread} queued, {want} wanted"
        );
        if n < want {
            assert_eq!(echo.next_read(), BASE_READ, "after a short read");
            short = true;
        }
    }
    assert!(short, "no short read at the end");
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rt.block_on(&mut echo).unwrap(), Ending::Eof);
    drop(echo);
    let got = reading.join().unwrap();
    assert!(got[..] == data[..], "the echo differs");
}

/// Ping-pong allocates nothing per message: the loop's buffer is the
/// thread's, and nothing is ever stuck.
#[test]
fn messages_do_not_allocate() {
    let rt = runtime();
    // Allocations on the server's thread over one connection of `count`
    // messages of `size` bytes.
    let allocations = |size: usize, count: usize| {
        let (client, server) = connected();
        let metrics = Arc::new(Metrics::new());
        let mut echo = {
            let _runtime = rt.enter();
            echo_for(server, 256 * 1024, &metrics)
        };
        let talking = std::thread::spawn(move || {
            let mut client = client;
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let msg = pattern(4, size);
            let mut back = vec![0u8; size];
            for _ in 0..count {
                client.write_all(&msg).unwrap();
                client.read_exact(&mut back).unwrap();
                assert!(back == msg);
            }
            client.shutdown(Shutdown::Write).unwrap();
        });
        let before = crate::counting::allocations();
        let ended = rt.block_on(&mut echo).unwrap();
        let after = crate::counting::allocations();
        assert_eq!(ended, Ending::Eof);
        talking.join().unwrap();
        after - before
    };
    for size in [64, 1024, 16 * 1024] {
        let few = allocations(size, 50);
        let many = allocations(size, 1050);
        assert!(
            many <= few + 4,
            "{size}-byte messages: {few} allocations for 50, {many} for 1050"
        );
    }
}

/// A new connection whose peer has already sent is echoed on the loop's
/// first poll, before the reactor has reported the socket readable: an
/// accepted connection's first bytes have usually arrived by then, and
/// waiting for readiness would cost every connection a turn of the
/// reactor (churn: one `epoll_wait` more per connection).
#[test]
fn a_new_connection_is_read_at_once() {
    let rt = runtime();
    let metrics = Arc::new(Metrics::default());
    let _guard = rt.enter();
    let (mut client, server) = connected();
    client.write_all(b"first").unwrap();
    // Until the server's socket holds it (loopback: at once, but say so).
    let deadline = Instant::now() + Duration::from_secs(5);
    while socket_queues(server.as_raw_fd()).is_none_or(|(_, inq)| inq < 5) {
        assert!(Instant::now() < deadline, "the bytes never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut echo = std::pin::pin!(echo_for(server, 64 * 1024, &metrics));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    // One poll, and no turn of the reactor: the first read does not wait.
    assert!(echo.as_mut().poll(&mut cx).is_pending());
    client.set_nonblocking(true).unwrap();
    let mut back = [0u8; 16];
    let n = client
        .read(&mut back)
        .expect("echoed on the first poll, without waiting for readiness");
    assert_eq!(&back[..n], b"first");
}
