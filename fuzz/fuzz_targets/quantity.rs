//! Fuzz target `quantity`: see `todo_deploy_fuzz::quantity`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_deploy_fuzz::quantity(data));
