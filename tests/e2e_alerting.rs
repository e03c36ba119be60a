//! The alerting path for real: l2watch on a namespace LAN → Prometheus (Debian's `prometheus`, scraping it
//! with the rules of deploy/alerts) → Alertmanager (Debian's `prometheus-alertmanager`) → a webhook this
//! test runs. A foreign device takes a Service IP: L2watchForeignMAC must reach the webhook with the labels
//! the README promises, and resolve once the device lets go. While the conflict is active, every PromQL
//! expression of dashboards/l2watch.json runs against the same Prometheus: each must parse, and the panels
//! that describe the conflict and the Service must show data.
//!
//! Needs root (namespaces), prometheus and prometheus-alertmanager; fails loudly without them.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::{MAC_FOREIGN, VIP, config, setup_files, turn};
use support::lan::{http_get, poll_for, wait_for};
use support::repo::{require_tool, root};

/// What the shortened rules wait (`for:`), and how long a finding outlives its last frame
/// (`detect.hold`): seconds instead of the minutes the real ones take.
const FOR: &str = "5s";
const HOLD: &str = "5s";
/// Where the IP registry says web/nginx should be (it is on [`VIP`]).
const REGISTERED: &str = "10.77.0.101";
/// `$__rate_interval` of the dashboard's queries: several 1 s scrapes.
const RATE_INTERVAL: &str = "15s";

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn foreign_mac_alert_reaches_a_webhook_and_resolves_and_every_dashboard_query_runs() {
    let prometheus = require_tool("prometheus", "apt-get install -y prometheus");
    let alertmanager = require_tool("prometheus-alertmanager", "apt-get install -y prometheus-alertmanager");
    let started = Instant::now();

    // The registry expects web/nginx on another address: IP drift, for the dashboard's drift panels.
    let yaml = format!("registry: registry.yaml\n{}detect:\n  hold: {HOLD}\n", config(Some("node-b"), ""));
    let env =
        setup_files(yaml, &[("registry.yaml", &format!("web/nginx: {REGISTERED}\n"))], &[], turn(false));
    let dir = env.dir.path();
    let webhook = Webhook::start();
    let am_port = free_port();
    let am = Server::start(
        "alertmanager",
        &alertmanager,
        &alertmanager_args(dir, am_port, webhook.addr),
        dir,
        am_port,
    );
    let prom_port = free_port();
    let prom = Server::start(
        "prometheus",
        &prometheus,
        &prometheus_args(dir, prom_port, am_port, env.scrape),
        dir,
        prom_port,
    );
    let api = Api(prom.addr);
    wait_for(Duration::from_secs(15), "Prometheus to scrape l2watch as node-a and node-b", || {
        let r = api.query("count(up{job=\"l2watch-e2e\"} == 1) == 2");
        (!r.is_empty()).then_some(())
    });

    // The foreign device takes the Service IP (a laptop with a static address); its kernel answers probes.
    env.foreign.add_addr("eth0", &format!("{VIP}/32"));
    let want = [
        ("alertname", "L2watchForeignMAC"),
        ("kind", "foreign_mac"),
        ("ip", VIP),
        ("mac", MAC_FOREIGN),
        ("namespace", "web"),
        ("service", "nginx"),
        ("severity", "critical"),
        // Test MACs are locally administered, which is the vendor l2watch gives them.
        ("vendor", "locally administered"),
    ];
    // A probe round (2 s), `for:`, an evaluation, Alertmanager's group_wait: about 10 s.
    let firing = webhook.wait_for_alert(Duration::from_secs(30), "firing", &want, &prom, &am);
    // Aggregated across nodes: no target labels on a LAN finding.
    for label in ["instance", "node", "job"] {
        assert!(firing["labels"].get(label).is_none(), "{label} on a LAN alert: {firing:#}");
    }
    let annotations = &firing["annotations"];
    let summary = annotations["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(MAC_FOREIGN) && summary.contains(VIP) && summary.contains("web/nginx"),
        "{firing:#}"
    );
    let description = annotations["description"].as_str().unwrap_or_default();
    assert!(description.contains("Reported by 2 l2watch pod(s): node-a, node-b."), "{firing:#}");
    let fired_after = started.elapsed();

    dashboard_queries_run(&api);

    // Still firing while the device answers (a finding that flickers would resolve by itself, and the
    // resolution below would prove nothing).
    assert!(
        webhook.find_alert("resolved", &want).is_none(),
        "resolved before the device let go: {:#?}",
        webhook.posts()
    );
    let active = api.get("/api/v1/alerts");
    let firing_now = active["data"]["alerts"].as_array().into_iter().flatten().any(|a| {
        a["labels"]["alertname"] == "L2watchForeignMAC"
            && a["labels"]["mac"] == MAC_FOREIGN
            && a["state"] == "firing"
    });
    assert!(firing_now, "L2watchForeignMAC no longer firing in Prometheus: {active:#}");

    // The device lets go: the finding clears `detect.hold` after its last reply, the series goes
    // stale, and the alert resolves.
    env.foreign.del_addr("eth0", &format!("{VIP}/32"));
    webhook.wait_for_alert(Duration::from_secs(30), "resolved", &want, &prom, &am);
    let alerts = webhook.alerts();
    // One alert for the finding, not one per node that reports it.
    let label_sets: BTreeSet<String> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "L2watchForeignMAC")
        .map(|a| a["labels"].to_string())
        .collect();
    assert_eq!(label_sets.len(), 1, "L2watchForeignMAC with several label sets: {label_sets:#?}");
    // The device and node-b both answer, so split brain may fire too, and the drift the registry makes;
    // anything else (a daemon alert such as L2watchMetricLabelsRenamed) would be a rule misfiring on a
    // healthy scrape.
    let expected = ["L2watchForeignMAC", "L2watchSplitBrain", "L2watchServiceIPDrift"];
    let names: BTreeSet<&str> = alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
    assert!(names.iter().all(|n| expected.contains(n)), "unexpected alerts: {names:?}");
    eprintln!("e2e alerting: alerts seen at the webhook: {names:?}");
    eprintln!(
        "e2e alerting: from the start (LAN, l2watch, Prometheus, Alertmanager): firing after {:.1} s, \
         resolved after {:.1} s ({} webhook posts)",
        fired_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        webhook.posts().len()
    );
}

