//! Faults the daemon must ride out without losing anything, on the namespace LAN of `support::daemon`:
//! a config replaced while it runs (SIGHUP), a restart (the state file, also a corrupt one), slow HTTP
//! clients, and SIGTERM in the middle of a probe round. Faults of the capture interface are in
//! `daemon.rs`, faults of the Kubernetes API in `kube_api.rs`. Needs root (CI runs as root); fails
//! loudly without it.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::daemon::*;
use support::lan::{http_get, wait_for};
use support::metrics::{conflicts, value};

fn signal(env: &Env, sig: &str) {
    let pid = env.daemon.as_ref().expect("l2watch runs").pid().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().expect("kill").success());
}

/// The foreign device takes the VIP and l2watch finds it; returns the finding's first evidence time.
fn foreign_found(env: &Env) -> String {
    env.foreign.add_addr("eth0", &format!("{VIP}/32"));
    wait_for(Duration::from_secs(10), "foreign_mac on the VIP", || foreign_first_seen(env))
}

/// When the foreign device's `foreign_mac` finding got its first evidence, while it is active.
fn foreign_first_seen(env: &Env) -> Option<String> {
    let f = env.findings();
    f["findings"]
        .as_array()?
        .iter()
        .find(|x| x["kind"] == "foreign_mac" && x["mac"] == MAC_FOREIGN)
        .map(|x| x["first_seen"].as_str().unwrap_or_default().to_owned())
}

fn replies(env: &Env) -> f64 {
    value(&env.metrics(), "l2watch_foreign_mac_replies_total", &[("mac", MAC_FOREIGN)]).unwrap_or(0.0)
}

