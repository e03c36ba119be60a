//! The fake API server of `support::kube_api` against the real kube-rs client: typed and dynamic
//! lists, the runtime watcher through modifications, compaction, an API server outage, optimistic
//! concurrency on Leases, and faults. Every test talks to 127.0.0.1 only, through a kubeconfig file.

mod support;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Service;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use support::kube_api::ApiServer;
use support::testdata;

/// Upper bound for one test: a hang fails instead of blocking the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(15);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test).await.expect("test took longer than 15 s");
}

fn fixture(name: &str) -> std::path::PathBuf {
    testdata().join("metallb").join(name)
}

/// A server holding the given fixtures.
fn server_with(fixtures: &[&str]) -> ApiServer {
    let server = ApiServer::start().expect("start the fake API server");
    for f in fixtures {
        server.load_yaml_file(fixture(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    server
}

/// Every Service fixture is a variant of `web/nginx`: more Services are copies under other names.
fn add_service_copy(server: &ApiServer, name: &str, labels: serde_json::Value) {
    let mut svc = server.get("v1", "services", "web", "nginx").expect("web/nginx loaded");
    let meta = svc["metadata"].as_object_mut().unwrap();
    meta.retain(|k, _| k == "namespace" || k == "annotations");
    meta.insert("name".into(), json!(name));
    meta.insert("labels".into(), labels);
    server.apply(svc).unwrap();
}

/// Polls `stream` (dropping what it yields) until `cond` holds, for up to 10 s.
async fn pump_until<S: Stream + Unpin>(stream: &mut S, what: &str, mut cond: impl FnMut() -> bool) {
    let wait = async {
        while !cond() {
            let _ = tokio::time::timeout(Duration::from_millis(20), stream.next()).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("not within 10 s: {what}"));
}

/// A kube client built the way a binary would: kubeconfig file, then `Config`, then `Client`.
async fn client(server: &ApiServer, dir: &Path, namespace: &str) -> Client {
    let path = server.write_kubeconfig(dir, namespace).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    assert_eq!(config.cluster_url.to_string(), format!("{}/", server.url()));
    assert_eq!(config.default_namespace, namespace);
    // kube takes a proxy from HTTPS_PROXY when the kubeconfig names none, and without its
    // `http-proxy` feature it refuses to build a client then (NO_PROXY is only read with that
    // feature). Tests talk to 127.0.0.1 and nowhere else.
    config.proxy_url = None;
    Client::try_from(config).unwrap()
}

/// The next watcher event that `pick` accepts (errors and other events are skipped).
async fn next_matching<S, K, T>(
    stream: &mut S,
    what: &str,
    mut pick: impl FnMut(&watcher::Event<K>) -> Option<T>,
) -> T
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
{
    let wait = async {
        while let Some(item) = stream.next().await {
            if let Ok(event) = item
                && let Some(found) = pick(&event)
            {
                return found;
            }
        }
        panic!("watch stream ended while waiting for {what}");
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within 10 s"))
}

/// Polls `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not true within 10 s: {what}");
}

fn kube_status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_service_list_over_plain_http() {
    bounded(async {
        let server = server_with(&["05-service.yaml"]);
        add_service_copy(&server, "apache", json!({"app": "apache"}));
        add_service_copy(&server, "haproxy", json!({"app": "haproxy", "tier": "frontend"}));
        let dir = tempfile::tempdir().unwrap();
        let services: Api<Service> = Api::namespaced(client(&server, dir.path(), "web").await, "web");

        let list = services.list(&ListParams::default()).await.unwrap();
        let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        assert!(names.contains(&"nginx".to_owned()), "{names:?}");
        let nginx = list.items.iter().find(|s| s.name_any() == "nginx").unwrap();
        let ingress =
            nginx.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
        assert_eq!(ingress.and_then(|i| i[0].ip.as_deref()), Some("192.168.1.240"));
        assert_eq!(
            nginx.metadata.uid.as_deref(),
            Some("4b0a9c7e-1d2f-4a3b-8c5d-6e7f8a9b0c1d"),
            "fixture uid kept"
        );
        let list_rv: u64 = list.metadata.resource_version.as_deref().unwrap().parse().unwrap();
        assert_eq!(list_rv, server.resource_version());

        // The bearer token travels over plain http, and the query is the one kube builds.
        let req = server.requests().pop().unwrap();
        assert_eq!(req.path, "/api/v1/namespaces/web/services");
        assert_eq!(req.authorization.as_deref(), Some(format!("Bearer {}", ApiServer::TOKEN).as_str()));

        // Selectors and pagination.
        let by_label = services.list(&ListParams::default().labels("app=nginx,tier")).await.unwrap();
        assert_eq!(by_label.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), ["nginx"]);
        let by_set =
            services.list(&ListParams::default().labels("app in (apache, haproxy),tier!=frontend")).await;
        assert_eq!(by_set.unwrap().items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), ["apache"]);
        let by_field = services.list(&ListParams::default().fields("metadata.name!=nginx")).await.unwrap();
        assert_eq!(
            by_field.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(),
            ["apache", "haproxy"]
        );
        let all = services.list(&ListParams::default()).await.unwrap().items.len();
        assert_eq!(all, 3);
        let (mut paged, mut token, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let mut lp = ListParams::default().limit(1);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = services.list(&lp).await.unwrap();
            pages += 1;
            paged.extend(page.items.iter().map(ResourceExt::name_any));
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        assert_eq!((paged.len(), pages), (all, all));

        // Discovery documents are good enough for kube's own discovery.
        let client = client(&server, dir.path(), "web").await;
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.minor, "33");
        let discovery = kube::discovery::Discovery::new(client).run().await.unwrap();
        let (pool, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool"))
            .expect("IPAddressPool in discovery");
        assert_eq!(pool.plural, "ipaddresspools");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    })
    .await;
}

#[tokio::test]
async fn watcher_sees_initial_list_modification_and_delete() {
    bounded(async {
        let server = server_with(&["05-service.yaml"]);
        let dir = tempfile::tempdir().unwrap();
        let services: Api<Service> = Api::namespaced(client(&server, dir.path(), "web").await, "web");
        let mut stream = watcher(services, watcher::Config::default()).boxed();

        let initial = next_matching(&mut stream, "InitApply", |e| match e {
            watcher::Event::InitApply(s) => Some(s.clone()),
            _ => None,
        })
        .await;
        assert_eq!(initial.name_any(), "nginx");
        next_matching(&mut stream, "InitDone", |e| matches!(e, watcher::Event::InitDone).then_some(())).await;
        let list = server.requests().into_iter().find(|r| !r.is_watch()).unwrap();
        assert_eq!(list.params.get("limit").map(String::as_str), Some("500"));

        let mut changed = server.get("v1", "services", "web", "nginx").unwrap();
        changed["metadata"]["labels"]["l2watch-test"] = json!("modified");
        let stored = server.apply(changed).unwrap();
        let applied = next_matching(&mut stream, "Apply", |e| match e {
            watcher::Event::Apply(s) => Some(s.clone()),
            _ => None,
        })
        .await;
        assert_eq!(applied.labels().get("l2watch-test").map(String::as_str), Some("modified"));
        assert_eq!(
            applied.resource_version(),
            stored["metadata"]["resourceVersion"].as_str().map(str::to_owned)
        );

        let watch = server.requests().into_iter().find(|r| r.is_watch()).expect("a watch request");
        assert_eq!(watch.params.get("allowWatchBookmarks").map(String::as_str), Some("true"));
        assert_eq!(watch.params.get("timeoutSeconds").map(String::as_str), Some("290"));
        assert!(watch.params.get("resourceVersion").is_some_and(|rv| !rv.is_empty()));

        server.delete("v1", "services", "web", "nginx").unwrap();
        let deleted = next_matching(&mut stream, "Delete", |e| match e {
            watcher::Event::Delete(s) => Some(s.clone()),
            _ => None,
        })
        .await;
        assert_eq!(deleted.name_any(), "nginx");
        assert_eq!(server.list_count("/api/v1/namespaces/web/services"), 1, "no relist needed");
    })
    .await;
}

#[tokio::test]
async fn watcher_relists_after_compaction_and_converges() {
    bounded(async {
        let server = server_with(&["05-service.yaml"]);
        add_service_copy(&server, "legacy", json!({"app": "legacy"}));
        let names = |svcs: Vec<std::sync::Arc<Service>>| {
            let mut n: Vec<String> = svcs.iter().map(|s| s.name_any()).collect();
            n.sort();
            n
        };
        let mut initial: Vec<String> = server
            .objects("v1", "services")
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        initial.sort();
        assert_eq!(initial, ["legacy", "nginx"]);
        let dir = tempfile::tempdir().unwrap();
        let services: Api<Service> = Api::all(client(&server, dir.path(), "default").await);
        let (reader, writer) = reflector::store::<Service>();
        let stream = reflector(writer, watcher(services, watcher::Config::default())).default_backoff();
        let drain = tokio::spawn(stream.for_each(|_| async {}));
        reader.wait_until_ready().await.unwrap();
        assert_eq!(names(reader.state()), initial);
        const PATH: &str = "/api/v1/services";
        assert_eq!(server.list_count(PATH), 1);
        eventually("watch open", || server.active_watches() == 1).await;

        // Compaction alone does not disturb a running watch; the reconnect then asks for an expired
        // resourceVersion, gets 410 and relists.
        server.compact();
        server.close_watches();
        eventually("relist after 410", || server.list_count(PATH) == 2).await;
        eventually("watch reopened", || server.active_watches() == 1).await;
        let mut nginx = server.get("v1", "services", "web", "nginx").unwrap();
        nginx["metadata"]["labels"]["phase"] = json!("after-relist");
        server.apply(nginx).unwrap();
        eventually("live change after relist", || {
            reader
                .get(&reflector::ObjectRef::new("nginx").within("web"))
                .is_some_and(|s| s.labels().get("phase").map(String::as_str) == Some("after-relist"))
        })
        .await;

        // Changes made while the client cannot watch, then compacted away: only a relist finds the
        // deletion.
        server.set_down(true).unwrap();
        server.delete("v1", "services", "web", "legacy").unwrap();
        let mut nginx = server.get("v1", "services", "web", "nginx").unwrap();
        nginx["metadata"]["labels"]["phase"] = json!("while-down");
        server.apply(nginx).unwrap();
        server.compact();
        server.set_down(false).unwrap();
        eventually("store converged", || {
            names(reader.state()) == ["nginx"]
                && reader
                    .get(&reflector::ObjectRef::new("nginx").within("web"))
                    .is_some_and(|s| s.labels().get("phase").map(String::as_str) == Some("while-down"))
        })
        .await;
        assert_eq!(server.list_count(PATH), 3, "exactly one more relist");
        drain.abort();
    })
    .await;
}

#[tokio::test]
async fn watcher_recovers_from_an_api_server_outage() {
    bounded(async {
        let server = server_with(&["05-service.yaml"]);
        let dir = tempfile::tempdir().unwrap();
        let services: Api<Service> = Api::namespaced(client(&server, dir.path(), "web").await, "web");
        let mut stream = watcher(services, watcher::Config::default()).default_backoff().boxed();
        next_matching(&mut stream, "InitDone", |e| matches!(e, watcher::Event::InitDone).then_some(())).await;
        pump_until(&mut stream, "watch open", || server.active_watches() == 1).await;

        server.set_down(true).unwrap();
        let refused = std::net::TcpStream::connect(server.addr()).expect_err("connection while down");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let mut nginx = server.get("v1", "services", "web", "nginx").unwrap();
        nginx["spec"]["loadBalancerIP"] = json!("192.168.1.241");
        server.apply(nginx).unwrap();
        // Let the client notice and fail at least once, then come back on the same port.
        let failed = next_matching(&mut stream, "an error while down", |_| None::<()>);
        let _ = tokio::time::timeout(Duration::from_millis(1200), failed).await;
        server.set_down(false).unwrap();

        let seen = next_matching(&mut stream, "the change made while down", |e| match e {
            watcher::Event::Apply(s) => s.spec.as_ref()?.load_balancer_ip.clone(),
            _ => None,
        })
        .await;
        assert_eq!(seen, "192.168.1.241");
        // History was kept, so kube resumed its watch from the last resourceVersion instead of relisting.
        assert_eq!(server.list_count("/api/v1/namespaces/web/services"), 1);
        assert!(server.watch_count("/api/v1/namespaces/web/services") >= 2);
    })
    .await;
}

#[tokio::test]
async fn dynamic_object_lists_ipaddresspools() {
    bounded(async {
        let server = server_with(&["03-ipaddresspool.yaml"]);
        let dir = tempfile::tempdir().unwrap();
        let client = client(&server, dir.path(), "metallb-system").await;
        let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "ipaddresspools");
        let pools: Api<DynamicObject> = Api::default_namespaced_with(client, &ar);

        let list = pools.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let pool = &list.items[0];
        assert_eq!(pool.name_any(), "first-pool");
        assert_eq!(pool.namespace().as_deref(), Some("metallb-system"));
        assert_eq!(pool.data["spec"]["addresses"][0], "192.168.1.240-192.168.1.250");
        assert_eq!(pool.data["spec"]["autoAssign"], true);
        assert_eq!(
            server.requests().pop().unwrap().path,
            "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools"
        );

        // As when the CRD is not installed.
        server.not_found("ipaddresspools");
        let status = kube_status(pools.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    })
    .await;
}

#[tokio::test]
async fn lease_replace_with_stale_resource_version_conflicts() {
    bounded(async {
        let server = server_with(&[]);
        let dir = tempfile::tempdir().unwrap();
        let leases: Api<Lease> = Api::namespaced(client(&server, dir.path(), "kube-system").await, "kube-system");
        let lease = Lease {
            metadata: kube::api::ObjectMeta { name: Some("l2watch".into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some("worker-1".into()),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        };
        let created = leases.create(&PostParams::default(), &lease).await.unwrap();
        let stale_rv = created.resource_version().unwrap();
        assert!(created.metadata.uid.is_some());
        let age = k8s_openapi::jiff::Timestamp::now().as_second() - created.creation_timestamp().unwrap().0.as_second();
        assert!((0..60).contains(&age), "creationTimestamp is now: {age} s ago");

        let again = kube_status(leases.create(&PostParams::default(), &lease).await.unwrap_err());
        assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));

        let mut renewed = created.clone();
        renewed.spec.as_mut().unwrap().holder_identity = Some("worker-2".into());
        let replaced = leases.replace("l2watch", &PostParams::default(), &renewed).await.unwrap();
        assert_ne!(replaced.resource_version().unwrap(), stale_rv);

        // `renewed` still carries the first resourceVersion.
        renewed.spec.as_mut().unwrap().holder_identity = Some("worker-3".into());
        let conflict = kube_status(leases.replace("l2watch", &PostParams::default(), &renewed).await.unwrap_err());
        assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
        let holder = leases.get("l2watch").await.unwrap().spec.unwrap().holder_identity;
        assert_eq!(holder.as_deref(), Some("worker-2"));

        // Server-side apply and merge patch.
        let ssa = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "worker-3"}});
        let applied = leases.patch("l2watch", &PatchParams::apply("l2watch"), &Patch::Apply(&ssa)).await.unwrap();
        assert_eq!(applied.spec.unwrap().lease_duration_seconds, Some(15), "apply merges");
        let fresh = leases.patch("other", &PatchParams::apply("l2watch"), &Patch::Apply(&ssa)).await.unwrap();
        assert_eq!(fresh.name_any(), "other", "apply creates");
        let merged = leases
            .patch("l2watch", &PatchParams::default(), &Patch::Merge(json!({"spec": {"leaseTransitions": 2}})))
            .await
            .unwrap();
        assert_eq!(merged.spec.unwrap().lease_transitions, Some(2));

        leases.delete("l2watch", &DeleteParams::default()).await.unwrap();
        let gone = kube_status(leases.get("l2watch").await.unwrap_err());
        assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));

        const COLL: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
        let (one, other) = (format!("{COLL}/l2watch"), format!("{COLL}/other"));
        let expected = [
            ("POST", COLL),
            ("POST", COLL),
            ("PUT", one.as_str()),
            ("PUT", one.as_str()),
            ("PATCH", one.as_str()),
            ("PATCH", other.as_str()),
            ("PATCH", one.as_str()),
            ("DELETE", one.as_str()),
        ];
        let writes = server.writes();
        let got: Vec<(&str, &str)> = writes.iter().map(|w| (w.method.as_str(), w.path.as_str())).collect();
        assert_eq!(got, expected);
        let first = &server.writes()[0];
        assert_eq!(first.json().unwrap()["spec"]["holderIdentity"], "worker-1");
        assert_eq!(server.writes()[4].content_type.as_deref(), Some("application/apply-patch+yaml"));
    })
    .await;
}

