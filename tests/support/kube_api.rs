//! A fake Kubernetes API server for integration tests: the real list/watch protocol over HTTP/1.1 on
//! 127.0.0.1, so the real kube-rs client can be pointed at it through a kubeconfig file.
//!
//! ```ignore
//! let server = ApiServer::start().expect("start the fake API server");
//! server.load_yaml_file(testdata().join("metallb/05-service.yaml")).unwrap();
//! let kubeconfig = server.write_kubeconfig(dir.path(), "web").unwrap();
//! server.set_down(true).unwrap(); // the API server is killed: connections refused, watches cut
//! ```
//!
//! What it models: one global, monotonically increasing `resourceVersion`; LIST with `limit`/`continue`,
//! label and field selectors; WATCH from a resourceVersion with bookmarks, `timeoutSeconds` and
//! `410 Expired` once a resourceVersion is older than the compaction horizon (as an ERROR event, or as
//! an HTTP 410 answer to the watch request); create, replace (with the optimistic-concurrency check),
//! merge patch, server-side apply (as create-or-merge), delete; `status` subresources; discovery
//! documents; faults switched at run time: per resource (403, 404, a body that is not JSON or cut
//! short, watch lines that are not JSON) and for the whole server (down, stalled, watches hung).
//!
//! What it leaves out, on purpose: authentication (the token is recorded, never checked), admission,
//! defaulting and validation of object bodies, strategic merge (treated as a JSON merge patch), JSON
//! patch (415), field managers, finalizers and garbage collection, consistent LIST snapshots across
//! pages (later pages show current data, only the resourceVersion is the first page's), LIST at an
//! older resourceVersion (LIST always serves the latest state), streaming lists (`sendInitialEvents`),
//! and aggregated discovery (`Discovery::run_aggregated` gets the plain documents, which it cannot
//! parse). Objects of the same resource in two API versions are stored apart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Public types.

/// One resource type the server serves, as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// `v1` for the core group, else `group/version`.
    pub api_version: String,
    /// Lower-case plural used in URLs (`services`, `ipaddresspools`).
    pub plural: String,
    /// `Kind` of one object (`Service`).
    pub kind: String,
    /// Objects live in a namespace.
    pub namespaced: bool,
    /// Has a `status` subresource: the main resource ignores status changes, `/status` only takes them.
    pub status: bool,
}

impl ResourceType {
    /// A resource type without a status subresource.
    pub fn new(api_version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            api_version: api_version.to_owned(),
            plural: plural.to_owned(),
            kind: kind.to_owned(),
            namespaced,
            status: false,
        }
    }

    /// The same with a `status` subresource.
    pub fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    /// API group, empty for the core group.
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// API version within the group.
    pub fn version(&self) -> &str {
        self.api_version.rsplit_once('/').map_or(&self.api_version, |(_, v)| v)
    }

    /// `plural.group` (or just `plural` in the core group), as API server messages name a resource.
    pub fn qualified(&self) -> String {
        match self.group() {
            "" => self.plural.clone(),
            g => format!("{}.{g}", self.plural),
        }
    }
}

/// The resource types served from the start: what l2watch reads, plus their neighbours. Tests add
/// more with [`ApiServer::register`] or by loading a CustomResourceDefinition.
pub fn default_resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType::new("v1", "namespaces", "Namespace", false).with_status(),
        ResourceType::new("v1", "nodes", "Node", false).with_status(),
        ResourceType::new("v1", "pods", "Pod", true).with_status(),
        ResourceType::new("v1", "services", "Service", true).with_status(),
        ResourceType::new("v1", "endpoints", "Endpoints", true),
        ResourceType::new("v1", "events", "Event", true),
        ResourceType::new("v1", "configmaps", "ConfigMap", true),
        ResourceType::new("coordination.k8s.io/v1", "leases", "Lease", true),
        ResourceType::new("events.k8s.io/v1", "events", "Event", true),
        ResourceType::new("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true),
        ResourceType::new(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .with_status(),
        ResourceType::new("metallb.io/v1beta1", "ipaddresspools", "IPAddressPool", true).with_status(),
        ResourceType::new("metallb.io/v1beta1", "l2advertisements", "L2Advertisement", true),
        ResourceType::new("metallb.io/v1beta1", "servicel2statuses", "ServiceL2Status", true).with_status(),
        ResourceType::new("metallb.io/v1beta1", "bgpadvertisements", "BGPAdvertisement", true),
        ResourceType::new("metallb.io/v1beta1", "communities", "Community", true),
        ResourceType::new("metallb.io/v1beta2", "bgppeers", "BGPPeer", true),
    ]
}

/// A fault the server answers every request for one resource plural with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 403 Forbidden Status, as when RBAC does not grant the verb.
    Forbidden,
    /// 200 with a body that is not JSON (an HTML error page, one line: to a watch, a line that is
    /// not an event).
    Garbage,
    /// 404 NotFound Status for the whole resource, as when its CRD is not installed; discovery omits it.
    NotFound,
    /// 200 with a body cut short in the middle of a line, as a proxy that does not stream may answer
    /// a watch: to kube's watcher, a watch that ended cleanly at once.
    Truncated,
}

/// One HTTP request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub params: BTreeMap<String, String>,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Request body as text (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// A `GET ...?watch=true`.
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && is_true(self.params.get("watch"))
    }

    /// Anything but GET, HEAD and OPTIONS.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// Why a write made by a test (not over HTTP) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeError(pub String);

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FakeError {}

/// The fake API server. It runs on its own thread with a current-thread tokio runtime, so sync tests
/// and `#[tokio::test]`s can both use it; dropping it stops the thread.
pub struct ApiServer {
    shared: Arc<Shared>,
    ctl: Option<mpsc::UnboundedSender<Ctl>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> io::Result<ApiServer> {
        ApiServer::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Binds `ip` (an address of the test's own: loopback, or the root end of a test namespace's
    /// management link) on a free port and starts serving.
    pub fn start_on(ip: IpAddr) -> io::Result<ApiServer> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // The listener must be created inside the runtime's context to register with its reactor.
        let listener = {
            let _context = runtime.enter();
            listen(SocketAddr::new(ip, 0))?
        };
        let addr = listener.local_addr()?;
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let (rv_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store {
                types: default_resource_types(),
                objects: BTreeMap::new(),
                rv: 0,
                horizon: 0,
                pruned_through: 0,
                history: Vec::new(),
                faults: HashMap::new(),
                garbled: HashSet::new(),
                expired_as_status: false,
                log: Vec::new(),
                seed,
                serial: 0,
                bookmark_every: Duration::from_secs(1),
                rv_tx,
            }),
            close_tx: watch::channel(0).0,
            stall_tx: watch::channel(None).0,
            hang_tx: watch::channel(0).0,
            active_watches: AtomicUsize::new(0),
            addr,
        });
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-kube-api-{}", addr.port()))
            .spawn(move || runtime.block_on(control(for_thread, listener, ctl_rx)))?;
        Ok(ApiServer { shared, ctl: Some(ctl_tx), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The token written into kubeconfig files; requests carry it as `Bearer <token>`.
    pub const TOKEN: &'static str = "l2watch-fake-token";

    /// A kubeconfig document for this server: one cluster, one user with [`ApiServer::TOKEN`], one
    /// context with `namespace`, set as current.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        // A JSON string is a valid YAML scalar: this quotes whatever the namespace holds.
        let ns = Value::String(namespace.to_owned()).to_string();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake
  user:
    token: {token}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: {ns}
current-context: fake
preferences: {{}}
",
            url = self.url(),
            token = Self::TOKEN,
        )
    }

