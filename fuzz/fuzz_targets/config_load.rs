//! Fuzz target `config_load`: see `todo_deploy_fuzz::config_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::config_load(data));
