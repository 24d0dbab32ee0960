//! Fuzz target `docker_config`: see `todo_deploy_fuzz::docker_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::docker_config(data));
