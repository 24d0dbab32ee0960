//! Fuzz target `plan`: see `todo_deploy_fuzz::plan`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::plan(data));
