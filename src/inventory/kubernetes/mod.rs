//! The Kubernetes inventory source, pure part: Kubernetes and MetalLB objects turned into plain data
//! ([`objects`], [`lease`]), an index that watch events keep current ([`index`]), and the loop that
//! feeds a watch stream into it ([`driver`]).
//!
//! Nothing here does I/O or reads a clock: objects come in, plain data goes out, and the time is an
//! argument wherever liveness matters. The watchers themselves (clients, API calls) live elsewhere and
//! only hand their streams to [`driver::drive`].

pub mod driver;
pub mod index;
pub mod lease;
pub mod lenient;
pub mod objects;
pub mod pace;
pub mod parts;
pub mod selector;
pub mod source;

use std::fmt;

pub use driver::{IndexHandle, drive, drive_fallible};
pub use index::{
    Announcer, AnnouncerSource, ClusterIndex, ClusterView, Events, IndexConfig, IpAddressPools,
    KubeProxyConfigMaps, L2Advertisements, Leases, LegacyConfigMaps, Nodes, PeerView, PoolView, Resource,
    ServiceL2Statuses, ServiceView, Services, SyncState,
};
pub use lease::{PeerInfo, peer_lease};
pub use objects::{
    IgnoredAnnotation, L2AdvertisementInfo, L2StatusInfo, L2StatusLayout, NodeAssigned, NodeInfo, PoolInfo,
    PoolOrigin, RequestSource, ServiceInfo, StrictArp,
};
pub use selector::Selector;

/// Something in an object that l2watch could not use. The rest of the object is still used where
/// possible; the warning lives as long as the object does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// An address, range or MAC that does not parse; that one entry is skipped.
    #[error("{object}: {field} {value:?} skipped: {reason}")]
    BadValue {
        /// The object, as `Kind namespace/name`.
        object: String,
        /// Where the value was found.
        field: String,
        /// The value as written.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A spec or embedded config that does not have the expected shape; the object is skipped.
    #[error("{object}: skipped: {reason}")]
    Unreadable {
        /// The object, as `Kind namespace/name`.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object is readable but MetalLB would reject or misread it (both an annotation and
    /// `spec.loadBalancerIP`, an unknown selector operator); l2watch uses it as described.
    #[error("{object}: {reason}")]
    Suspicious {
        /// The object, as `Kind namespace/name`.
        object: String,
        /// What MetalLB makes of it, and what l2watch does instead.
        reason: String,
    },
}

/// `Kind namespace/name` (or `Kind name` for cluster-scoped objects), for warnings.
pub(crate) struct ObjectName<'a> {
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> ObjectName<'a> {
    pub(crate) fn of<K: kube::Resource>(kind: &'a str, obj: &'a K) -> ObjectName<'a> {
        let meta = obj.meta();
        ObjectName {
            kind,
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref().or(meta.generate_name.as_deref()).unwrap_or(""),
        }
    }
}

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace {
            Some(ns) if !ns.is_empty() => write!(f, "{} {}/{}", self.kind, ns, self.name),
            _ => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Test fixtures: the shared MetalLB objects, read at test time.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde::de::DeserializeOwned;

    /// Every YAML document of `testdata/metallb/<file>`, as `T`.
    pub fn load<T: DeserializeOwned>(file: &str) -> Vec<T> {
        let path = format!("{}/../shared/testdata/metallb/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        docs.into_iter().map(|d| serde_json::from_value(d).unwrap()).collect()
    }

    /// The single YAML document of `testdata/metallb/<file>`, as `T`.
    pub fn one<T: DeserializeOwned>(file: &str) -> T {
        let mut all = load::<T>(file);
        assert_eq!(all.len(), 1, "{file}: expected one document");
        all.remove(0)
    }
}
