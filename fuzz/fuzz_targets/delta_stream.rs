#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ota_format_fuzz::delta_stream(data));
