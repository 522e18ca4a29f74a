//! Fuzzes the Python bytes repr: printable ASCII only, and it reads back to the input.
//! The properties are in tests/props, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/props/mod.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::pyrepr(data));
