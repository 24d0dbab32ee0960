//! Fuzz target `duration`: see `todo_deploy_fuzz::duration`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::duration(data));
