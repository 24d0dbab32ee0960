//! What a takeover reports: the Helm release it takes over, each object whose fields become
//! ours, each old workload replaced and each Service switched, and what happens to Helm's records.

use crate::helm::manifest::Summary;
use crate::render::kind::ObjectKey;

#[derive(Debug, Clone, PartialEq)]
pub enum AdoptEvent {
    /// The Helm release to take over, as its last deployed revision had it.
    HelmRelease(Summary),
    /// That revision, recorded as our revision 0.
    RecordedHelmRevision { release: String, revision: u32 },
    /// The fields the previous owner's managers had became ours: what todo-deploy does not
    /// render is removed by its apply (Helm's labels and annotations among them).
    FieldsTaken {
        key: ObjectKey,
        managers: Vec<String>,
    },
    /// An old Deployment of our name (with another selector) was deleted, its ReplicaSets and
    /// pods left serving until ours are ready.
    OrphanedOld {
        deployment: String,
        replica_sets: Vec<String>,
    },
    /// Ours run `replicas` until the old ones are gone: no fewer than the old ones had.
    Surge {
        deployment: String,
        replicas: i32,
        old: String,
    },
    /// The configuration runs fewer replicas than the previous owner did.
    FewerReplicas {
        deployment: String,
        before: i32,
        configured: i32,
    },
    /// A Service selects our pods now; its endpoints list `ready` of them and no old one.
    Switched { service: String, ready: usize },
    /// A Service's endpoints cannot be read, so the move to our pods is not confirmed.
    EndpointsUnreadable { service: String },
    /// An old workload was scaled to zero and deleted.
    Retired { workload: String, replicas: i32 },
    /// Helm's records of the release: the deployed revisions marked uninstalled, or every
    /// record removed.
    HelmRecords {
        release: String,
        revisions: Vec<u32>,
        removed: bool,
    },
    /// `--from-helm` names a release whose latest revision is uninstalled and that has nothing
    /// with our names: taken over already.
    NothingLeft { release: String, revision: u32 },
    /// Objects of the Helm release that todo-deploy does not render, left as they are.
    LeftBehind {
        release: String,
        objects: Vec<String>,
    },
}
