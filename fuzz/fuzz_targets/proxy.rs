//! Fuzzes the PROXY protocol header parser: never panics; what it accepts
//! is framed as the spec says and encodes back to itself.
//! The properties are in tests/support/props.rs, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/support/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::proxy(data));
