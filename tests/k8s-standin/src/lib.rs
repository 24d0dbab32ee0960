//! A stand-in for the Kubernetes API server (placeholder; being written).

pub mod managed;
pub mod resources;
pub mod selectors;
pub mod status;
pub mod util;
