//! Fuzz target `field_path`: see `todo_deploy_fuzz::field_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::field_path(data));
