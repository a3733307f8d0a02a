#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpvault_fuzz::args_paths(data));
