//! The build stage: an image per service from its Dockerfile, through the Docker Engine API.
//!
//! - [`context`] decides what is sent (`.dockerignore`) and digests every build input;
//! - [`tar`] streams the context to the engine;
//! - `image` reuses or builds one image; [`build_all`] builds every service's at once.
//!
//! An image is labelled [`INPUTS_LABEL`]` = <input digest>`. When the engine already holds an
//! image under the planned reference with the same label, nothing is built: with the default
//! content tags an unchanged service costs one `inspect`, and a fixed tag (`--tag v1.2.0`) whose
//! inputs changed is rebuilt rather than trusted.

pub mod context;
mod error;
pub mod events;
pub mod ignore;
mod image;
pub mod output;
pub mod tar;

use bollard::Docker;

pub use context::{BuildInputs, ContextError};
pub use error::{BuildError, FailedBuild};
pub use events::BuildEvent;

use crate::plan::{ImageRef, ServicePlan};
use crate::progress::Events;

/// The image label holding the full input digest (hex SHA-256 from [`context::input_digest`]).
pub const INPUTS_LABEL: &str = "todo-deploy.inputs";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// Build every image, without the engine's layer cache, even when one with the same inputs
    /// exists.
    pub no_cache: bool,
    /// How many lines of output the error of a failed build shows.
    pub failure_tail: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            no_cache: false,
            failure_tail: 15,
        }
    }
}

/// A service's image, ready to load into the cluster; the release records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub service: String,
    pub image: ImageRef,
    /// The engine's image ID, `sha256:…`.
    pub id: String,
    /// The full input digest the image is labelled with.
    pub input_digest: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Built,
    /// An image with the same inputs existed; no build ran.
    Reused,
}

/// Builds (or reuses) one service's image; what [`build_all`] runs for each service, for a
/// caller that does more with each image as soon as it is built (loading it while the others
/// still build). Dropping the future stops the build and reports [`BuildEvent::Cancelled`].
pub async fn build_one(
    docker: &Docker,
    service: &ServicePlan,
    options: &BuildOptions,
    events: &Events,
) -> Result<BuiltImage, BuildError> {
    image::build(docker, service, options, events).await
}

/// Builds (or reuses) every service's image, all at the same time. The results come in the
/// order of `services`.
///
/// The first failure ends the stage: the other builds are dropped, which stops them in the
/// engine, and report [`BuildEvent::Cancelled`]. Dropping the returned future does the same to
/// every build, so a caller can race it against Ctrl-C:
///
/// ```ignore
/// tokio::select! {
///     built = build_all(&docker, &plan.services, &options, &ui.events) => built?,
///     _ = tokio::signal::ctrl_c() => return Ok(Exit::Interrupted),
/// }
/// ```
pub async fn build_all(
    docker: &Docker,
    services: &[ServicePlan],
    options: &BuildOptions,
    events: &Events,
) -> Result<Vec<BuiltImage>, BuildError> {
    futures_util::future::try_join_all(
        services
            .iter()
            .map(|service| image::build(docker, service, options, events)),
    )
    .await
}