    /// Writes [`ApiServer::kubeconfig_yaml`] to `dir/kubeconfig` and returns the path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(namespace))?;
        Ok(path)
    }

    /// Serves another resource type from now on (replacing one with the same version and plural).
    pub fn register(&self, rt: ResourceType) {
        self.shared.lock().register(rt);
    }

    /// Creates or replaces an object (`apiVersion` and `kind` pick its type; a namespaced object
    /// without namespace goes to `default`; `generateName` alone gets a name). Bumps the
    /// resourceVersion and tells watchers (ADDED or MODIFIED; nothing when nothing changed). Loading a
    /// CustomResourceDefinition also registers the types it defines. Returns the stored object.
    pub fn apply(&self, object: Value) -> Result<Value, FakeError> {
        self.shared.lock().upsert(object).map_err(FakeError)
    }

    /// [`ApiServer::apply`] for every document of a multi-document YAML text; a `List` document
    /// (`kind: List` or `...List` with `items`) applies each item.
    pub fn load_yaml_str(&self, yaml: &str) -> Result<Vec<Value>, FakeError> {
        let docs = parse_yaml_documents(yaml).map_err(FakeError)?;
        let mut out = Vec::new();
        for doc in docs {
            let is_list = doc.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
            match doc.get("items").and_then(Value::as_array) {
                Some(items) if is_list => {
                    for item in items {
                        out.push(self.apply(item.clone())?);
                    }
                }
                _ => out.push(self.apply(doc)?),
            }
        }
        Ok(out)
    }

    /// [`ApiServer::load_yaml_str`] on a file.
    pub fn load_yaml_file(&self, path: impl AsRef<Path>) -> Result<Vec<Value>, FakeError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| FakeError(format!("{}: {e}", path.display())))?;
        self.load_yaml_str(&text).map_err(|e| FakeError(format!("{}: {e}", path.display())))
    }

    /// One stored object. `namespace` is `""` for cluster-scoped resources.
    pub fn get(&self, api_version: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared.lock().objects.get(&Key::new(api_version, plural, namespace, name)).cloned()
    }

    /// Every stored object of a resource, in namespace then name order.
    pub fn objects(&self, api_version: &str, plural: &str) -> Vec<Value> {
        let store = self.shared.lock();
        store
            .objects
            .iter()
            .filter(|(k, _)| k.api_version == api_version && k.plural == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Deletes an object (`namespace` `""` for cluster-scoped); watchers get DELETED with the final
    /// object. Returns that object, or `None` when there was none.
    pub fn delete(&self, api_version: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let mut store = self.shared.lock();
        let key = Key::new(api_version, plural, namespace, name);
        let old = store.objects.get(&key).cloned()?;
        Some(store.commit(key, ChangeKind::Deleted, old.clone(), Some(old)))
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Compacts history: every resourceVersion handed out so far expires. The global resourceVersion
    /// moves on by one (as other writes would) and becomes the horizon: a watch that asks for an older
    /// one gets a `410 Expired` ERROR event, a `continue` token from before gets HTTP 410, and the
    /// changes up to it are gone, so only a relist can catch up. Watches already running carry on,
    /// except one that had not yet been sent a change compaction dropped: it gets the 410 too, as a
    /// watcher that falls behind the real API server's window does.
    pub fn compact(&self) {
        let mut store = self.shared.lock();
        store.rv += 1;
        store.horizon = store.rv;
        if let Some(last) = store.history.last() {
            store.pruned_through = store.pruned_through.max(last.rv);
        }
        store.history.clear();
    }

    /// Ends every running watch cleanly, as the API server does when `timeoutSeconds` runs out:
    /// clients reconnect from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared.close_tx.send_modify(|n| *n += 1);
    }

    /// Watches streaming right now.
    pub fn active_watches(&self) -> usize {
        self.shared.active_watches.load(Ordering::SeqCst)
    }

    /// `true`: the API server is killed. The listening socket is closed (new connections are refused)
    /// and every open connection is dropped, running watches included. `false`: it comes back on the
    /// same port, with the same objects and history. Returns once the change is in effect.
    pub fn set_down(&self, down: bool) -> io::Result<()> {
        let gone = || io::Error::other("the fake API server thread is gone");
        let ctl = self.ctl.as_ref().ok_or_else(gone)?;
        if down {
            let (ack, done) = std::sync::mpsc::channel();
            ctl.send(Ctl::Down(ack)).map_err(|_| gone())?;
            done.recv().map_err(|_| gone())
        } else {
            let (ack, done) = std::sync::mpsc::channel();
            ctl.send(Ctl::Up(ack)).map_err(|_| gone())?;
            done.recv().map_err(|_| gone())?
        }
    }

    /// Holds every response (watch streams included, before their first byte) until `duration` from
    /// now has passed, and running watches send nothing meanwhile (no event, no bookmark, not even
    /// their end): a server that accepts connections and answers nothing, as a frozen or overloaded
    /// one does. Afterwards everything goes on where it stopped. `Duration::ZERO` releases at once.
    pub fn stall(&self, duration: Duration) {
        let until = if duration.is_zero() { None } else { Some(Instant::now() + duration) };
        self.shared.stall_tx.send_replace(until);
    }

    /// Every watch streaming now goes silent for good: no event, no bookmark, no end, while the
    /// connection stays open (a connection a middlebox lost, or a wedged server-side watch). New
    /// requests are answered normally. Only the client giving up on the connection ends it.
    pub fn hang_watches(&self) {
        self.shared.hang_tx.send_modify(|n| *n += 1);
    }

    /// `true`: every event line (not bookmarks) that watches of `plural` send from now on is replaced
    /// by a line that is not JSON (an HTML error page, as a proxy in between might send), so the change
    /// it carried is lost to a client that reads on. `false`: lines are sent normally again.
    pub fn garble_watches(&self, plural: &str, on: bool) {
        let mut store = self.shared.lock();
        if on {
            store.garbled.insert(plural.to_owned());
        } else {
            store.garbled.remove(plural);
        }
    }

    /// `true`: a watch from an expired resourceVersion is refused with HTTP 410 and a Status body
    /// (as the API server does when it serves the watch from etcd rather than its watch cache), not
    /// answered with 200 and an ERROR event. Watches already running still get the ERROR event.
    pub fn expire_with_http_status(&self, on: bool) {
        self.shared.lock().expired_as_status = on;
    }

    /// Answers every request for `plural` (in any group) with `fault`, or normally again with `None`.
    /// Watches already streaming are not affected.
    pub fn fault(&self, plural: &str, fault: Option<Fault>) {
        let mut store = self.shared.lock();
        match fault {
            Some(f) => store.faults.insert(plural.to_owned(), f),
            None => store.faults.remove(plural),
        };
    }

    /// 403 Forbidden for `plural`.
    pub fn forbid(&self, plural: &str) {
        self.fault(plural, Some(Fault::Forbidden));
    }

    /// 200 with invalid JSON for `plural`.
    pub fn garbage(&self, plural: &str) {
        self.fault(plural, Some(Fault::Garbage));
    }

    /// 200 with a body cut short for `plural`.
    pub fn truncate(&self, plural: &str) {
        self.fault(plural, Some(Fault::Truncated));
    }

    /// 404 for the whole of `plural`, as when its CRD is not installed.
    pub fn not_found(&self, plural: &str) {
        self.fault(plural, Some(Fault::NotFound));
    }

    /// Removes the fault on `plural`.
    pub fn heal(&self, plural: &str) {
        self.fault(plural, None);
    }

    /// How often running watches send a BOOKMARK (default 1 s; the first comes right after the backlog).
    /// Applies to watches started afterwards.
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.shared.lock().bookmark_every = every.max(Duration::from_millis(10));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// The write requests (POST, PUT, PATCH, DELETE) received so far, oldest first.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.iter().filter(|r| r.is_write()).cloned().collect()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Requests of any kind to `path` (no query).
    pub fn request_count(&self, path: &str) -> usize {
        self.shared.lock().log.iter().filter(|r| r.path == path).count()
    }

    /// GETs of `path` that were not watches: LISTs on a collection path, which is how relists show.
    pub fn list_count(&self, path: &str) -> usize {
        self.shared.lock().log.iter().filter(|r| r.path == path && r.method == "GET" && !r.is_watch()).count()
    }

    /// WATCH requests on `path`.
    pub fn watch_count(&self, path: &str) -> usize {
        self.shared.lock().log.iter().filter(|r| r.path == path && r.is_watch()).count()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // Closing the control channel makes the server thread stop serving and return.
        drop(self.ctl.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Parses a multi-document YAML text into JSON values; empty documents are skipped.
pub fn parse_yaml_documents(yaml: &str) -> Result<Vec<Value>, String> {
    // YAML 1.2 booleans only: a value such as `no` or `on` stays a string, as Kubernetes objects expect.
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| format!("invalid YAML: {e}"))
}

// ---------------------------------------------------------------------------------------------
// State.

struct Shared {
    store: Mutex<Store>,
    /// Bumped by [`ApiServer::close_watches`].
    close_tx: watch::Sender<u64>,
    /// Responses wait until this instant.
    stall_tx: watch::Sender<Option<Instant>>,
    /// Bumped by [`ApiServer::hang_watches`].
    hang_tx: watch::Sender<u64>,
    active_watches: AtomicUsize,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A test that panicked while holding the lock leaves consistent data: every change is made in
        // one step under it.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    api_version: String,
    plural: String,
    namespace: String,
    name: String,
}

impl Key {
    fn new(api_version: &str, plural: &str, namespace: &str, name: &str) -> Key {
        Key {
            api_version: api_version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn of(rt: &ResourceType, namespace: &str, name: &str) -> Key {
        Key::new(&rt.api_version, &rt.plural, namespace, name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the change history that watches replay.
struct Change {
    rv: u64,
    key: Key,
    kind: ChangeKind,
    /// The object after the change (the final one for a deletion).
    object: Value,
    /// The object before it: a watch with a selector turns a change that leaves or enters the
    /// selection into DELETED or ADDED, as the API server does.
    old: Option<Value>,
}

struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    /// Oldest resourceVersion a watch may start from.
    horizon: u64,
    /// Newest change dropped by compaction: a running watch that has not seen it has lost it.
    pruned_through: u64,
    history: Vec<Change>,
    faults: HashMap<String, Fault>,
    /// Plurals whose watch event lines are sent as garbage.
    garbled: HashSet<String>,
    /// Watches from an expired resourceVersion get HTTP 410 instead of an ERROR event.
    expired_as_status: bool,
    log: Vec<RecordedRequest>,
    seed: u64,
    serial: u64,
    bookmark_every: Duration,
    /// Carries the latest resourceVersion to running watches.
    rv_tx: watch::Sender<u64>,
}

/// An error answered as a `Status` object.
#[derive(Clone, Debug)]
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
    details: Option<Value>,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, reason, message: message.into(), details: None }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Failure {
        self.details = Some(json!({"name": name, "group": rt.group(), "kind": rt.plural}));
        self
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, "BadRequest", message)
    }

    fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(422, "Invalid", message)
    }

    fn no_such_resource() -> Failure {
        Failure::new(404, "NotFound", "the server could not find the requested resource")
            .with_details(json!({}))
    }

    fn not_found(rt: &ResourceType, name: &str) -> Failure {
        Failure::new(404, "NotFound", format!("{} {name:?} not found", rt.qualified())).about(rt, name)
    }

    fn method_not_allowed() -> Failure {
        Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    fn expired(message: impl Into<String>) -> Failure {
        Failure::new(410, "Expired", message)
    }

    fn with_details(mut self, details: Value) -> Failure {
        self.details = Some(details);
        self
    }

    fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(d), Some(obj)) = (&self.details, status.as_object_mut()) {
            obj.insert("details".into(), d.clone());
        }
        status
    }
}

impl Store {
    fn lookup(&self, api_version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.api_version == api_version && t.plural == plural)
    }

    fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.api_version == api_version && t.kind == kind)
    }

    fn register(&mut self, rt: ResourceType) {
        self.types.retain(|t| !(t.api_version == rt.api_version && t.plural == rt.plural));
        self.types.push(rt);
    }

    /// Registers the served versions of a CustomResourceDefinition.
    fn register_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let (Some(group), Some(plural), Some(kind)) =
            (spec["group"].as_str(), spec["names"]["plural"].as_str(), spec["names"]["kind"].as_str())
        else {
            return;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        for v in spec["versions"].as_array().into_iter().flatten() {
            let Some(version) = v["name"].as_str() else { continue };
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let mut rt = ResourceType::new(&format!("{group}/{version}"), plural, kind, namespaced);
            rt.status = v["subresources"].get("status").is_some();
            self.register(rt);
        }
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        mix(self.seed ^ mix(self.serial))
    }

    fn new_uid(&mut self) -> String {
        let a = self.next_serial();
        let b = self.next_serial();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// The random suffix the API server appends to `generateName`.
    fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut x = self.next_serial();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// Records a change: new resourceVersion in the object, store updated, history appended, watches
    /// woken. Returns the object as stored (or, for a deletion, as it was last).
    fn commit(&mut self, key: Key, kind: ChangeKind, mut object: Value, old: Option<Value>) -> Value {
        self.rv += 1;
        metadata_mut(&mut object).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        match kind {
            ChangeKind::Deleted => {
                self.objects.remove(&key);
            }
            ChangeKind::Added | ChangeKind::Modified => {
                self.objects.insert(key.clone(), object.clone());
            }
        }
        self.history.push(Change { rv: self.rv, key, kind, object: object.clone(), old });
        self.rv_tx.send_replace(self.rv);
        object
    }

    /// Fills what the API server sets on creation: type, namespace, name from `generateName`, uid and
    /// creationTimestamp (kept when given, so fixtures keep their uids), generation.
    fn stamp_new(
        &mut self,
        rt: &ResourceType,
        object: &mut Value,
        namespace: &str,
    ) -> Result<String, Failure> {
        let obj = object_mut(object);
        obj.insert("apiVersion".into(), Value::String(rt.api_version.clone()));
        obj.insert("kind".into(), Value::String(rt.kind.clone()));
        let name = match meta_str(object, "name") {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match meta_str(object, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    let prefix = prefix.to_owned();
                    format!("{prefix}{}", self.name_suffix())
                }
                _ => {
                    return Err(Failure::invalid(
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        let uid = self.new_uid();
        let meta = metadata_mut(object);
        meta.insert("name".into(), Value::String(name.clone()));
        if rt.namespaced {
            meta.insert("namespace".into(), Value::String(namespace.to_owned()));
        } else {
            meta.remove("namespace");
        }
        let has_uid = meta.get("uid").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
        if !has_uid {
            meta.insert("uid".into(), Value::String(uid));
        }
        if !meta.get("creationTimestamp").is_some_and(Value::is_string) {
            meta.insert("creationTimestamp".into(), Value::String(rfc3339_now()));
        }
        meta.entry("generation").or_insert(json!(1));
        Ok(name)
    }

    /// Create-or-replace from a test.
    fn upsert(&mut self, mut object: Value) -> Result<Value, String> {
        if !object.is_object() {
            return Err(format!("not an object: {object}"));
        }
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let rt = self.lookup_kind(&api_version, &kind).cloned().ok_or_else(|| {
            format!("unknown type {kind} in {api_version:?}: register it or load its CustomResourceDefinition first")
        })?;
        let namespace = if rt.namespaced {
            meta_str(&object, "namespace").filter(|n| !n.is_empty()).unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let existing = meta_str(&object, "name")
            .filter(|n| !n.is_empty())
            .and_then(|name| self.objects.get(&Key::of(&rt, &namespace, name)))
            .cloned();
        let stored = match existing {
            Some(old) => {
                // What the server owns carries over unless the test sets it.
                let meta = metadata_mut(&mut object);
                for field in ["uid", "creationTimestamp", "generation"] {
                    if !meta.contains_key(field)
                        && let Some(v) = old["metadata"].get(field)
                    {
                        meta.insert(field.into(), v.clone());
                    }
                }
                let name = meta_str(&old, "name").unwrap_or_default().to_owned();
                object_mut(&mut object).insert("apiVersion".into(), Value::String(rt.api_version.clone()));
                object_mut(&mut object).insert("kind".into(), Value::String(rt.kind.clone()));
                if rt.namespaced {
                    metadata_mut(&mut object).insert("namespace".into(), Value::String(namespace.clone()));
                }
                if same_ignoring_rv(&old, &object) {
                    old
                } else {
                    self.commit(Key::of(&rt, &namespace, &name), ChangeKind::Modified, object, Some(old))
                }
            }
            None => {
                let name = self.stamp_new(&rt, &mut object, &namespace).map_err(|f| f.message)?;
                self.commit(Key::of(&rt, &namespace, &name), ChangeKind::Added, object, None)
            }
        };
        if rt.kind == "CustomResourceDefinition" && rt.group() == "apiextensions.k8s.io" {
            self.register_crd(&stored);
        }
        Ok(stored)
    }

    /// Checks that a body names the type and namespace of the URL it was sent to.
    fn check_body(rt: &ResourceType, namespace: &str, body: &Value) -> Result<(), Failure> {
        if !body.is_object() {
            return Err(Failure::bad_request("the body is not a JSON object"));
        }
        if let Some(k) = body["kind"].as_str()
            && k != rt.kind
        {
            return Err(Failure::bad_request(format!(
                "kind {k:?} does not match the resource ({})",
                rt.kind
            )));
        }
        if let Some(v) = body["apiVersion"].as_str()
            && v != rt.api_version
        {
            return Err(Failure::bad_request(format!(
                "apiVersion {v:?} does not match the resource ({})",
                rt.api_version
            )));
        }
        if let Some(ns) = meta_str(body, "namespace")
            && rt.namespaced
            && !ns.is_empty()
            && ns != namespace
        {
            return Err(Failure::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    fn create(&mut self, rt: &ResourceType, namespace: &str, mut body: Value) -> Result<Value, Failure> {
        Self::check_body(rt, namespace, &body)?;
        let meta = metadata_mut(&mut body);
        // The API server decides these on creation, whatever the client sent.
        for field in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            meta.remove(field);
        }
        let name = self.stamp_new(rt, &mut body, namespace)?;
        let key = Key::of(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} {name:?} already exists", rt.qualified()),
            )
            .about(rt, &name));
        }
        Ok(self.commit(key, ChangeKind::Added, body, None))
    }

    fn conflict(rt: &ResourceType, name: &str) -> Failure {
        Failure::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your \
                 changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .about(rt, name)
    }

    /// Stores `new` in place of `old`: identity fields come from `old`, status comes from where the
    /// request was allowed to change it. No change, no new resourceVersion (as the API server does).
    fn update(
        &mut self,
        rt: &ResourceType,
        key: Key,
        old: Value,
        mut new: Value,
        status_only: bool,
    ) -> Result<Value, Failure> {
        if status_only {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => object_mut(&mut new).insert("status".into(), s),
                None => object_mut(&mut new).remove("status"),
            };
        } else if rt.status {
            // With a status subresource, writes to the main resource leave status alone.
            match old.get("status") {
                Some(s) => object_mut(&mut new).insert("status".into(), s.clone()),
                None => object_mut(&mut new).remove("status"),
            };
        }
        object_mut(&mut new).insert("apiVersion".into(), Value::String(rt.api_version.clone()));
        object_mut(&mut new).insert("kind".into(), Value::String(rt.kind.clone()));
        let meta = metadata_mut(&mut new);
        for field in ["name", "namespace", "uid", "creationTimestamp", "generation"] {
            match old["metadata"].get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if !status_only && old.get("spec") != new.get("spec") {
            let generation = old["metadata"]["generation"].as_u64().unwrap_or(0) + 1;
            metadata_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if same_ignoring_rv(&old, &new) {
            return Ok(old);
        }
        Ok(self.commit(key, ChangeKind::Modified, new, Some(old)))
    }

    fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Value, Failure> {
        Self::check_body(rt, namespace, &body)?;
        if let Some(n) = meta_str(&body, "name")
            && n != name
        {
            return Err(Failure::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let key = Key::of(rt, namespace, name);
        let old = self.objects.get(&key).cloned().ok_or_else(|| Failure::not_found(rt, name))?;
        if let Some(rv) = meta_str(&body, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(Self::conflict(rt, name));
        }
        self.update(rt, key, old, body, status_only)
    }

    fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch: Value,
        create_missing: bool,
        status_only: bool,
    ) -> Result<Value, Failure> {
        Self::check_body(rt, namespace, &patch)?;
        let key = Key::of(rt, namespace, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            if !create_missing || status_only {
                return Err(Failure::not_found(rt, name));
            }
            let mut body = patch;
            metadata_mut(&mut body).insert("name".into(), Value::String(name.to_owned()));
            return self.create(rt, namespace, body);
        };
        if let Some(rv) = meta_str(&patch, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(Self::conflict(rt, name));
        }
        let mut new = old.clone();
        merge_patch(&mut new, &patch);
        self.update(rt, key, old, new, status_only)
    }

    fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, Failure> {
        let key = Key::of(rt, namespace, name);
        let old = self.objects.get(&key).cloned().ok_or_else(|| Failure::not_found(rt, name))?;
        Ok(self.commit(key, ChangeKind::Deleted, old.clone(), Some(old)))
    }

    fn list(
        &self,
        rt: &ResourceType,
        filter: &Filter,
        limit: usize,
        continue_token: Option<&str>,
    ) -> Result<Value, Failure> {
        let (list_rv, after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token)
                    .ok_or_else(|| Failure::bad_request("invalid value for continue parameter"))?;
                if rv < self.horizon {
                    return Err(Failure::expired(
                        "The provided continue parameter is too old to display a consistent list result. You \
                         can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some((ns, name)))
            }
            None => (self.rv, None),
        };
        let mut matching = self.objects.iter().filter(|(k, v)| {
            k.api_version == rt.api_version
                && k.plural == rt.plural
                && after.as_ref().is_none_or(|(ns, name)| (&k.namespace, &k.name) > (ns, name))
                && filter.matches(v)
        });
        let mut items = Vec::new();
        let mut page_end: Option<&Key> = None;
        let mut more = false;
        for (k, v) in matching.by_ref() {
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            items.push(list_item(v));
            page_end = Some(k);
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if more && let (Some(end), Some(m)) = (page_end, metadata.as_object_mut()) {
            // The item that ended the loop is one of the remaining ones.
            let remaining = 1 + matching.count();
            m.insert("continue".into(), Value::String(encode_continue(list_rv, &end.namespace, &end.name)));
            m.insert("remainingItemCount".into(), json!(remaining));
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": items,
        }))
    }

    /// The first lines of a watch: synthetic ADDED events for a watch from "now", nothing for one from
    /// a resourceVersion. Returns them with the resourceVersion the watch continues from.
    fn watch_begin(&self, plan: &WatchPlan) -> Result<(Vec<Bytes>, u64), Failure> {
        match plan.start {
            None => {
                let lines = self
                    .objects
                    .iter()
                    .filter(|(k, v)| {
                        k.api_version == plan.rt.api_version
                            && k.plural == plan.rt.plural
                            && plan.filter.matches(v)
                    })
                    .map(|(_, v)| self.watch_line(plan, "ADDED", v))
                    .collect();
                Ok((lines, self.rv))
            }
            Some(rv) if rv < self.horizon => Err(too_old(rv, self.horizon)),
            Some(rv) => Ok((Vec::new(), rv)),
        }
    }

    /// The changes after `cursor` this watch should see, and the resourceVersion it has then seen.
    fn watch_drain(&self, plan: &WatchPlan, cursor: u64) -> Result<(Vec<Bytes>, u64), Failure> {
        if self.pruned_through > cursor {
            return Err(too_old(cursor, self.horizon));
        }
        let start = self.history.partition_point(|c| c.rv <= cursor);
        let mut lines = Vec::new();
        for c in &self.history[start..] {
            if c.key.api_version != plan.rt.api_version || c.key.plural != plan.rt.plural {
                continue;
            }
            let now = plan.filter.matches(&c.object);
            let before = c.old.as_ref().is_some_and(|o| plan.filter.matches(o));
            let kind = match c.kind {
                ChangeKind::Added if now => "ADDED",
                ChangeKind::Deleted if now => "DELETED",
                ChangeKind::Modified if now && before => "MODIFIED",
                ChangeKind::Modified if now => "ADDED",
                ChangeKind::Modified if before => "DELETED",
                _ => continue,
            };
            lines.push(self.watch_line(plan, kind, &c.object));
        }
        Ok((lines, self.rv.max(cursor)))
    }

    /// One event line of a watch, or garbage in its place while [`ApiServer::garble_watches`] says so.
    fn watch_line(&self, plan: &WatchPlan, kind: &str, object: &Value) -> Bytes {
        if self.garbled.contains(&plan.rt.plural) {
            // Not a truncated JSON line: kube skips those silently, as it must for the partial last
            // line of a cut connection.
            return Bytes::from_static(GARBAGE);
        }
        event_line(kind, object)
    }
}

/// What a proxy in front of the API server answers when it is unwell: HTML, one line.
const GARBAGE: &[u8] = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n";

fn too_old(rv: u64, horizon: u64) -> Failure {
    Failure::expired(format!("too old resource version: {rv} ({horizon})"))
}

/// One line of a watch stream.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A list item as the API server returns it: without `apiVersion` and `kind`, which the list carries.
fn list_item(object: &Value) -> Value {
    let mut item = object.clone();
    if let Some(obj) = item.as_object_mut() {
        obj.remove("apiVersion");
        obj.remove("kind");
    }
    item
}

fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    // Opaque to clients, like the real token; hex keeps it safe in a query string.
    format!("{rv}\n{namespace}\n{name}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '\n');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Selectors.

/// Which objects a LIST or WATCH sees.
#[derive(Clone, Debug, Default)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta_str(object, "namespace").unwrap_or_default() != ns
        {
            return false;
        }
        let labels = object["metadata"]["labels"].as_object();
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
        }) && self.fields.iter().all(|f| (field_value(object, &f.path) == f.value) != f.negate)
    }
}

#[derive(Clone, Debug)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Clone, Debug)]
struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

/// Splits on commas outside parentheses (`a in (x,y),b` is two requirements).
fn split_requirements(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let mut reqs = Vec::new();
    for term in split_requirements(s) {
        let bad = || format!("unable to parse requirement: {term:?}");
        let req = if let Some(key) = term.strip_prefix('!') {
            LabelReq::NotExists(key.trim().to_owned())
        } else if let Some(open) = term.find('(') {
            let close = term.rfind(')').filter(|&c| c > open).ok_or_else(bad)?;
            let values: Vec<String> = term[open + 1..close]
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            let mut head = term[..open].split_whitespace();
            match (head.next(), head.next(), head.next()) {
                (Some(k), Some("in"), None) => LabelReq::In(k.to_owned(), values),
                (Some(k), Some("notin"), None) => LabelReq::NotIn(k.to_owned(), values),
                _ => return Err(bad()),
            }
        } else if let Some((k, v)) = term.split_once("!=") {
            LabelReq::NotEq(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            LabelReq::Eq(k.trim().to_owned(), v.trim().to_owned())
        } else if term.contains(char::is_whitespace) {
            return Err(bad());
        } else {
            LabelReq::Exists(term.to_owned())
        };
        reqs.push(req);
    }
    Ok(reqs)
}

/// Any dotted path of the object may be selected on; the real API server allows fewer per resource.
fn parse_field_selector(s: &str) -> Result<Vec<FieldReq>, String> {
    split_requirements(s)
        .into_iter()
        .map(|term| {
            let (path, value, negate) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, v, false)
            } else {
                return Err(format!("invalid field selector: {term:?}"));
            };
            Ok(FieldReq { path: path.trim().to_owned(), value: value.trim().to_owned(), negate })
        })
        .collect()
}

/// A field as a selector compares it: strings as they are, other scalars printed, missing as "".
fn field_value(object: &Value, path: &str) -> String {
    let mut v = object;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers.

/// The object map of a value already checked to be an object (replaced by `{}` otherwise).
fn object_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("made an object just above"),
    }
}

fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    let obj = object_mut(v);
    let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    object_mut(meta)
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")?.get(field)?.as_str()
}

