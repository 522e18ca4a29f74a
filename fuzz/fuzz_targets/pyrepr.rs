//! Fuzzes the Python bytes repr: printable ASCII only, and it reads back to the input.
//! The properties are in tests/support/props.rs, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/support/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::pyrepr(data));
