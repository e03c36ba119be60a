//! Writes the Kubernetes Events that [`EventBook`] decides on, as `events.k8s.io/v1` Events on the
//! Service, so `kubectl describe svc` shows them. The edge of [`crate::export::events`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::{mpsc, watch};

use crate::export::events::{EventBook, EventSpec, Write};
use crate::inventory::Inventory;
use crate::monitor::finding::Finding;
use crate::wire::observation::Timestamp;
use crate::wire::vendor::Vendors;

/// The `reportingController` of l2watch's Events.
pub const CONTROLLER: &str = "l2watch.io/l2watch";

fn timestamp() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

/// Writes Events for the findings that arrive until the channel closes. `node` is the reporting
/// instance; `inventory` names announcers. Failures are logged once per streak and never stop anything.
pub async fn run(
    client: Client,
    node: String,
    mut findings: mpsc::Receiver<Finding>,
    inventory: watch::Receiver<Arc<Inventory>>,
    vendors: Arc<Vendors>,
) {
    let mut book = EventBook::default();
    let mut failing = false;
    while let Some(f) = findings.recv().await {
        let spec = {
            let inv = inventory.borrow();
            EventSpec::of(&f, &inv, &vendors)
        };
        let Some(spec) = spec else { continue };
        let Some(write) = book.decide(&spec, timestamp()) else { continue };
        let result = match write {
            Write::Create => create(&client, &node, &spec).await.map(|name| book.created(&spec, name)),
            Write::Count { name, count } => count_on(&client, &spec, &name, count).await,
        };
        match result {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        service = %spec.service, reason = spec.reason, error = %e,
                        "cannot write a Kubernetes Event (RBAC: create and patch events.k8s.io events); the finding is in /metrics and /findings"
                    );
                }
                failing = true;
            }
        }
    }
}

async fn create(client: &Client, node: &str, spec: &EventSpec) -> Result<String, kube::Error> {
    let ns = spec.service.namespace.as_str();
    // `kubectl describe` finds Events by the object's uid as well as its name.
    let uid = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(&spec.service.name)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.metadata.uid);
    let now = k8s_openapi::jiff::Timestamp::now();
    let name = format!("{}.{:x}", spec.service.name, now.as_nanosecond());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        action: Some("Detected".into()),
        reason: Some(spec.reason.into()),
        note: Some(spec.message.clone()),
        type_: Some(spec.type_.into()),
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(CONTROLLER.into()),
        reporting_instance: Some(node.to_owned()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            name: Some(spec.service.name.clone()),
            namespace: Some(ns.to_owned()),
            uid,
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    Api::<Event>::namespaced(client.clone(), ns).create(&PostParams::default(), &event).await?;
    Ok(name)
}

async fn count_on(client: &Client, spec: &EventSpec, name: &str, count: u32) -> Result<(), kube::Error> {
    let series = EventSeries {
        count: i32::try_from(count).unwrap_or(i32::MAX),
        last_observed_time: MicroTime(k8s_openapi::jiff::Timestamp::now()),
    };
    let patch = serde_json::json!({ "series": series });
    Api::<Event>::namespaced(client.clone(), &spec.service.namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
