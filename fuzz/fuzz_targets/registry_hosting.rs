//! Fuzz target `registry_hosting`: see `todo_deploy_fuzz::registry_hosting`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::registry_hosting(data));
