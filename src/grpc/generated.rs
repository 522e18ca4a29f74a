//! The code made from `proto/` by `tools/grpc-gen` (prost messages and
//! tonic servers and clients), checked in so that a build needs no
//! protobuf compiler, and the encoded descriptors that server reflection
//! serves. Regenerate after changing a `.proto`:
//! `cargo run --manifest-path tools/grpc-gen/Cargo.toml`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// gRPC's interop service and its messages (`grpc.testing`).
pub mod testing {
    include!("generated/grpc.testing.rs");
}

/// fortio's ping service (`fgrpc`).
pub mod fgrpc {
    include!("generated/fgrpc.rs");
}

/// The file descriptor set of `proto/`, for server reflection.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!("generated/descriptor.bin");
