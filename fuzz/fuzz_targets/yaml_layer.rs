//! Fuzz target `yaml_layer`: see `todo_deploy_fuzz::yaml_layer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::yaml_layer(data));