fn same_ignoring_rv(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        metadata_mut(&mut v).remove("resourceVersion");
        v
    };
    strip(a) == strip(b)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            let t = object_mut(target);
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

/// SplitMix64 finaliser: spreads a counter into well-mixed bits for uids and name suffixes.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Now in UTC as `YYYY-MM-DDTHH:MM:SSZ`, the format of `creationTimestamp`.
pub fn rfc3339_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (l2watch's own RFC 3339 writer, whole seconds).
pub fn rfc3339(secs: u64) -> String {
    let t = l2watch::wire::observation::Timestamp::from_secs_nanos(secs, 0);
    l2watch::export::report::rfc3339(t).replace(".000000Z", "Z")
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding, as kube encodes query parameters.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Serving.

type Body = UnsyncBoxBody<Bytes, Infallible>;

enum Ctl {
    Down(std::sync::mpsc::Sender<()>),
    Up(std::sync::mpsc::Sender<io::Result<()>>),
}

/// A listening socket with SO_REUSEADDR, so the port can be taken again right after going down
/// while closed connections still sit in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

struct Serving {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Serving {
        let (stop, stopped) = oneshot::channel();
        Serving { stop, task: tokio::spawn(accept_loop(listener, shared, stopped)) }
    }

    /// Returns once the listening socket and every connection are closed.
    async fn shut(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The server thread: serves, and goes down or up when the test says so, until the [`ApiServer`] is
/// dropped.
async fn control(shared: Arc<Shared>, listener: TcpListener, mut ctl: mpsc::UnboundedReceiver<Ctl>) {
    let mut serving = Some(Serving::spawn(listener, shared.clone()));
    while let Some(cmd) = ctl.recv().await {
        match cmd {
            Ctl::Down(ack) => {
                if let Some(s) = serving.take() {
                    s.shut().await;
                }
                let _ = ack.send(());
            }
            Ctl::Up(ack) => {
                let result = match serving {
                    Some(_) => Ok(()),
                    None => listen(shared.addr).map(|l| serving = Some(Serving::spawn(l, shared.clone()))),
                };
                let _ = ack.send(result);
            }
        }
    }
    if let Some(s) = serving.take() {
        s.shut().await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, shared.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Aborting a connection task drops its socket: the client sees the connection close, mid-watch
    // included, as when the API server process dies.
    conns.shutdown().await;
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

/// A request reduced to what routing needs.
struct Req {
    method: Method,
    path: String,
    params: BTreeMap<String, String>,
    content_type: String,
    body: Bytes,
}

/// What a request is answered with.
enum Reply {
    Json(u16, Value),
    Garbage,
    Truncated,
    Watch(WatchPlan),
}

impl From<Failure> for Reply {
    fn from(f: Failure) -> Reply {
        Reply::Json(f.code, f.to_json())
    }
}

/// A watch to run.
struct WatchPlan {
    rt: ResourceType,
    filter: Filter,
    /// `None`: start with the current objects; `Some(rv)`: the changes after `rv`.
    start: Option<u64>,
    timeout: Duration,
    bookmarks: bool,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let header =
        |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let content_type = header(CONTENT_TYPE);
    let req = Req {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        params: parse_query(parts.uri.query().unwrap_or_default()),
        content_type: content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
        body,
    };
    shared.lock().log.push(RecordedRequest {
        method: req.method.to_string(),
        path: req.path.clone(),
        params: req.params.clone(),
        content_type,
        authorization: header(AUTHORIZATION),
        body: String::from_utf8_lossy(&req.body).into_owned(),
    });
    wait_while_stalled(&shared).await;
    match dispatch(&shared, &req) {
        Reply::Json(code, value) => {
            respond(code, "application/json", serde_json::to_vec(&value).unwrap_or_default().into())
        }
        // A proxy's error page: for a list, a body no JSON parser accepts; for a watch, a line that is
        // not an event. (A body cut short in the middle of a line reads, to kube's watcher, as a
        // watch that ended cleanly: it asks again at once, without end.)
        Reply::Garbage => respond(200, "application/json", Bytes::from_static(GARBAGE)),
        Reply::Truncated => {
            respond(200, "application/json", Bytes::from_static(b"{\"type\":\"ADDED\",\"object\":{\"ki"))
        }
        Reply::Watch(plan) => start_watch(shared, plan),
    }
}

fn respond(code: u16, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

async fn wait_while_stalled(shared: &Shared) {
    let mut rx = shared.stall_tx.subscribe();
    loop {
        let until = *rx.borrow_and_update();
        match until {
            Some(t) if t > Instant::now() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    changed = rx.changed() => if changed.is_err() { return },
                }
            }
            _ => return,
        }
    }
}

fn dispatch(shared: &Shared, req: &Req) -> Reply {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let mut store = shared.lock();
    let discovery = |value: Option<Value>| -> Reply {
        if req.method != Method::GET {
            return Failure::method_not_allowed().into();
        }
        value.map_or_else(|| Failure::no_such_resource().into(), |v| Reply::Json(200, v))
    };
    match segments.as_slice() {
        ["version"] => discovery(Some(version_info())),
        ["api"] => discovery(Some(api_versions(shared.addr))),
        ["apis"] => discovery(Some(api_group_list(&store))),
        ["apis", group] => discovery(api_group(&store, group)),
        ["api", "v1"] => discovery(api_resource_list(&store, "v1")),
        ["apis", group, version] => discovery(api_resource_list(&store, &format!("{group}/{version}"))),
        ["api", "v1", rest @ ..] => resource(&mut store, "v1", rest, req),
        ["apis", group, version, rest @ ..] => resource(&mut store, &format!("{group}/{version}"), rest, req),
        _ => Failure::no_such_resource().into(),
    }
}

fn resource(store: &mut Store, api_version: &str, rest: &[&str], req: &Req) -> Reply {
    let (namespace, plural, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if store.lookup(api_version, plural).is_some() => {
            (Some(*ns), *plural, tail)
        }
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Failure::no_such_resource().into(),
    };
    let Some(rt) = store.lookup(api_version, plural).cloned() else {
        return Failure::no_such_resource().into();
    };
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(*name), None),
        [name, "status"] if rt.status => (Some(*name), Some("status")),
        _ => return Failure::no_such_resource().into(),
    };
    let watch = req.method == Method::GET && name.is_none() && is_true(req.params.get("watch"));
    match store.faults.get(plural) {
        Some(Fault::NotFound) => return Failure::no_such_resource().into(),
        Some(Fault::Garbage) => return Reply::Garbage,
        Some(Fault::Truncated) => return Reply::Truncated,
        Some(Fault::Forbidden) => return forbidden(&rt, &req.method, watch, name, namespace).into(),
        None => {}
    }
    if namespace.is_some() && !rt.namespaced {
        return Failure::no_such_resource().into();
    }
    let ns = namespace.unwrap_or_default();
    let status_only = sub.is_some();
    let parse_body = || -> Result<Value, Failure> {
        serde_json::from_slice(&req.body).map_err(|e| Failure::bad_request(format!("invalid JSON body: {e}")))
    };
    let result = match (&req.method, name) {
        (&Method::GET, None) => {
            let filter = match filter_from(&req.params, namespace) {
                Ok(f) => f,
                Err(f) => return f.into(),
            };
            if watch {
                let plan = match watch_plan(rt, filter, &req.params) {
                    Ok(p) => p,
                    Err(f) => return f.into(),
                };
                if store.expired_as_status
                    && let Some(rv) = plan.start.filter(|rv| *rv < store.horizon)
                {
                    return too_old(rv, store.horizon).into();
                }
                return Reply::Watch(plan);
            }
            let limit = req.params.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
            store.list(&rt, &filter, limit, req.params.get("continue").map(String::as_str))
        }
        (&Method::GET, Some(name)) => {
            store.objects.get(&Key::of(&rt, ns, name)).cloned().ok_or_else(|| Failure::not_found(&rt, name))
        }
        (&Method::POST, None) if !rt.namespaced || namespace.is_some() => {
            parse_body().and_then(|b| store.create(&rt, ns, b))
        }
        (&Method::PUT, Some(name)) => parse_body().and_then(|b| store.replace(&rt, ns, name, b, status_only)),
        (&Method::PATCH, Some(name)) => match req.content_type.as_str() {
            // Strategic merge differs from a JSON merge only for lists with merge keys, which these
            // tests do not rely on.
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                parse_body().and_then(|p| store.patch(&rt, ns, name, p, false, status_only))
            }
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                if req.params.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    Err(Failure::invalid(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for \
                         apply patch",
                    ))
                } else {
                    parse_apply_body(&req.body).and_then(|p| store.patch(&rt, ns, name, p, true, status_only))
                }
            }
            other => Err(Failure::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        },
        (&Method::DELETE, Some(name)) if !status_only => store.remove(&rt, ns, name),
        _ => Err(Failure::method_not_allowed()),
    };
    match result {
        Ok(v) if req.method == Method::POST => Reply::Json(201, v),
        Ok(v) => Reply::Json(200, v),
        Err(f) => f.into(),
    }
}

/// Server-side apply bodies are YAML (kube sends JSON, which is YAML too).
fn parse_apply_body(body: &[u8]) -> Result<Value, Failure> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| Failure::bad_request("apply body is not UTF-8"))?;
    let mut docs = parse_yaml_documents(text).map_err(Failure::bad_request)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        n => Err(Failure::bad_request(format!("apply body must hold one document, not {n}"))),
    }
}

