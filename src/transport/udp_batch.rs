//! A batch of datagrams: up to [`BATCH`] read by one `recvmmsg`, and the
//! answers among them written by `sendmmsg`, in the order they came.
//!
//! Every slot holds [`SLOT`] bytes, more than the largest UDP payload
//! (65,507 bytes over IPv4, 65,527 over IPv6), so no datagram is ever
//! truncated; one that somehow was (a jumbogram; the kernel says
//! `MSG_TRUNC`) is dropped, never answered short. The slots are one
//! zeroed allocation of `BATCH × SLOT` (2 MiB) per socket, made once. At
//! this size the allocator usually takes it straight from the kernel, whose
//! pages become resident only when a datagram reaches them: a socket that
//! only sees small datagrams then holds about one page per slot (128 KiB).
//! None holds more than 2 MiB.
//! Source addresses are kept as the kernel gave them and handed back to
//! `sendmmsg` as they are.
//!
//! The two system calls are made here with `libc`, by hand: socket2 has
//! neither; nix's `recvmmsg`/`sendmmsg` keep their headers in a structure
//! of raw pointers that is not `Send` (it could not be held across an
//! `await` in a task) and would be a new dependency for two calls; and
//! quinn-udp sends one destination per call (GSO), not many. Nothing
//! here holds a pointer across calls: each call builds its headers on the
//! stack, pointing into the batch's own buffers, and the kernel is done
//! with them when the call returns.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// The most datagrams one system call reads or writes.
pub const BATCH: usize = 32;

/// The bytes each datagram's slot holds: 64 KiB, more than any UDP payload.
pub const SLOT: usize = 64 * 1024;

/// The datagrams of one `recvmmsg`, and which of them to answer.
pub struct Batch {
    /// `BATCH` slots of `SLOT` bytes.
    bufs: Box<[u8]>,
    /// Each slot's source address, as the kernel wrote it.
    names: Box<[libc::sockaddr_storage]>,
    name_lens: [libc::socklen_t; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    /// Datagrams received by the last `recv`.
    len: usize,
    /// The slots to answer, in the order they came.
    replies: [u8; BATCH],
    reply_count: usize,
}

impl Batch {
    /// An empty batch with its buffers allocated (and not yet touched).
    pub fn new() -> Box<Batch> {
        // SAFETY: sockaddr_storage is plain integers; all zeros is valid.
        let empty: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Box::new(Batch {
            bufs: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            names: vec![empty; BATCH].into_boxed_slice(),
            name_lens: [0; BATCH],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            len: 0,
            replies: [0; BATCH],
            reply_count: 0,
        })
    }

    /// Reads what datagrams are queued on `fd`, up to [`BATCH`], without
    /// blocking (`WouldBlock` when there are none). Forgets the previous
    /// batch and its replies.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.len = 0;
        self.reply_count = 0;
        let base = self.bufs.as_mut_ptr();
        let names = self.names.as_mut_ptr();
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: base.wrapping_add(i * SLOT).cast(),
            iov_len: SLOT,
        });
        // SAFETY: mmsghdr is plain data; all zeros is an empty header.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (h, iov)) in hdrs.iter_mut().zip(&mut iovs).enumerate() {
            h.msg_hdr.msg_name = names.wrapping_add(i).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each header points to its own sockaddr_storage in
        // `self.names` (with that size as its length) and to one iovec of
        // `iovs`, which points to its own SLOT bytes of `self.bufs`; all of
        // them live, and are not otherwise used, until the call returns.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (i, h) in hdrs[..n].iter().enumerate() {
            self.lens[i] = (h.msg_len as usize).min(SLOT);
            self.name_lens[i] = h.msg_hdr.msg_namelen;
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        self.len = n;
        Ok(n)
    }

    /// Datagrams in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes of datagram `i`.
    pub fn data(&self, i: usize) -> &[u8] {
        &self.bufs[i * SLOT..][..self.lens[i]]
    }

    /// Whether datagram `i` was larger than its slot (and so cut short).
    pub fn truncated(&self, i: usize) -> bool {
        self.truncated[i]
    }

    /// Where datagram `i` came from; `None` if not IPv4 or IPv6.
    pub fn source(&self, i: usize) -> Option<SocketAddr> {
        socket_addr(&self.names[i], self.name_lens[i])
    }

    /// Marks datagram `i` to be answered, after those marked before it.
    pub fn answer(&mut self, i: usize) {
        debug_assert!(i < self.len && self.reply_count < BATCH);
        self.replies[self.reply_count] = i as u8;
        self.reply_count += 1;
    }

    /// Datagrams marked to be answered.
    pub fn reply_count(&self) -> usize {
        self.reply_count
    }

    /// The datagram the `k`-th reply answers.
    pub fn reply(&self, k: usize) -> usize {
        usize::from(self.replies[k])
    }

    /// Sends the replies from the `from`-th on, each to its datagram's
    /// source, without blocking: how many went, in order (at least one),
    /// or the error of the first (`WouldBlock` when the socket has no room).
    pub fn send(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        let pending = &self.replies[from..self.reply_count];
        let base = self.bufs.as_mut_ptr();
        let names = self.names.as_mut_ptr();
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|k| {
            let i = pending.get(k).map_or(0, |&i| usize::from(i));
            libc::iovec {
                iov_base: base.wrapping_add(i * SLOT).cast(),
                iov_len: self.lens[i],
            }
        });
        // SAFETY: mmsghdr is plain data; all zeros is an empty header.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((h, iov), &i) in hdrs.iter_mut().zip(&mut iovs).zip(pending) {
            let i = usize::from(i);
            h.msg_hdr.msg_name = names.wrapping_add(i).cast();
            h.msg_hdr.msg_namelen = self.name_lens[i];
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `pending.len()` headers each point to the
        // source address the kernel wrote into `self.names` (with the length
        // it gave) and to one iovec of `iovs`, which points to the received
        // bytes of its slot in `self.bufs`; all live until the call returns,
        // and the kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr(),
                pending.len() as libc::c_uint,
                libc::MSG_DONTWAIT as _,
            )
        };
        match usize::try_from(n) {
            Ok(0) if !pending.is_empty() => {
                // Not documented to happen; say so rather than spin on it.
                Err(io::Error::other("sendmmsg sent nothing"))
            }
            Ok(n) => Ok(n),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }

    /// A batch holding `datagrams` as if received, for tests of what is
    /// done with them.
    #[cfg(test)]
    pub fn filled(datagrams: &[(SocketAddr, &[u8])]) -> Box<Batch> {
        let mut b = Batch::new();
        for (i, (src, data)) in datagrams.iter().enumerate() {
            let sock = socket2::SockAddr::from(*src);
            // SAFETY: `sock` holds `sock.len()` bytes of a sockaddr, no more
            // than a sockaddr_storage, into which they are copied.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    sock.as_ptr().cast::<u8>(),
                    (&mut b.names[i] as *mut libc::sockaddr_storage).cast::<u8>(),
                    sock.len() as usize,
                );
            }
            b.name_lens[i] = sock.len();
            b.bufs[i * SLOT..][..data.len()].copy_from_slice(data);
            b.lens[i] = data.len();
        }
        b.len = datagrams.len();
        b
    }
}