#[tokio::test]
async fn faults_reach_the_client_as_kube_errors() {
    bounded(async {
        let server = server_with(&["05-service.yaml"]);
        let dir = tempfile::tempdir().unwrap();
        let client = client(&server, dir.path(), "web").await;
        let services: Api<Service> = Api::namespaced(client.clone(), "web");

        server.forbid("services");
        let status = kube_status(services.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
        assert!(status.message.contains("cannot list resource \"services\""), "{}", status.message);

        server.garbage("services");
        let err = services.list(&ListParams::default()).await.unwrap_err();
        assert!(matches!(err, kube::Error::SerdeError(_)), "{err:?}");

        server.heal("services");
        assert_eq!(services.list(&ListParams::default()).await.unwrap().items.len(), 1);

        // A stalled server: the client's own timeout is what ends the wait.
        server.stall(Duration::from_secs(5));
        let slow =
            tokio::time::timeout(Duration::from_millis(300), services.list(&ListParams::default())).await;
        assert!(slow.is_err(), "a stalled server holds the response");
        server.stall(Duration::ZERO);
        assert_eq!(services.list(&ListParams::default()).await.unwrap().items.len(), 1);

        let unknown = kube_status(
            Api::<DynamicObject>::namespaced_with(
                client,
                "web",
                &ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("example.com", "v1", "Widget"),
                    "widgets",
                ),
            )
            .list(&ListParams::default())
            .await
            .unwrap_err(),
        );
        assert_eq!((unknown.code, unknown.reason.as_str()), (404, "NotFound"));
    })
    .await;
}