fn forbidden(
    rt: &ResourceType,
    method: &Method,
    watch: bool,
    name: Option<&str>,
    ns: Option<&str>,
) -> Failure {
    let verb = match (method.as_str(), name) {
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => "access",
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_owned(),
    };
    let what = name.map(|n| format!(" {n:?}")).unwrap_or_default();
    Failure::new(
        403,
        "Forbidden",
        format!(
            "{}{what} is forbidden: User \"system:serviceaccount:default:l2watch\" cannot {verb} resource {:?} in \
             API group {:?} {scope}",
            rt.qualified(),
            rt.plural,
            rt.group()
        ),
    )
    .about(rt, name.unwrap_or_default())
}

fn filter_from(params: &BTreeMap<String, String>, namespace: Option<&str>) -> Result<Filter, Failure> {
    let labels = match params.get("labelSelector") {
        Some(s) => parse_label_selector(s).map_err(Failure::bad_request)?,
        None => Vec::new(),
    };
    let fields = match params.get("fieldSelector") {
        Some(s) => parse_field_selector(s).map_err(Failure::bad_request)?,
        None => Vec::new(),
    };
    Ok(Filter { namespace: namespace.map(str::to_owned), labels, fields })
}

fn watch_plan(
    rt: ResourceType,
    filter: Filter,
    params: &BTreeMap<String, String>,
) -> Result<WatchPlan, Failure> {
    let start = match params.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>().map_err(|_| Failure::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    // The real API server picks 30-60 minutes when the client names no timeout.
    let timeout = params.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800);
    Ok(WatchPlan {
        rt,
        filter,
        start,
        timeout: Duration::from_secs(timeout),
        bookmarks: is_true(params.get("allowWatchBookmarks")),
    })
}

