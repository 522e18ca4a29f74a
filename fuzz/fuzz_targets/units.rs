//! Fuzzes the duration and size parsers: never panic; durations and sizes round-trip through their display.
//! The properties are in tests/props, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/props/mod.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::units(data));
