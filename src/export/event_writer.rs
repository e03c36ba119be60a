//! Writes the Kubernetes Events that [`EventBook`] decides on, as `events.k8s.io/v1` Events on the
//! Service, so `kubectl describe svc` shows them. The edge of [`crate::export::events`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::{mpsc, watch};

use crate::export::events::{EventBook, EventSpec, Write};
use crate::export::shared::wall_clock;
use crate::inventory::Inventory;
use crate::monitor::finding::Finding;
use crate::wire::vendor::Vendors;

/// The `reportingController` of l2watch's Events.
pub const CONTROLLER: &str = "l2watch.io/l2watch";

/// Each API call gets this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A failed write is tried again this often...
const RETRY_EVERY: Duration = Duration::from_secs(10);
/// ...this many times in all, then dropped (and counted).
const ATTEMPTS: u32 = 3;
/// Most writes waiting for a retry; more are dropped (and counted).
const MAX_WAITING: usize = 64;

struct Waiting {
    spec: EventSpec,
    write: Write,
    attempts: u32,
}

/// Writes Events for the findings that arrive until the channel closes. `node` is the reporting
/// instance; `inventory` names announcers and the node that writes (one for the whole cluster). A
/// failed write is retried [`ATTEMPTS`] times, [`RETRY_EVERY`] apart; failures are logged once per
/// streak and never stop anything.
pub async fn run(
    client: Client,
    node: String,
    mut findings: mpsc::Receiver<Finding>,
    inventory: watch::Receiver<Arc<Inventory>>,
    vendors: Arc<Vendors>,
) {
    let mut book = EventBook::default();
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut failing = false;
    let mut dropped = 0u64;
    let mut retry = tokio::time::interval(RETRY_EVERY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch: Vec<Waiting> = tokio::select! {
            f = findings.recv() => {
                let Some(f) = f else { return };
                let spec = {
                    let inv = inventory.borrow();
                    // One node writes for the cluster: every node sees the same conflict.
                    if inv.event_writer.as_deref().is_some_and(|w| w != node) {
                        continue;
                    }
                    EventSpec::of(&f, &inv, &vendors)
                };
                let Some(spec) = spec else { continue };
                let Some(write) = book.decide(&spec, wall_clock()) else { continue };
                vec![Waiting { spec, write, attempts: 0 }]
            }
            _ = retry.tick(), if !waiting.is_empty() => waiting.drain(..).collect(),
        };
        for mut w in batch {
            w.attempts += 1;
            let call = async {
                match &w.write {
                    Write::Create => create(&client, &node, &w.spec).await.map(Some),
                    Write::Count { name, count } => {
                        count_on(&client, &w.spec, name, *count).await.map(|()| None)
                    }
                }
            };
            let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {}s", CALL_TIMEOUT.as_secs())),
            };
            match result {
                Ok(created) => {
                    if let Some(name) = created {
                        book.created(&w.spec, name);
                    }
                    if failing {
                        tracing::info!("Kubernetes Events are written again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            service = %w.spec.service, reason = w.spec.reason, error = %e,
                            "cannot write a Kubernetes Event (RBAC: create and patch events.k8s.io events); retrying; the finding is in /metrics and /findings"
                        );
                    }
                    failing = true;
                    if w.attempts < ATTEMPTS && waiting.len() < MAX_WAITING {
                        waiting.push_back(w);
                    } else {
                        dropped += 1;
                        tracing::warn!(
                            service = %w.spec.service, reason = w.spec.reason, dropped,
                            "a Kubernetes Event was given up after {ATTEMPTS} attempts"
                        );
                    }
                }
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