/// A plain HTTP/1.1 exchange with `Connection: close`: status code, headers (lower-case names) and the
/// body, de-chunked.
fn raw_get(server: &ApiServer, path_and_query: &str) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(conn, "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr())
        .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, mut body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let code = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked");
    if !chunked {
        return (code, headers, body.to_owned());
    }
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    (code, headers, out)
}

fn watch_events(body: &str) -> Vec<(String, serde_json::Value)> {
    body.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["object"].clone()))
        .collect()
}

/// The wire format without kube, from a plain (non-async) test: the server brings its own runtime.
#[test]
fn watch_wire_format_and_server_lifecycle() {
    let server = server_with(&["05-service.yaml"]);
    const SVC: &str = "/api/v1/namespaces/web/services";
    let before = server.resource_version();

    // No resourceVersion: the current objects as ADDED, a bookmark, and the end after timeoutSeconds.
    let (code, headers, body) =
        raw_get(&server, &format!("{SVC}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true"));
    assert_eq!(code, 200);
    assert!(headers.contains(&("transfer-encoding".into(), "chunked".into())), "{headers:?}");
    let events = watch_events(&body);
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(events[0].1["kind"], "Service");
    assert_eq!(events[1].0, "BOOKMARK");
    assert_eq!(events[1].1["metadata"]["resourceVersion"], before.to_string());

    // From a resourceVersion: the history after it. A change that leaves a label selection is a DELETED
    // for a watch with that selector.
    let mut nginx = server.get("v1", "services", "web", "nginx").unwrap();
    nginx["metadata"]["labels"]["app"] = json!("moved");
    server.apply(nginx).unwrap();
    let from = |selector: &str| {
        let (code, _, body) = raw_get(
            &server,
            &format!("{SVC}?watch=1&resourceVersion={before}&timeoutSeconds=1&labelSelector={selector}"),
        );
        assert_eq!(code, 200);
        watch_events(&body)
            .into_iter()
            .map(|(t, o)| (t, o["metadata"]["labels"]["app"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(from("app"), [("MODIFIED".to_owned(), json!("moved"))]);
    assert_eq!(from("app%3Dnginx"), [("DELETED".to_owned(), json!("moved"))]);
    assert_eq!(from("app%3Dmoved"), [("ADDED".to_owned(), json!("moved"))]);

    // After compaction that resourceVersion is gone: one ERROR event with a 410 Status.
    server.compact();
    let (code, _, body) =
        raw_get(&server, &format!("{SVC}?watch=true&resourceVersion={before}&timeoutSeconds=5"));
    assert_eq!(code, 200);
    let events = watch_events(&body);
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0].0, "ERROR");
    let status = &events[0].1;
    assert_eq!(
        (&status["kind"], &status["status"], &status["reason"], &status["code"]),
        (&json!("Status"), &json!("Failure"), &json!("Expired"), &json!(410))
    );

    // Unknown resources and objects: 404 with a Status body.
    let (code, _, body) = raw_get(&server, "/apis/metallb.io/v1beta1/namespaces/web/widgets");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, &status["reason"], &status["code"]), (404, &json!("NotFound"), &json!(404)));
    let (code, _, body) = raw_get(&server, &format!("{SVC}/missing"));
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, status["message"].as_str()), (404, Some("services \"missing\" not found")));

    // Down and up again on the same port, then gone for good when dropped.
    let addr = server.addr();
    server.set_down(true).unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err());
    server.set_down(false).unwrap();
    assert_eq!(raw_get(&server, SVC).0, 200);
    assert_eq!(server.list_count(SVC), 1);
    drop(server);
    assert!(std::net::TcpStream::connect(addr).is_err(), "port closed after drop");
}

