//! The batched UDP server (`recvmmsg`/`sendmmsg`) over real sockets: many
//! datagrams of mixed sizes in flight from several clients at once, each
//! answered byte for byte, to its own sender, in order. (That it
//! allocates nothing per datagram is a unit test beside the loop,
//! `src/transport/udp/alloc_tests.rs`, with the library's counting
//! allocator.)

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::support::*;
use echoes::metrics::ErrorKind;
use echoes::metrics::UdpResult;
use echoes::{Server, ServerConfig, Transport};

/// The kernel's memory for the datagrams queued on one socket, as
/// estimated to stay under the receive buffer: the payload rounded up to a
/// power of two, plus overhead (a 64-byte datagram takes about 800 bytes,
/// a 65,507-byte one about 70 KiB).
fn kernel_cost(len: usize) -> usize {
    (len + 512).next_power_of_two() + 1024
}

/// Bytes of kernel memory that may be in flight at once, across all
/// clients: less than the server's receive buffer (`rmem_default`), so that
/// the kernel drops nothing and every datagram must come back.
fn in_flight_budget() -> usize {
    let rmem = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(212_992);
    rmem * 3 / 4
}

/// The sizes client `c` sends: the extremes, then a deterministic mix of
/// tiny, small, medium and large.
fn sizes(c: u64, n: usize) -> Vec<usize> {
    let mut x = c.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![1, 65_507, 2, 65_506, 1472, 1473];
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x >> 16) as usize;
        out.push(match r % 10 {
            0..=3 => 1 + r % 64,
            4..=6 => 65 + r % 1500,
            7..=8 => 1501 + r % 20_000,
            _ => 21_501 + r % (65_507 - 21_500),
        });
    }
    out
}

/// Kernel memory in flight, shared by the clients.
struct Budget {
    used: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Budget {
    /// Takes `cost` if it fits, or if nothing is in flight; waits for room
    /// only when `wait` (the caller has nothing in flight to read instead).
    fn take(&self, cost: usize, wait: bool) -> bool {
        let mut used = self.used.lock().unwrap();
        loop {
            if *used == 0 || *used + cost <= self.limit {
                *used += cost;
                return true;
            }
            if !wait {
                return false;
            }
            used = self.freed.wait(used).unwrap();
        }
    }

    fn give(&self, cost: usize) {
        *self.used.lock().unwrap() -= cost;
        self.freed.notify_all();
    }
}

/// Client `c`: sends `n` datagrams of mixed sizes from its own address,
/// up to 16 in flight, and checks that each reply is the oldest datagram
/// in flight, byte for byte, from the server.
fn client(c: u64, n: usize, server: SocketAddr, budget: &Budget) {
    // Each client from its own address.
    let s = UdpSocket::bind(SocketAddr::from(([127, 0, 1, 1 + c as u8], 0))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut in_flight: VecDeque<Vec<u8>> = VecDeque::new();
    let mut buf = vec![0u8; 70_000];
    let mut to_send = sizes(c, n).into_iter().enumerate().peekable();
    while to_send.peek().is_some() || !in_flight.is_empty() {
        if let Some(&(i, len)) = to_send.peek()
            && in_flight.len() < 16
            && budget.take(kernel_cost(len), in_flight.is_empty())
        {
            // Each client's bytes differ, even for one byte.
            let mut data = pattern(c << 32 | i as u64, len);
            data[0] = c as u8;
            s.send_to(&data, server).unwrap();
            in_flight.push_back(data);
            to_send.next();
            continue;
        }
        let (got, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("client {c}: no reply ({e})"));
        assert_eq!(from, server, "client {c}: a reply from elsewhere");
        let expected = in_flight.pop_front().expect("a reply to nothing sent");
        assert!(
            buf[..got] == expected[..],
            "client {c}: reply of {got} bytes is not the {}-byte datagram sent first",
            expected.len()
        );
        budget.give(kernel_cost(expected.len()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sizes_from_several_clients_come_back_exactly() {
    const CLIENTS: u64 = 4;
    const EACH: usize = 150;
    let server = Server::bind(ServerConfig::new("udp://127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = server.socket_addrs(Transport::Udp)[0];
    let metrics = server.stats().metrics().clone();
    let shutdown = server.shutdown_handle();
    let running = tokio::spawn(server.run());
    let budget = Arc::new(Budget {
        used: Mutex::new(0),
        freed: Condvar::new(),
        limit: in_flight_budget(),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let budget = budget.clone();
            std::thread::spawn(move || client(c, EACH, addr, &budget))
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        for c in clients {
            c.join().expect("a client failed");
        }
    })
    .await
    .unwrap();
    let total = CLIENTS * EACH as u64;
    assert_eq!(metrics.udp_datagrams(UdpResult::Answered), total);
    assert_eq!(metrics.errors(Transport::Udp, ErrorKind::Io), 0);
    let snap = metrics.snapshot(Transport::Udp);
    assert_eq!(snap.received, snap.sent);
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}
