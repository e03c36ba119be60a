//! The kustomize base (daemonset/) and its example overlay: `daemonset/check.sh` renders and validates
//! them against the Kubernetes and Prometheus Operator schemas; this file checks what the design
//! promises of the rendered objects (CAP_NET_RAW only, read-only RBAC but for Leases and Events, the
//! scrape the alert rules assume, every alert in the PrometheusRule), that the config parses with
//! l2watch's own loader and that the command line is l2watch's. `every_check_can_fail` breaks each
//! promise once and expects the checks to say so. Needs kubectl (fails, saying so, without it).

#[path = "support/repo.rs"]
mod repo;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::Parser as _;
use repo::{read, root, run_check};
use serde_json::{Value, json};

/// `kubectl kustomize DIR`, parsed: one JSON value per object.
fn render(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl").arg("kustomize").arg(root().join(dir)).output().unwrap_or_else(|e| {
        panic!("kubectl cannot be run ({e}): the manifests cannot be rendered. Install kubectl 1.27+ (kustomize v5)")
    });
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("kubectl kustomize {dir}: {e}"))
}

fn rules() -> Value {
    let path = root().join("deploy/alerts/l2watch.rules.yml");
    serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// What l2watch calls on the API (src/inventory/kubernetes/source.rs, src/export/event_writer.rs):
/// (namespace of a Role, or "" for the ClusterRole; API group; resource; verb).
const NEEDED: &[(&str, &str, &str, &str)] = &[
    ("", "", "nodes", "list"),
    ("", "", "nodes", "watch"),
    ("", "", "services", "list"),
    ("", "", "services", "watch"),
    ("", "", "services", "get"),
    ("", "", "events", "list"),
    ("", "", "events", "watch"),
    ("", "metallb.io", "ipaddresspools", "list"),
    ("", "metallb.io", "ipaddresspools", "watch"),
    ("", "metallb.io", "l2advertisements", "list"),
    ("", "metallb.io", "l2advertisements", "watch"),
    ("", "metallb.io", "servicel2statuses", "list"),
    ("", "metallb.io", "servicel2statuses", "watch"),
    ("", "events.k8s.io", "events", "create"),
    ("", "events.k8s.io", "events", "patch"),
    ("l2watch", "coordination.k8s.io", "leases", "list"),
    ("l2watch", "coordination.k8s.io", "leases", "watch"),
    ("l2watch", "coordination.k8s.io", "leases", "create"),
    ("l2watch", "coordination.k8s.io", "leases", "patch"),
    ("kube-system", "", "configmaps", "list"),
    ("kube-system", "", "configmaps", "watch"),
    ("metallb-system", "", "configmaps", "list"),
    ("metallb-system", "", "configmaps", "watch"),
];

/// The only writes: l2watch's Events (anywhere: on the Service concerned) and Leases (its namespace).
fn write_allowed(namespace: &str, group: &str, resource: &str, verb: &str) -> bool {
    matches!(verb, "create" | "patch")
        && ((group == "events.k8s.io" && resource == "events")
            || (namespace == "l2watch" && group == "coordination.k8s.io" && resource == "leases"))
}

fn rbac_problems(docs: &[Value], p: &mut Vec<String>) {
    let mut granted = BTreeSet::new();
    for role in of_kind(docs, "ClusterRole").into_iter().chain(of_kind(docs, "Role")) {
        let ns = role["metadata"]["namespace"].as_str().unwrap_or("");
        let name = format!("{} {ns}/{}", role["kind"], role["metadata"]["name"]);
        let bound = docs.iter().any(|b| {
            matches!(b["kind"].as_str(), Some("RoleBinding" | "ClusterRoleBinding"))
                && b["roleRef"]["kind"] == role["kind"]
                && b["roleRef"]["name"] == role["metadata"]["name"]
                && b["metadata"]["namespace"].as_str().unwrap_or("") == ns
                && b["subjects"]
                    == json!([{"kind": "ServiceAccount", "name": "l2watch", "namespace": "l2watch"}])
        });
        if !bound {
            p.push(format!("{name}: not bound to exactly the ServiceAccount l2watch/l2watch"));
        }
        for rule in role["rules"].as_array().into_iter().flatten() {
            if rule.get("nonResourceURLs").is_some() {
                p.push(format!("{name}: nonResourceURLs granted"));
            }
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                if strings(&rule[field]).iter().any(|s| s.contains('*')) {
                    p.push(format!("{name}: wildcard in {field}: {rule}"));
                }
            }
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    if resource.starts_with("secrets") {
                        p.push(format!("{name}: secrets granted"));
                    }
                    for verb in strings(&rule["verbs"]) {
                        if !matches!(verb, "get" | "list" | "watch")
                            && !write_allowed(ns, group, resource, verb)
                        {
                            p.push(format!("{name}: {verb} on {group}/{resource} is not read-only"));
                        }
                        granted.insert((
                            ns.to_owned(),
                            group.to_owned(),
                            resource.to_owned(),
                            verb.to_owned(),
                        ));
                    }
                }
            }
        }
    }
    for (ns, group, resource, verb) in NEEDED {
        let key = (ns.to_string(), group.to_string(), resource.to_string(), verb.to_string());
        if !granted.contains(&key) {
            p.push(format!(
                "RBAC lacks {verb} on {group}/{resource} (namespace {ns:?}), which l2watch calls"
            ));
        }
    }
}

