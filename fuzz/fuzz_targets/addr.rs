//! Fuzzes the address parser: never panics; what parses shows as text that parses back to it.
//! The properties are in tests/support/props.rs, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/support/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::addr(data));