fn probes(env: &Env) -> f64 {
    value(&env.metrics(), "l2watch_probes_sent_total", &[("interface", "eth0")]).unwrap_or(0.0)
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn sighup_keeps_a_broken_config_out_and_applies_a_good_one_without_losing_anything() {
    let env = setup(Some("node-b"), &[]);
    let first_seen = foreign_found(&env);
    let before = replies(&env);
    assert_eq!(value(&env.metrics(), "l2watch_config_last_reload_successful", &[]), Some(1.0));

    // A broken file: the running config stays, the error names file, line and column.
    std::fs::write(&env.config, "probe:\n  interval: 2s\n  rate: [1,\n").unwrap();
    signal(&env, "-HUP");
    wait_for(Duration::from_secs(5), "the failed reload on /metrics", || {
        (value(&env.metrics(), "l2watch_config_last_reload_successful", &[]) == Some(0.0)).then_some(())
    });
    let m = env.metrics();
    assert_eq!(value(&m, "l2watch_config_reloads_total", &[("result", "failure")]), Some(1.0), "{m}");
    let logs = env.logs();
    let at = format!("{}:3:", env.config);
    assert!(logs.contains(&at) && logs.contains("running config stays"), "no {at}... in:\n{logs}");
    assert!(env.daemon.as_ref().unwrap().is_running());
    // Still watching with the old config: the conflict goes on being counted.
    wait_for(Duration::from_secs(6), "more foreign replies after the failed reload", || {
        (replies(&env) > before).then_some(())
    });

    // A good file: a second Service, and probing off.
    let mut good = config(Some("node-b"), "    - name: web/api\n      ips: [10.77.0.101]\n");
    good.push_str("  enabled: false\n");
    std::fs::write(&env.config, good).unwrap();
    let counted = replies(&env);
    signal(&env, "-HUP");
    wait_for(Duration::from_secs(5), "web/api in l2watch_service_info", || {
        value(&env.metrics(), "l2watch_service_info", &[("service", "api")]).map(|_| ())
    });
    let m = env.metrics();
    assert_eq!(value(&m, "l2watch_config_last_reload_successful", &[]), Some(1.0), "{m}");
    assert_eq!(value(&m, "l2watch_config_reloads_total", &[("result", "success")]), Some(1.0), "{m}");
    // The setting is in force: no probe goes out any more.
    let sent = probes(&env);
    std::thread::sleep(INTERVAL + Duration::from_secs(1));
    assert_eq!(probes(&env), sent, "probes still sent with probe.enabled false\n{}", env.logs());
    // Nothing lost: the same finding (not a new one), counters that did not go back.
    assert_eq!(foreign_first_seen(&env), Some(first_seen));
    assert!(replies(&env) >= counted);
    assert!(env.logs().contains("config reloaded"), "{}", env.logs());
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_restart_keeps_the_mac_history_and_active_findings_and_a_corrupt_state_is_set_aside() {
    let yaml = config(Some("node-b"), "") + "state:\n  path: l2watch.state\n  interval: 1s\n";
    let mut env = setup_yaml(yaml, &[]);
    let state = env.dir.path().join("l2watch.state");
    let first_seen = foreign_found(&env);
    wait_for(Duration::from_secs(5), "a periodic state write", || {
        value(&env.metrics(), "l2watch_state_writes_total", &[("result", "ok")]).filter(|n| *n >= 1.0)
    });
    let count = |env: &Env| {
        env.findings()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == "foreign_mac" && x["mac"] == MAC_FOREIGN)
            .and_then(|x| x["count"].as_u64())
    };
    let status = env.daemon.take().unwrap().stop();
    assert!(status.success(), "{status:?}");
    // The device leaves while l2watch is down; started again without probing, nothing new is seen.
    env.foreign.del_addr("eth0", &format!("{VIP}/32"));
    env.start(&["--no-probe"]);
    let f = env.findings();
    assert_eq!(foreign_first_seen(&env), Some(first_seen.clone()), "{f}\n{}", env.logs());
    assert!(count(&env).is_some_and(|n| n >= 1));
    let history: Vec<&str> = f["ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ip"] == VIP)
        .map(|i| i["macs"].as_array().unwrap().iter().filter_map(|m| m["mac"].as_str()).collect())
        .unwrap_or_default();
    assert!(history.contains(&MAC_FOREIGN) && history.contains(&MAC_B), "{history:?}\n{f}");
    let m = env.metrics();
    assert!(
        conflicts(&m).iter().any(|l| l.contains("foreign_mac") && l.contains(MAC_FOREIGN)),
        "the restored conflict is not on /metrics:\n{m}"
    );
    assert!(env.logs().contains("state restored"), "{}", env.logs());

    // A damaged file: set aside, warned about, and a clean start.
    env.daemon.take().unwrap().stop();
    let mut bytes = std::fs::read(&state).unwrap();
    let n = bytes.len();
    bytes.truncate(n - n / 3);
    std::fs::write(&state, &bytes).unwrap();
    env.start(&["--no-probe"]);
    assert_eq!(foreign_first_seen(&env), None);
    let logs = env.logs();
    assert!(logs.contains("set aside") && logs.contains("truncated"), "{logs}");
    assert_eq!(std::fs::read(state.with_extension("state.bad")).unwrap(), bytes);
    assert!(env.daemon.as_ref().unwrap().is_running());
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn slow_clients_neither_block_scrapes_nor_hold_up_sigterm_in_a_probe_round() {
    // Rounds stay open most of the time: SIGTERM lands in one.
    let yaml = config(Some("node-b"), "").replace("reply_window: 500ms", "reply_window: 1900ms");
    let env = setup_yaml(yaml, &[]);
    let pid = env.daemon.as_ref().unwrap().pid();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    let idle_fds = fds();
    // 300 clients that send half a request and hold on.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect_timeout(&env.scrape, Duration::from_secs(2)).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: l2watch\r\n").unwrap();
        slow.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let (status, body) = http_get(env.scrape, "/metrics").expect("a scrape among slow clients");
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "the scrape took {:?}", t.elapsed());
    assert!(
        value(&body, "l2watch_http_connections_evicted_total", &[]).is_some_and(|n| n >= 200.0),
        "{body}"
    );
    let open = fds();
    assert!(open <= idle_fds + 64 + 8, "{open} fds open (idle: {idle_fds}): connections are not bounded");
    // SIGTERM while the slow clients hold on and a probe round is open: out within 2 s.
    wait_for(Duration::from_secs(5), "a probe sent", || (probes(&env) >= 1.0).then_some(()));
    let t = Instant::now();
    signal(&env, "-TERM");
    let status = env.daemon.as_ref().unwrap().wait_timeout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|s| s.success()),
        "not stopped cleanly within 2 s: {status:?}\n{}",
        env.logs()
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(slow);
}
