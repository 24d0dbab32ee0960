//! Fuzz target `env_file`: see `todo_deploy_fuzz::env_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::env_file(data));
