#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpvault_fuzz::resource_patterns(data));