/// The address in `storage` (of `len` bytes, as the kernel gave it).
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says it is a sockaddr_in, the length that
            // all of it is there, and sockaddr_storage is aligned for any
            // sockaddr.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_reads_several_datagrams_and_answers_some_in_order() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sizes = [1usize, 0, 65_507, 300, 9000];
        for (k, &n) in sizes.iter().enumerate() {
            a.send_to(&vec![k as u8 + 1; n], to).unwrap();
        }
        let mut batch = Batch::new();
        let got = batch.recv(server.as_raw_fd()).unwrap();
        assert_eq!(got, sizes.len(), "all queued datagrams in one call");
        for (k, &n) in sizes.iter().enumerate() {
            assert_eq!(batch.data(k), &vec![k as u8 + 1; n][..]);
            assert_eq!(batch.source(k), Some(a.local_addr().unwrap()));
            assert!(!batch.truncated(k));
        }
        // Nothing more: WouldBlock, not a wait.
        let again = batch.recv(server.as_raw_fd()).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn replies_go_to_each_source_with_its_own_bytes() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let peers: Vec<_> = (0..4)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (k, p) in peers.iter().enumerate() {
            p.send_to(&vec![b'a' + k as u8; 1000 * (k + 1)], to)
                .unwrap();
        }
        let mut batch = Batch::new();
        assert_eq!(batch.recv(server.as_raw_fd()).unwrap(), 4);
        // Answer the 2nd and 4th only.
        batch.answer(1);
        batch.answer(3);
        assert_eq!(batch.send(server.as_raw_fd(), 0).unwrap(), 2);
        let mut buf = vec![0u8; 70_000];
        for (k, p) in peers.iter().enumerate() {
            p.set_nonblocking(true).unwrap();
            let got = p.recv_from(&mut buf);
            if k % 2 == 1 {
                let (n, from) = got.expect("a reply");
                assert_eq!(from, to);
                assert_eq!(&buf[..n], &vec![b'a' + k as u8; 1000 * (k + 1)][..]);
            } else {
                assert!(got.is_err(), "peer {k} was not to be answered");
            }
        }
        // Sending from past the end sends nothing and says so.
        assert_eq!(batch.send(server.as_raw_fd(), 2).unwrap(), 0);
    }

    #[test]
    fn addresses_round_trip_through_the_kernel_form() {
        for s in [
            "127.0.0.1:4242",
            "[::1]:4242",
            "[fe80::1%2]:9",
            "[::ffff:10.0.0.1]:1",
        ] {
            let addr: SocketAddr = s.parse().unwrap();
            let b = Batch::filled(&[(addr, b"x")]);
            assert_eq!(b.source(0), Some(addr), "{s}");
        }
        // SAFETY: all zeros is a valid sockaddr_storage (family AF_UNSPEC).
        let unspec: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        assert_eq!(socket_addr(&unspec, 128), None);
    }
}
