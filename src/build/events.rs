//! What the build stage reports while it works.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// An image with exactly these build inputs exists already: nothing to build.
    Reused { service: String, image: String },
    /// The build context is on its way to the engine.
    Started { service: String, image: String },
    /// A Dockerfile step began, e.g. step 3 of 7, `COPY . /app`.
    Step {
        service: String,
        step: u32,
        total: u32,
        instruction: String,
    },
    /// One line of build output: streamed with `-v`, and its tail shown when a build fails.
    Output { service: String, line: String },
    Finished {
        service: String,
        image: String,
        elapsed: Duration,
    },
    /// The build stopped with an error; the error itself is returned by the stage.
    Failed { service: String },
    /// The build was abandoned: another image failed, or the run was interrupted (Ctrl-C).
    Cancelled { service: String },
}