/// Runs every expression of dashboards/l2watch.json, its template variables replaced by what a user
/// viewing all nodes and Service web/nginx would pick.
fn dashboard_queries_run(api: &Api) {
    let path = root().join("dashboards/l2watch.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let substitute = |expr: &str| {
        expr.replace("$__rate_interval", RATE_INTERVAL)
            .replace("$__interval", "5s")
            .replace("$__range", "5m")
            // "All", the default: the variables' allValue.
            .replace("$node", ".*")
            .replace("$namespace", "web")
            .replace("$service", "nginx")
    };

    // Variables: label_values(SELECTOR, LABEL) is what Grafana asks /api/v1/label/LABEL/values.
    for var in dashboard["templating"]["list"].as_array().expect("templating.list") {
        let Some(query) = var["query"].as_str().filter(|_| var["type"] == "query") else { continue };
        let inner = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')'));
        let (selector, label) = inner.and_then(|q| q.rsplit_once(',')).unwrap_or_else(|| panic!("{query}"));
        let values = api.label_values(label.trim(), &substitute(selector));
        assert!(!values.is_empty(), "variable {} ({query}) has no values", var["name"]);
    }

    // Panels that must show data while the foreign device answers (titles, with the panel type
    // telling the "Active conflicts" stat from its table).
    let must_show = [
        ("stat", "Active conflicts"),
        ("stat", "Foreign MACs on Service IPs"),
        ("stat", "LoadBalancer IPs watched"),
        ("stat", "l2watch pods scraped"),
        ("table", "Active conflicts"),
        ("timeseries", "Foreign-MAC replies"),
        ("timeseries", "Responders per IP"),
        ("table", "LoadBalancer IP assignments"),
        ("stat", "Services with IP drift"),
        ("table", "IP drift and ignored annotations"),
        ("timeseries", "Frames per second, per node"),
        ("timeseries", "Probe round-trip time"),
    ];
    let mut shown = Vec::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let (kind, title) =
            (panel["type"].as_str().unwrap_or_default(), panel["title"].as_str().unwrap_or_default());
        let mut series = Vec::new();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            queries += 1;
            let expr = substitute(expr);
            let result = api.try_query(&expr);
            series.extend(result.unwrap_or_else(|e| panic!("panel {kind} {title:?}, query:\n{expr}\n{e}")));
        }
        if must_show.contains(&(kind, title)) {
            assert!(!series.is_empty(), "panel {kind} {title:?} shows nothing while the conflict is active");
            shown.push((kind, title, series));
        }
    }
    assert_eq!(shown.len(), must_show.len(), "panels missing from the dashboard: {must_show:?}");
    eprintln!("e2e alerting: {queries} dashboard queries parsed and ran");

    let find = |kind: &str, title: &str| &shown.iter().find(|(k, t, _)| *k == kind && *t == title).unwrap().2;
    let stat = find("stat", "Active conflicts")[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    assert!(stat >= 1.0, "Active conflicts stat shows {stat}");
    // The table's rows are findings, one per kind, IP and MAC, with the vendor joined in.
    let rows = find("table", "Active conflicts");
    let foreign: Vec<_> = rows
        .iter()
        .filter(|s| s["metric"]["kind"] == "foreign_mac" && s["metric"]["mac"] == MAC_FOREIGN)
        .collect();
    assert_eq!(foreign.len(), 1, "want one foreign_mac row for both nodes: {rows:#?}");
    let foreign = foreign[0];
    assert_eq!(foreign["value"][1], "2", "reported by both nodes: {foreign:#}");
    assert_eq!(foreign["metric"]["vendor"], "locally administered", "{foreign:#}");
    assert_eq!(foreign["metric"]["service"], "nginx", "{foreign:#}");
    assert!(foreign["metric"].get("node").is_none(), "one row per finding, not per node: {foreign:#}");
    let pods = find("stat", "l2watch pods scraped")[0]["value"][1].clone();
    assert_eq!(pods, "2", "l2watch pods scraped");
    let assignments = find("table", "LoadBalancer IP assignments");
    assert!(
        assignments.iter().all(|s| s["metric"].get("node").is_none()),
        "one row per Service: {assignments:#?}"
    );
    // The drift query's row joins the Service's row: same namespace, service and IP (its actual IP).
    assert!(
        assignments.iter().any(|s| s["metric"]["ip"] == VIP
            && s["metric"]["service"] == "nginx"
            && s["metric"]["expected_ip"] == REGISTERED
            && s["metric"]["source"] == "registry"),
        "{assignments:#?}"
    );
    assert!(
        assignments.iter().any(|s| s["metric"]["ip"] == VIP
            && s["metric"]["namespace"] == "web"
            && s["metric"]["service"] == "nginx"
            && s["metric"]["announcer"] == "node-b"),
        "{assignments:#?}"
    );
}

