//! The LAN the daemon's end-to-end tests run on: network namespaces joined by a bridge, with two nodes
//! (node-a runs l2watch, node-b answers for the service IP through its kernel), a foreign device and a
//! client; and reading `/metrics` and `/findings` as an operator would.

use std::net::SocketAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use super::lan::{Host, Lan, Proc, http_get, wait_for};
use super::metrics::value;

pub const MAC_A: &str = "02:4c:32:00:00:0a";
pub const MAC_B: &str = "02:4c:32:00:00:0b";
pub const MAC_FOREIGN: &str = "02:4c:32:00:00:f0";
pub const VIP: &str = "10.77.0.100";
/// The probe interval the tests configure; the foreign MAC must be found within it plus 1 s.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Tests share the machine's two CPUs: the flood test runs alone, the others side by side.
pub static LIVE: RwLock<()> = RwLock::new(());

#[allow(dead_code)] // held for its Drop
pub enum Turn {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

pub fn turn(alone: bool) -> Turn {
    if alone {
        Turn::Alone(LIVE.write().unwrap_or_else(PoisonError::into_inner))
    } else {
        Turn::Shared(LIVE.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The LAN, its hosts, and l2watch running on node-a.
pub struct Env {
    pub lan: Lan,
    pub a: Host,
    pub b: Host,
    pub foreign: Host,
    /// A plain machine on the LAN: its ARP traffic must not disturb anything.
    pub _client: Host,
    pub scrape: SocketAddr,
    pub daemon: Option<Proc>,
    /// Holds the config (and whatever a test puts beside it).
    pub dir: tempfile::TempDir,
    /// The config file's path.
    pub config: String,
    // Last: the LAN is torn down before the next test may take the machine alone.
    _turn: Turn,
}

pub fn config(announcer: Option<&str>, extra_services: &str) -> String {
    let announcer = announcer.map(|a| format!("      announcer: {a}\n")).unwrap_or_default();
    format!(
        "inventory:
  nodes:
    - {{name: node-a, macs: ['{MAC_A}'], ips: [10.77.0.11]}}
    - {{name: node-b, macs: ['{MAC_B}'], ips: [10.77.0.12]}}
  services:
    - name: web/nginx
      ips: [{VIP}]
{announcer}{extra_services}probe:
  interval: 2s
  reply_window: 500ms
  unanswered_after: 2
"
    )
}

/// Builds the LAN with the VIP on node-b, and starts l2watch on node-a.
pub fn setup(announcer: Option<&str>, extra_args: &[&str]) -> Env {
    setup_with(announcer, "", extra_args)
}

/// Like [`setup`], with more services (YAML list items, indented four spaces).
pub fn setup_with(announcer: Option<&str>, extra_services: &str, extra_args: &[&str]) -> Env {
    setup_yaml(config(announcer, extra_services), extra_args)
}

/// Like [`setup`], with the whole config given.
pub fn setup_yaml(yaml: String, extra_args: &[&str]) -> Env {
    setup_turn(yaml, extra_args, turn(false))
}

pub fn setup_turn(yaml: String, extra_args: &[&str], turn: Turn) -> Env {
    setup_files(yaml, &[], extra_args, turn)
}

/// Like [`setup_turn`], with more files (a registry, say) beside the config.
pub fn setup_files(yaml: String, files: &[(&str, &str)], extra_args: &[&str], turn: Turn) -> Env {
    let mut lan = Lan::new();
    let a = lan.host("nodea", MAC_A, "10.77.0.11/24");
    let b = lan.host("nodeb", MAC_B, "10.77.0.12/24");
    let foreign = lan.host("foreign", MAC_FOREIGN, "10.77.0.50/24");
    let client = lan.host("client", "02:4c:32:00:00:c1", "10.77.0.99/24");
    b.add_addr("eth0", &format!("{VIP}/32"));
    let scrape = SocketAddr::from((lan.mgmt(&a), 9787));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2watch.yaml");
    std::fs::write(&path, yaml).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let config = path.to_str().unwrap().to_owned();
    let mut env = Env { lan, a, b, foreign, _client: client, scrape, daemon: None, dir, config, _turn: turn };
    env.start(extra_args);
    env
}

impl Env {
    pub fn start(&mut self, extra: &[&str]) {
        let mut args = vec!["run", "-c", &self.config, "--node-name", "node-a", "--listen", "0.0.0.0:9787"];
        if !extra.contains(&"-i") {
            args.extend(["-i", "eth0"]);
        }
        args.extend(extra);
        let p = self.lan.spawn(&self.a, env!("CARGO_BIN_EXE_l2watch"), args);
        let scrape = self.scrape;
        wait_for(Duration::from_secs(10), "l2watch /readyz to answer 200", || {
            assert!(p.is_running(), "l2watch exited:\n{}", p.logs());
            matches!(http_get(scrape, "/readyz"), Ok((200, _))).then_some(())
        });
        self.daemon = Some(p);
    }

    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.scrape, "/metrics").expect("scrape /metrics");
        assert_eq!(status, 200);
        body
    }

    pub fn findings(&self) -> serde_json::Value {
        let (status, body) = http_get(self.scrape, "/findings").expect("GET /findings");
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/findings is not JSON ({e}):\n{body}"))
    }

    pub fn logs(&self) -> String {
        self.daemon.as_ref().map(Proc::logs).unwrap_or_default()
    }
}

/// The value of the series of `name` whose labels include every `label="value"` pair given.
pub fn p_logs_contain(env: &Env, what: &str) -> bool {
    env.daemon.as_ref().is_some_and(|p| p.logs().contains(what))
}

pub fn kinds(findings: &serde_json::Value) -> Vec<(String, String, String)> {
    findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("ip"), s("mac"))
        })
        .collect()
}

pub fn responders_of_vip(env: &Env) -> Option<f64> {
    value(&env.metrics(), "l2watch_ip_responders", &[("ip", VIP)])
}
