//! What the load stage reports while it works.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum LoadEvent {
    /// The node (or registry) has the image with the built ID already: nothing is sent.
    AlreadyPresent {
        service: String,
        image: String,
        node: String,
    },
    /// The image is on its way to these nodes. `size` is the engine's size of the image, an
    /// estimate of the archive's.
    Started {
        service: String,
        image: String,
        nodes: Vec<String>,
        size: u64,
    },
    /// Bytes of the archive sent so far (to every node at once).
    Progress { service: String, sent: u64 },
    Finished {
        service: String,
        image: String,
        nodes: Vec<String>,
        bytes: u64,
        elapsed: Duration,
    },
    /// Only the layers these nodes lacked were sent: `layers` of the image's `total`, in an
    /// archive of `bytes`; `size` is what the whole image would have been.
    Layers {
        service: String,
        image: String,
        nodes: Vec<String>,
        layers: usize,
        total: usize,
        bytes: u64,
        size: u64,
        elapsed: Duration,
        /// Where the layers were read (`None`: the engine pushed them).
        read: Option<ReadFrom>,
    },
    /// The node held the image under another name, `from`: it was tagged, nothing was sent.
    Tagged {
        service: String,
        image: String,
        from: String,
        node: String,
    },
    /// Sending stopped with an error; the error itself is returned by the stage.
    Failed { service: String },
}

/// Where a layered load read the layers it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFrom {
    /// The engine's storage on this machine, without waiting for an export.
    Storage,
    /// The engine's export (`docker save`), because the storage could not be read, and why.
    Export { why: String },
}
