//! Fuzz target `set`: see `todo_deploy_fuzz::set`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::set(data));