/// Everything wrong with the rendered objects, in words; empty when they keep every promise.
fn problems(docs: &[Value], rules: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let sets = of_kind(docs, "DaemonSet");
    let [ds] = sets.as_slice() else {
        return vec![format!("{} DaemonSets, expected 1", sets.len())];
    };
    let spec = &ds["spec"];
    let pod = &spec["template"]["spec"];
    if pod["hostNetwork"] != true {
        p.push("hostNetwork is not true".into());
    }
    if pod["dnsPolicy"] != "ClusterFirstWithHostNet" {
        p.push(format!("dnsPolicy {}, expected ClusterFirstWithHostNet", pod["dnsPolicy"]));
    }
    for host in ["hostPID", "hostIPC"] {
        if pod[host] == true {
            p.push(format!("{host} is true"));
        }
    }
    if pod["serviceAccountName"] != "l2watch" || pod["automountServiceAccountToken"] != true {
        p.push("the pod does not run as ServiceAccount l2watch with its token".into());
    }
    let everywhere = pod["tolerations"].as_array().into_iter().flatten().any(|t| {
        t["operator"] == "Exists"
            && t.get("key").is_none_or(Value::is_null)
            && t.get("effect").is_none_or(Value::is_null)
    });
    if !everywhere {
        p.push("no toleration `operator: Exists` for every taint (control planes)".into());
    }
    let rolling = &spec["updateStrategy"]["rollingUpdate"];
    if spec["updateStrategy"]["type"] != "RollingUpdate"
        || rolling["maxUnavailable"] != 1
        || !(rolling["maxSurge"].is_null() || rolling["maxSurge"] == 0)
        || spec["minReadySeconds"].as_u64().unwrap_or(0) < 10
    {
        p.push(format!(
            "rollout: {} minReadySeconds {}: expected maxUnavailable 1, maxSurge 0 and minReadySeconds >= 10",
            spec["updateStrategy"], spec["minReadySeconds"]
        ));
    }
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    if !(2..=30).contains(&grace) {
        p.push(format!("terminationGracePeriodSeconds {grace}"));
    }
    let pod_seccomp = &pod["securityContext"]["seccompProfile"]["type"];
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod[k].as_array().into_iter().flatten())
        .collect();
    for c in &containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            p.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            p.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        if sc["readOnlyRootFilesystem"] != true {
            p.push(format!("{name}: readOnlyRootFilesystem is not true"));
        }
        if strings(&sc["capabilities"]["add"]) != ["NET_RAW"]
            || strings(&sc["capabilities"]["drop"]) != ["ALL"]
        {
            p.push(format!("{name}: capabilities {}, expected add [NET_RAW] drop [ALL]", sc["capabilities"]));
        }
        let seccomp = &sc["seccompProfile"]["type"];
        if !(seccomp == "RuntimeDefault" || seccomp.is_null() && pod_seccomp == "RuntimeDefault") {
            p.push(format!("{name}: seccomp profile is not RuntimeDefault"));
        }
        for kind in ["requests", "limits"] {
            for what in ["cpu", "memory"] {
                if c["resources"][kind][what].is_null() {
                    p.push(format!("{name}: no {what} in resources.{kind}"));
                }
            }
        }
    }
    let Some(c) = containers.iter().find(|c| c["name"] == "l2watch") else {
        p.push("no container named l2watch".into());
        return p;
    };
    container_problems(docs, pod, c, &mut p);
    rbac_problems(docs, &mut p);
    scrape_problems(docs, c, &mut p);
    let rule_sets = of_kind(docs, "PrometheusRule");
    match rule_sets.as_slice() {
        [rule] if rule["spec"]["groups"] == rules["groups"] => {}
        [rule] => p.push(format!(
            "the PrometheusRule's groups differ from deploy/alerts/l2watch.rules.yml (alerts {:?} against {:?})",
            alert_names(&rule["spec"]["groups"]),
            alert_names(&rules["groups"])
        )),
        other => p.push(format!("{} PrometheusRules, expected 1", other.len())),
    }
    p
}

