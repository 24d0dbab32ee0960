//! The build stage: images from Dockerfiles through the Docker Engine API.
//!
//! So far this holds the build context (what is sent, and the digest that names an image by its
//! inputs); the bollard builds themselves land with the build stage.

pub mod context;
mod events;
pub mod ignore;

pub use context::{BuildInputs, ContextError};
pub use events::BuildEvent;
