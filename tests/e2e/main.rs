//! End-to-end tests of the `todo-deploy` binary: one test binary, so support code compiles once.
//!
//! - `render`: the manifests, pinned by snapshots and checked by an independent schema validator;
//! - `config_errors`: every kind of bad input, with the place and the fix in the message;
//! - `secrets`: planted secret values never appear in any output;
//! - `fixture_images`: the fixture images, run under Docker, behave as the stand-in simulates;
//! - `isolation`: no test reaches a kubeconfig, home or Docker configuration outside its own
//!   directory (every command is built by `support::todo_deploy` / `support::isolated`);
//! - `adopt`: taking over what the old Helm chart or `kubectl apply` installed, with no gap in
//!   ready pods behind a Service;
//! - `doctor`: every check passing and failing (a node too small for the rolling update, a
//!   missing IngressClass, Docker contexts, unreachable Docker, secrets, a root image);
//! - `open`: the Ingress's URL when reachable, else the gateway over port-forwards;
//! - `multinode`: every node container of a two-node kind cluster gets each image;
//! - `registry`: pushing to a real registry (Distribution 2.8), plain and with a login, and
//!   deploying by digest; a cluster's published local registry (KEP-1755);
//! - `deploy`, `down`, `release`: the commands against a cluster — the in-process API stand-in, or the real
//!   cluster of `TODO_DEPLOY_E2E_KUBECONFIG` (scenarios that need the stand-in's fault injection
//!   say so and skip there).
//! - `permissions`: every command as a ServiceAccount with only `edit` in the namespace, the
//!   refusal before any write, and the Role `todo-deploy rbac` prints, rule by rule.

mod adopt;
mod build;
mod config_errors;
mod deploy;
mod dev;
mod doctor;
mod down;
mod fixture_images;
mod isolation;
mod load;
mod logs;
mod measure;
mod multinode;
mod open;
mod outage;
mod permissions;
mod registry;
mod release;
mod render;
mod seconds;
mod secrets;
mod support;
