#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ota_format_fuzz::diff_patch(data));