/// A port on loopback that nothing listens on now (another process may take it before us; the
/// server then fails to start and says so).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
}

fn alertmanager_args(dir: &Path, port: u16, webhook: SocketAddr) -> Vec<String> {
    let config = dir.join("alertmanager.yml");
    // Short waits so the test sees a notification within seconds; send_resolved is the webhook default,
    // written out because the test depends on it.
    let yaml = format!(
        "global:
  resolve_timeout: 10s
route:
  receiver: test
  group_by: [alertname, ip, mac]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: http://{webhook}/
        send_resolved: true
"
    );
    fs::write(&config, yaml).unwrap();
    let storage = dir.join("alertmanager-data");
    vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", storage.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // Empty: no gossip cluster, so nothing listens beyond loopback and no peers are looked for.
        "--cluster.listen-address=".into(),
    ]
}

fn prometheus_args(dir: &Path, port: u16, am_port: u16, scrape: SocketAddr) -> Vec<String> {
    let rules_path = root().join("deploy/alerts/l2watch.rules.yml");
    let rules = fs::read_to_string(&rules_path).unwrap_or_else(|e| panic!("{}: {e}", rules_path.display()));
    // A test copy of the rules with every `for:` shortened: the real ones wait minutes. Nothing else
    // changes, so the expressions, labels and annotations are the ones shipped.
    let mut shortened = 0;
    let test_rules: String = rules
        .lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            if line.trim_start().starts_with("for: ") {
                shortened += 1;
                format!("{}for: {FOR}\n", &line[..indent])
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(shortened > 0, "no `for:` in {}: has the rules file changed shape?", rules_path.display());
    let rules_copy = dir.join("l2watch.rules.yml");
    fs::write(&rules_copy, test_rules).unwrap();
    // As the README asks a scrape to be: honor_labels, a `node` label, a job name containing "l2watch".
    // The one l2watch is scraped twice, as node-a and node-b: two nodes that see the same LAN, which is
    // what the rules and the dashboard's tables aggregate (one alert and one row per finding, not per node).
    let config = dir.join("prometheus.yml");
    let yaml = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ['{}']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am_port}']
scrape_configs:
  - job_name: l2watch-e2e
    honor_labels: true
    static_configs:
      - targets: ['{scrape}']
        labels:
          node: node-a
      - targets: ['{scrape}']
        labels:
          node: node-b
",
        rules_copy.display()
    );
    fs::write(&config, yaml).unwrap();
    vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ]
}

