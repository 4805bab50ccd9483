#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ota_format_fuzz::zstd_decoder::zstd_decoder(data));
