//! What the load stage did with each image on each node (or registry): its result.

/// What happened to an image on one node (or registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    pub service: String,
    /// The reference, as deployed.
    pub image: String,
    /// The image ID the node holds now.
    pub id: String,
    /// The node container's ID, when it is one.
    pub instance: Option<String>,
    /// The node container, the containerd socket, or the registry.
    pub node: String,
    pub outcome: NodeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome {
    /// The whole archive was sent (or pushed): its size in bytes.
    Loaded { bytes: u64 },
    /// Only the layers the node lacked were sent: `layers` of the image's `total`, in an
    /// archive of `bytes`.
    Layers {
        layers: usize,
        total: usize,
        bytes: u64,
    },
    /// The node held the image under another name, `from`: it was tagged, nothing was sent.
    Tagged { from: String },
    /// The node held the image with the same ID already; nothing was sent.
    AlreadyPresent,
}

impl NodeOutcome {
    /// The bytes sent to the node.
    pub fn bytes(&self) -> u64 {
        match self {
            NodeOutcome::Loaded { bytes } | NodeOutcome::Layers { bytes, .. } => *bytes,
            NodeOutcome::Tagged { .. } | NodeOutcome::AlreadyPresent => 0,
        }
    }
}