fn alert_names(groups: &Value) -> Vec<&str> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["alert"].as_str())
        .collect()
}

/// The l2watch container: its command line is l2watch's, its files come from the ConfigMap and the
/// hostPath, the config parses, the probes and env are those the binary serves and reads.
fn container_problems(docs: &[Value], pod: &Value, c: &Value, p: &mut Vec<String>) {
    let args: Vec<&str> = strings(&c["args"]);
    let (config, state) =
        match l2watch::cmd::Cli::try_parse_from(std::iter::once("l2watch").chain(args.clone())) {
            Ok(cli) => match cli.command {
                l2watch::cmd::Command::Run { config, state, .. } => (config, state),
                other => {
                    p.push(format!("args {args:?} are not `run`: {other:?}"));
                    return;
                }
            },
            Err(e) => {
                p.push(format!("args {args:?} are not l2watch's command line: {e}"));
                return;
            }
        };
    if state.as_deref() != Some(Path::new("/var/lib/l2watch/state.json")) {
        p.push(format!("--state {state:?}, expected /var/lib/l2watch/state.json"));
    }
    let mount = |dir: &Path| {
        c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mountPath"].as_str().map(Path::new) == Some(dir))
    };
    let volume =
        |m: &Value| pod["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == m["name"]).cloned();
    let state_volume = state.as_deref().and_then(Path::parent).and_then(mount).and_then(volume);
    if state_volume.as_ref().map(|v| &v["hostPath"])
        != Some(&json!({"path": "/var/lib/l2watch", "type": "DirectoryOrCreate"}))
    {
        p.push(format!(
            "the state directory is not the hostPath /var/lib/l2watch (DirectoryOrCreate): {state_volume:?}"
        ));
    }
    let Some(config) = config else {
        p.push("no --config".into());
        return;
    };
    let config_volume = config.parent().and_then(mount).and_then(volume);
    let map_name = config_volume.as_ref().and_then(|v| v["configMap"]["name"].as_str());
    let Some(map) =
        docs.iter().find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"].as_str() == map_name)
    else {
        p.push(format!("--config {} is not mounted from a ConfigMap of these objects", config.display()));
        return;
    };
    // The ConfigMap's files as the pod sees them, loaded (with the registry it names) by l2watch itself.
    let dir = tempfile::tempdir().unwrap();
    for (key, text) in map["data"].as_object().into_iter().flatten() {
        std::fs::write(dir.path().join(key), text.as_str().unwrap_or_default()).unwrap();
    }
    let file = dir.path().join(config.file_name().unwrap());
    match l2watch::cmd::load(Some(&file), None, true) {
        Ok((cfg, _)) => {
            let port = c["ports"].as_array().into_iter().flatten().find(|p| p["name"] == "metrics");
            if port.map(|p| &p["containerPort"]) != Some(&json!(cfg.metrics.listen.port())) {
                p.push(format!("metrics.listen {} is not the container port `metrics`", cfg.metrics.listen));
            }
        }
        Err(e) => p.push(format!("{} does not load: {e:#}", config.display())),
    }
    for (probe, path) in
        [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
    {
        let get = &c[probe]["httpGet"];
        if get["path"] != path || !(get["port"] == "metrics" || get["port"] == 9787) {
            p.push(format!("{probe}: {get}, expected GET {path} on port metrics"));
        }
    }
    if c["livenessProbe"]["timeoutSeconds"].as_u64().unwrap_or(1) < 3 {
        p.push("livenessProbe: a timeout under 3 s restarts a busy pod".into());
    }
    for (var, field) in [("NODE_NAME", "spec.nodeName"), ("POD_NAMESPACE", "metadata.namespace")] {
        let from = c["env"].as_array().into_iter().flatten().find(|e| e["name"] == var);
        if from.map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]) != Some(&json!(field)) {
            p.push(format!("env {var} is not from the downward API's {field}"));
        }
    }
}

