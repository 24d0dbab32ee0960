//! The build stage: images from Dockerfiles through the Docker Engine API.
//!
//! So far this holds the build context (what is sent, and the digest that names an image by its
//! inputs); the bollard builds themselves land with the build stage.

pub mod context;
pub mod ignore;

pub use context::{BuildInputs, ContextError};