/// Counts a running watch for [`ApiServer::active_watches`] while alive.
struct ActiveWatch<'a>(&'a AtomicUsize);

impl<'a> ActiveWatch<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        ActiveWatch(n)
    }
}

impl Drop for ActiveWatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn start_watch(shared: Arc<Shared>, plan: WatchPlan) -> Response<Body> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(run_watch(shared, plan, tx));
    // Each line goes out as its own chunk of a chunked response, as soon as it is made.
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|line| line.map(|b| Ok(Frame::data(b)))));
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn run_watch(shared: Arc<Shared>, plan: WatchPlan, tx: mpsc::Sender<Bytes>) {
    let _active = ActiveWatch::new(&shared.active_watches);
    let deadline = Instant::now() + plan.timeout;
    let mut closed = shared.close_tx.subscribe();
    let mut stalls = shared.stall_tx.subscribe();
    let mut hang = shared.hang_tx.subscribe();
    hang.mark_unchanged();
    // Subscribing under the lock that also reads the state: no change can slip in between.
    let (mut changes, begin, every) = {
        let store = shared.lock();
        (store.rv_tx.subscribe(), store.watch_begin(&plan), store.bookmark_every)
    };
    let (backlog, mut cursor) = match begin {
        Ok(b) => b,
        Err(expired) => {
            let _ = tx.send(event_line("ERROR", &expired.to_json())).await;
            return;
        }
    };
    for line in backlog {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let mut next_bookmark = Instant::now();
    loop {
        // Stalled: nothing goes out until the stall ends; hung: nothing ever again. Closing comes
        // first: a watch closed during a stall that ends right after must not send anything more.
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            _ = tx.closed() => return,
            _ = wait_while_stalled(&shared) => {}
        }
        if hang.has_changed().unwrap_or(false) {
            return hung(&mut closed, &tx).await;
        }
        let drained = shared.lock().watch_drain(&plan, cursor);
        match drained {
            Ok((lines, seen)) => {
                for line in lines {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
                cursor = seen;
            }
            Err(expired) => {
                let _ = tx.send(event_line("ERROR", &expired.to_json())).await;
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_bookmark), if plan.bookmarks => {
                if stalled(&shared) {
                    continue;
                }
                let bookmark = json!({
                    "kind": plan.rt.kind,
                    "apiVersion": plan.rt.api_version,
                    "metadata": {"resourceVersion": cursor.to_string()},
                });
                if tx.send(event_line("BOOKMARK", &bookmark)).await.is_err() {
                    return;
                }
                next_bookmark = Instant::now() + every;
            }
            changed = changes.changed() => if changed.is_err() { return },
            _ = closed.changed() => return,
            _ = tokio::time::sleep_until(deadline), if !stalled(&shared) => return,
            _ = tx.closed() => return,
            // A stall or hang that begins now takes effect at the top of the loop.
            _ = stalls.changed() => {}
            _ = hang.changed() => return hung(&mut closed, &tx).await,
        }
    }
}

/// A hung watch: silent until the server closes it (going down) or the client goes away.
async fn hung(closed: &mut watch::Receiver<u64>, tx: &mpsc::Sender<Bytes>) {
    tokio::select! {
        _ = closed.changed() => {}
        _ = tx.closed() => {}
    }
}

/// Whether a stall is in effect now.
fn stalled(shared: &Shared) -> bool {
    shared.stall_tx.borrow().is_some_and(|t| t > Instant::now())
}

// ---------------------------------------------------------------------------------------------
// Discovery documents.

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:09Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

/// Served types, minus those a NotFound fault hides.
fn visible_types(store: &Store) -> impl Iterator<Item = &ResourceType> {
    store.types.iter().filter(|t| store.faults.get(&t.plural) != Some(&Fault::NotFound))
}

fn group_json(store: &Store, group: &str) -> Option<Value> {
    let mut versions: Vec<&str> =
        visible_types(store).filter(|t| t.group() == group).map(|t| t.version()).collect();
    if versions.is_empty() {
        return None;
    }
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup();
    let entries: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    Some(json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }))
}

fn api_group(store: &Store, group: &str) -> Option<Value> {
    let mut g = group_json(store, group)?;
    let obj = object_mut(&mut g);
    obj.insert("kind".into(), json!("APIGroup"));
    obj.insert("apiVersion".into(), json!("v1"));
    Some(g)
}

fn api_group_list(store: &Store) -> Value {
    let mut names: Vec<&str> =
        visible_types(store).map(ResourceType::group).filter(|g| !g.is_empty()).collect();
    names.sort_unstable();
    names.dedup();
    let groups: Vec<Value> = names.iter().filter_map(|g| group_json(store, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn api_resource_list(store: &Store, api_version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in visible_types(store).filter(|t| t.api_version == api_version) {
        resources.push(json!({
            "name": t.plural,
            "singularName": t.kind.to_ascii_lowercase(),
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        }));
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": api_version,
        "resources": resources,
    }))
}
