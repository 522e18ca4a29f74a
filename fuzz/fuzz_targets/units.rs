//! Fuzzes the duration and size parsers: never panic; durations and sizes round-trip through their display.
//! The properties are in tests/support/props.rs, shared with the bounded proptest run.
#![no_main]

#[path = "../../tests/support/props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::units(data));
