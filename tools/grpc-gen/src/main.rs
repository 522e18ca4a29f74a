//! Compiles `proto/` into `src/grpc/generated/`: the messages (prost), the
//! servers (tonic, without its transport), and the encoded file
//! descriptor set that server reflection serves. protox parses the
//! `.proto` files, so no `protoc` is needed.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let protos = root.join("proto");
    let out = root.join("src/grpc/generated");
    let files = ["grpc/testing/test.proto", "fgrpc/ping.proto"];
    let set = protox::compile(files, [&protos])?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&set),
    )?;
    tonic_prost_build::configure()
        .build_transport(false)
        // `bytes` fields as `Bytes`: answers slice a static run of zeros
        // instead of allocating their payloads.
        .bytes(".")
        .out_dir(&out)
        .compile_fds(set)?;
    Ok(())
}