/// A server process on loopback; dropping it kills it (by its pid, which is still ours: not reaped).
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &'static str, program: &str, args: &[String], dir: &Path, port: u16) -> Server {
        let log = dir.join(format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let mut server = Server { name, child, log, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        let addr = server.addr;
        let ready = poll_for(Duration::from_secs(15), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Some(Err(format!("exited with {status}")));
            }
            matches!(http_get(addr, "/-/ready"), Ok((200, _))).then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => server,
            Some(Err(e)) => panic!("{name} {e}:\n{}", server.logs()),
            None => panic!("{name} not ready on {addr} within 15 s:\n{}", server.logs()),
        }
    }

    fn logs(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("---- {} log ({}), last lines:\n{}", self.name, self.log.display(), tail.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus' HTTP API.
struct Api(SocketAddr);

impl Api {
    fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_get(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.0, path).map_err(|e| format!("GET {path}: {e}"))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("GET {path}: {status} {body}"));
        }
        Ok(v)
    }

    /// An instant query's result (vector, or a scalar as one element).
    fn query(&self, expr: &str) -> Vec<Value> {
        self.try_query(expr).unwrap_or_else(|e| panic!("{expr}\n{e}"))
    }

    fn try_query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self.try_get(&format!("/api/v1/query?query={}", encode(expr)))?;
        Ok(match &v["data"]["result"] {
            Value::Array(series) => series.clone(),
            other => vec![other.clone()],
        })
    }

    fn label_values(&self, label: &str, selector: &str) -> Vec<Value> {
        let v = self.get(&format!("/api/v1/label/{label}/values?match[]={}", encode(selector.trim())));
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Alertmanager's webhook receiver: records the JSON of every POST. Stops its thread when dropped.
struct Webhook {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the webhook");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (posts, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (p, s) = (posts.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => match read_post(stream) {
                        Ok(body) => p.lock().unwrap_or_else(PoisonError::into_inner).push(body),
                        Err(e) => eprintln!("webhook: {e}"),
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => eprintln!("webhook: accept: {e}"),
                }
            }
        });
        Webhook { addr, posts, stop, thread: Some(thread) }
    }

    fn posts(&self) -> Vec<Value> {
        self.posts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every alert of every notification so far.
    fn alerts(&self) -> Vec<Value> {
        self.posts().iter().flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default()).collect()
    }

    /// An alert with `status` whose labels are exactly `want` (no more, no fewer) in any notification so far.
    fn find_alert(&self, status: &str, want: &[(&str, &str)]) -> Option<Value> {
        let matches = |alert: &Value| {
            let labels = alert["labels"].as_object();
            alert["status"] == status
                && labels.is_some_and(|l| {
                    l.len() == want.len()
                        && want.iter().all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
                })
        };
        self.alerts().into_iter().find(matches)
    }

    /// Waits for [`Webhook::find_alert`] to find one; returns it. On timeout, panics with every
    /// notification and both servers' logs.
    fn wait_for_alert(
        &self,
        timeout: Duration,
        status: &str,
        want: &[(&str, &str)],
        prom: &Server,
        am: &Server,
    ) -> Value {
        let found = poll_for(timeout, || self.find_alert(status, want));
        found.unwrap_or_else(|| {
            panic!(
                "no {status} alert with labels {want:?} at the webhook within {timeout:?}; notifications:\n{:#?}\n\
                 Prometheus alerts: {}\n{}\n{}",
                self.posts(),
                Api(prom.addr).get("/api/v1/alerts")["data"],
                prom.logs(),
                am.logs()
            )
        })
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body, answers 200, returns the body as JSON.
fn read_post(stream: TcpStream) -> Result<Value, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).map_err(|e| e.to_string())?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|e| format!("{line:?}: {e}"))?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    if !request_line.starts_with("POST ") {
        return Err(format!("not a POST: {request_line:?}"));
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("body is not JSON ({e}): {}", String::from_utf8_lossy(&body)))
}