/// The scrape deploy/alerts/l2watch.rules.yml assumes: honorLabels, `node` from the pod's node, a job
/// named after l2watch, and a selector that finds the DaemonSet's pods on a port they have.
fn scrape_problems(docs: &[Value], c: &Value, p: &mut Vec<String>) {
    let monitors = of_kind(docs, "PodMonitor");
    let [pm] = monitors.as_slice() else {
        p.push(format!("{} PodMonitors, expected 1", monitors.len()));
        return;
    };
    let job = format!(
        "{}/{}",
        pm["metadata"]["namespace"].as_str().unwrap_or(""),
        pm["metadata"]["name"].as_str().unwrap_or("")
    );
    if !job.contains("l2watch") {
        p.push(format!(
            "PodMonitor job {job} does not contain l2watch (the rules select job=~\".*l2watch.*\")"
        ));
    }
    let template_labels = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .map(|d| d["spec"]["template"]["metadata"]["labels"].clone())
        .unwrap_or_default();
    for (k, v) in pm["spec"]["selector"]["matchLabels"].as_object().into_iter().flatten() {
        if template_labels[k] != *v {
            p.push(format!("PodMonitor selector {k}={v} does not match the DaemonSet's pods"));
        }
    }
    let endpoints = pm["spec"]["podMetricsEndpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() {
        p.push("PodMonitor has no endpoints".into());
    }
    let ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().map(|p| &p["name"]).collect();
    for e in &endpoints {
        if e["honorLabels"] != true {
            p.push("PodMonitor endpoint without honorLabels: true".into());
        }
        if !ports.contains(&&e["port"]) {
            p.push(format!("PodMonitor port {} is not a port of the container", e["port"]));
        }
        let node = e["relabelings"].as_array().into_iter().flatten().any(|r| {
            strings(&r["sourceLabels"]) == ["__meta_kubernetes_pod_node_name"]
                && r["targetLabel"] == "node"
                && (r["action"].is_null() || r["action"] == "replace")
        });
        if !node {
            p.push("PodMonitor endpoint does not set `node` from __meta_kubernetes_pod_node_name".into());
        }
    }
}

#[test]
fn check_sh_renders_and_validates_base_and_overlay() {
    run_check("daemonset/check.sh");
}

