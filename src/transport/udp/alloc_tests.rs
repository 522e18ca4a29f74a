//! The promise the UDP loop keeps on its hot path: nothing is allocated
//! per datagram. Counted with the test binary's allocator
//! ([`crate::counting`]), on a runtime on this thread.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::counting::allocations;
use crate::metrics::Metrics;
use crate::transport::udp;
use crate::transport::udp_guard::Guard;

/// Allocations on this thread while `rounds` rounds of 8 datagrams are
/// echoed by `udp::serve` on a runtime on this thread.
fn allocations_for(rt: &tokio::runtime::Runtime, rounds: usize) -> u64 {
    rt.block_on(async {
        let socket = udp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let socket = tokio::net::UdpSocket::from_std(socket).unwrap();
        // A limit high enough never to refuse, so that it is checked.
        let guard = Arc::new(Guard::new(100_000_000));
        let serving = tokio::spawn(udp::serve(socket, guard, Arc::new(Metrics::new())));
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = vec![0u8; 2048];
        let data: Vec<Vec<u8>> = (0..8u8)
            .map(|i| {
                (0..1 + 200 * usize::from(i))
                    .map(|j| (j as u8) ^ i)
                    .collect()
            })
            .collect();
        // The first round makes what is made once.
        round(&client, addr, &data, &mut buf).await;
        let before = allocations();
        for _ in 0..rounds {
            round(&client, addr, &data, &mut buf).await;
        }
        let after = allocations();
        serving.abort();
        after - before
    })
}

/// Sends all of `data` at once, so that the server reads it in batches,
/// then checks each reply.
async fn round(client: &tokio::net::UdpSocket, to: SocketAddr, data: &[Vec<u8>], buf: &mut [u8]) {
    for d in data {
        client.send_to(d, to).await.unwrap();
    }
    for d in data {
        let n = client.recv(buf).await.unwrap();
        assert!(buf[..n] == d[..]);
    }
}

#[test]
fn answering_datagrams_allocates_nothing_per_datagram() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let few = allocations_for(&rt, 10);
    let many = allocations_for(&rt, 260);
    assert!(
        many <= few + 4,
        "{few} allocations for 80 datagrams, {many} for 2080"
    );
}