#[test]
fn timestamps_are_rfc3339_utc() {
    use support::kube_api::rfc3339;
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_741_607_921), "2025-03-10T11:58:41Z");
}

/// A watch read line by line as it streams: each event is its own chunk.
struct Streaming {
    conn: std::net::TcpStream,
    pending: String,
}

impl Streaming {
    fn open(server: &ApiServer, path_and_query: &str) -> Streaming {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(conn, "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr()).unwrap();
        Streaming { conn, pending: String::new() }
    }

    /// The next payload line (JSON or not), or `None` when nothing came within `wait`.
    fn next(&mut self, wait: Duration) -> Option<String> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + wait;
        loop {
            // Headers, chunk sizes and blank lines are framing; payloads start with `{` or `<`.
            while let Some((line, rest)) = self.pending.split_once("\r\n") {
                let line = line.to_owned();
                self.pending = rest.to_owned();
                if line.starts_with('{') || line.starts_with('<') {
                    return Some(line.trim_end().to_owned());
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            self.conn.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.conn.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.pending.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(e) => panic!("reading the watch: {e}"),
            }
        }
    }
}

/// The watch faults the fault tests use, seen on the wire.
#[test]
fn watch_faults_on_the_wire() {
    let server = server_with(&["05-service.yaml"]);
    server.set_bookmark_interval(Duration::from_millis(100));
    const SVC: &str = "/api/v1/namespaces/web/services";
    let before = server.resource_version();

    // Garbled: event lines are not JSON, bookmarks still are.
    server.garble_watches("services", true);
    let (code, _, body) =
        raw_get(&server, &format!("{SVC}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true"));
    assert_eq!(code, 200);
    let lines: Vec<&str> = body.lines().collect();
    assert!(serde_json::from_str::<serde_json::Value>(lines[0]).is_err(), "{body}");
    assert_eq!(watch_events(lines[1])[0].0, "BOOKMARK");
    server.garble_watches("services", false);

    // A stall reaches a running watch: nothing, not even bookmarks, until it ends; then it goes on
    // where it stopped.
    let mut w = Streaming::open(
        &server,
        &format!("{SVC}?watch=true&resourceVersion={before}&allowWatchBookmarks=true"),
    );
    assert!(w.next(Duration::from_secs(5)).unwrap().contains("BOOKMARK"));
    server.stall(Duration::from_millis(1500));
    let _ = w.next(Duration::from_millis(200)); // what was already on its way
    let mut nginx = server.get("v1", "services", "web", "nginx").unwrap();
    nginx["metadata"]["labels"]["phase"] = json!("stalled");
    server.apply(nginx).unwrap();
    assert_eq!(w.next(Duration::from_millis(700)), None, "silent while stalled");
    let resumed = (0..30).find_map(|_| w.next(Duration::from_secs(5)).filter(|l| l.contains("MODIFIED")));
    assert!(resumed.is_some_and(|l| l.contains("stalled")), "the change made during the stall");

    // Hung: silent for good, while new requests are answered.
    server.hang_watches();
    let _ = w.next(Duration::from_millis(200));
    assert_eq!(w.next(Duration::from_millis(800)), None, "a hung watch says nothing");
    assert_eq!(raw_get(&server, SVC).0, 200);

    // An expired resourceVersion refused with HTTP 410 instead of an ERROR event.
    server.compact();
    server.expire_with_http_status(true);
    let (code, _, body) = raw_get(&server, &format!("{SVC}?watch=true&resourceVersion={before}"));
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, &status["reason"], &status["code"]), (410, &json!("Expired"), &json!(410)));
}