#[test]
fn the_base_keeps_every_promise() {
    let docs = render("daemonset");
    let p = problems(&docs, &rules());
    assert!(p.is_empty(), "daemonset/:\n  {}", p.join("\n  "));
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in ["Namespace", "ServiceAccount", "ConfigMap", "Service", "PodMonitor", "PrometheusRule"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let sa = of_kind(&docs, "ServiceAccount");
    assert_eq!(
        sa[0]["automountServiceAccountToken"], false,
        "the ServiceAccount mounts its token into every pod"
    );
}

#[test]
fn the_example_overlay_sets_interface_registry_and_nodes() {
    let docs = render("daemonset/overlays/example");
    let p = problems(&docs, &rules());
    assert!(p.is_empty(), "daemonset/overlays/example:\n  {}", p.join("\n  "));
    let ds = of_kind(&docs, "DaemonSet")[0];
    assert_eq!(ds["spec"]["template"]["spec"]["nodeSelector"]["l2watch.io/lan"], "true");
    let map = of_kind(&docs, "ConfigMap")[0];
    let config: Value = serde_saphyr::from_str(map["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config["registry"], "registry.yaml");
    assert!(!strings(&config["capture"]["interfaces"]).is_empty(), "no interface: {config}");
    assert!(map["data"]["registry.yaml"].is_string(), "registry.yaml is not in the ConfigMap");
    // The overlay's config replaces the base's: it must keep every setting of the base.
    let base: Value = serde_saphyr::from_str(&read(&root().join("daemonset/base/config.yaml"))).unwrap();
    fn keeps(base: &Value, new: &Value, at: &str) -> Vec<String> {
        match base {
            Value::Object(m) => m.iter().flat_map(|(k, v)| keeps(v, &new[k], &format!("{at}.{k}"))).collect(),
            Value::Array(a) if a.is_empty() => vec![],
            _ if base == new => vec![],
            _ => vec![format!("{at}: {base} in the base, {new} in the overlay")],
        }
    }
    let lost = keeps(&base, &config, "");
    assert!(lost.is_empty(), "the overlay's config.yaml drops settings of the base: {lost:?}");
}

type Break = fn(&mut Vec<Value>);

fn container(docs: &mut [Value]) -> &mut Value {
    let ds = docs.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
    &mut ds["spec"]["template"]["spec"]["containers"][0]
}

fn role<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    docs.iter_mut().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap()
}

/// Each promise broken once: the checks above must name it. A check that cannot fail checks nothing.
#[test]
fn every_check_can_fail() {
    let good = render("daemonset");
    let rules = rules();
    let p = problems(&good, &rules);
    assert!(p.is_empty(), "the rendered base already has problems: {p:?}");
    let cases: &[(&str, Break, &str)] = &[
        ("privileged", |d| container(d)["securityContext"]["privileged"] = json!(true), "privileged"),
        (
            "NET_ADMIN",
            |d| container(d)["securityContext"]["capabilities"]["add"] = json!(["NET_RAW", "NET_ADMIN"]),
            "capabilities",
        ),
        (
            "nothing dropped",
            |d| container(d)["securityContext"]["capabilities"]["drop"] = json!([]),
            "capabilities",
        ),
        (
            "writable root",
            |d| container(d)["securityContext"]["readOnlyRootFilesystem"] = json!(false),
            "readOnlyRootFilesystem",
        ),
        (
            "escalation",
            |d| container(d)["securityContext"]["allowPrivilegeEscalation"] = json!(true),
            "allowPrivilegeEscalation",
        ),
        (
            "no seccomp",
            |d| {
                container(d)["securityContext"]["seccompProfile"] = Value::Null;
                let ds = d.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
                ds["spec"]["template"]["spec"]["securityContext"] = json!({});
            },
            "seccomp",
        ),
        ("no limits", |d| container(d)["resources"]["limits"] = json!({}), "resources.limits"),
        (
            "pod network",
            |d| {
                let ds = d.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
                ds["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
            },
            "hostNetwork",
        ),
        (
            "no tolerations",
            |d| {
                let ds = d.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
                ds["spec"]["template"]["spec"]["tolerations"] =
                    json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]);
            },
            "toleration",
        ),
        (
            "surge",
            |d| {
                let ds = d.iter_mut().find(|d| d["kind"] == "DaemonSet").unwrap();
                ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = json!(1);
            },
            "rollout",
        ),
        (
            "wildcard verbs",
            |d| role(d, "ClusterRole", "l2watch")["rules"][0]["verbs"] = json!(["*"]),
            "wildcard",
        ),
        (
            "wildcard resources",
            |d| role(d, "ClusterRole", "l2watch")["rules"][0]["resources"] = json!(["*"]),
            "wildcard",
        ),
        (
            "secrets",
            |d| {
                role(d, "ClusterRole", "l2watch")["rules"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}))
            },
            "secrets",
        ),
        (
            "write services",
            |d| {
                role(d, "ClusterRole", "l2watch")["rules"][1]["verbs"] =
                    json!(["get", "list", "watch", "update"])
            },
            "not read-only",
        ),
        (
            "leases cluster-wide",
            |d| {
                role(d, "ClusterRole", "l2watch")["rules"].as_array_mut().unwrap().push(json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["patch"]}))
            },
            "not read-only",
        ),
        (
            "delete leases",
            |d| {
                role(d, "Role", "l2watch-leases")["rules"][0]["verbs"] =
                    json!(["list", "watch", "create", "patch", "delete"])
            },
            "not read-only",
        ),
        (
            "too narrow",
            |d| role(d, "Role", "l2watch-leases")["rules"][0]["verbs"] = json!(["list", "watch", "patch"]),
            "lacks create",
        ),
        (
            "unbound",
            |d| role(d, "ClusterRoleBinding", "l2watch")["subjects"][0]["namespace"] = json!("default"),
            "not bound",
        ),
        (
            "honorLabels",
            |d| {
                let pm = d.iter_mut().find(|d| d["kind"] == "PodMonitor").unwrap();
                pm["spec"]["podMetricsEndpoints"][0]["honorLabels"] = json!(false);
            },
            "honorLabels",
        ),
        (
            "no node label",
            |d| {
                let pm = d.iter_mut().find(|d| d["kind"] == "PodMonitor").unwrap();
                pm["spec"]["podMetricsEndpoints"][0]["relabelings"] = json!([]);
            },
            "`node`",
        ),
        (
            "job name",
            |d| {
                let pm = d.iter_mut().find(|d| d["kind"] == "PodMonitor").unwrap();
                pm["metadata"]["name"] = json!("arp");
                pm["metadata"]["namespace"] = json!("monitoring");
            },
            "job",
        ),
        (
            "an alert lost",
            |d| {
                let pr = d.iter_mut().find(|d| d["kind"] == "PrometheusRule").unwrap();
                pr["spec"]["groups"][0]["rules"].as_array_mut().unwrap().remove(0);
            },
            "PrometheusRule",
        ),
        (
            "no NODE_NAME",
            |d| container(d)["env"].as_array_mut().unwrap().retain(|e| e["name"] != "NODE_NAME"),
            "NODE_NAME",
        ),
        (
            "liveness on readiness",
            |d| container(d)["livenessProbe"]["httpGet"]["path"] = json!("/readyz"),
            "livenessProbe",
        ),
        (
            "a flag l2watch lacks",
            |d| container(d)["args"].as_array_mut().unwrap().push(json!("--verbose")),
            "command line",
        ),
        ("state elsewhere", |d| container(d)["args"][4] = json!("/tmp/state.json"), "--state"),
        (
            "a config key l2watch lacks",
            |d| {
                let map = d.iter_mut().find(|d| d["kind"] == "ConfigMap").unwrap();
                let text = map["data"]["config.yaml"].as_str().unwrap().to_owned();
                map["data"]["config.yaml"] = json!(text.replace("inventory:", "inventroy:"));
            },
            "does not load",
        ),
        ("another port", |d| container(d)["ports"][0]["containerPort"] = json!(9100), "metrics.listen"),
    ];
    let mut silent = Vec::new();
    for (what, break_it, expect) in cases {
        let mut docs = good.clone();
        break_it(&mut docs);
        let p = problems(&docs, &rules);
        if !p.iter().any(|m| m.contains(expect)) {
            silent.push(format!("{what}: expected a problem with {expect:?}, got {p:?}"));
        }
    }
    assert!(silent.is_empty(), "checks that did not fail:\n  {}", silent.join("\n  "));
}
