//! The Kubernetes API failing under a running l2watch: killed and restarted, stalled, a silent watch,
//! 410 Gone both ways, answers that are not JSON, objects of the wrong shape, 403 on one resource.
//! Each test raises a conflict first and checks it survives the fault with every counter intact:
//! monitoring never depends on the API being there. One daemon per test on a namespace LAN, against
//! the test API server (`support::kube_api`); needs root.
//!
//! Recovery times are printed (`cargo test --test kube_faults -- --nocapture` shows them).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::kube_cluster::{KubeLan, l2status, service};

const SERVICES: &str = "/api/v1/services";
const L2STATUSES: &str = "/apis/metallb.io/v1beta1/servicel2statuses";

/// Log lines of one outage: the health check's, and nothing per watcher, Lease or retry.
fn assert_one_line_each_way(c: &KubeLan) {
    let log = c.log();
    assert_eq!(c.log_count("lost the Kubernetes API"), 1, "one line when the outage starts:\n{log}");
    assert_eq!(c.log_count("the Kubernetes API is back"), 1, "one line when it ends:\n{log}");
    for noise in
        ["Lease", "unreadable answer", "refused", "failed with error", "read from the Kubernetes API again"]
    {
        assert_eq!(c.log_count(noise), 0, "{noise:?}: the outage is said once, by the health check:\n{log}");
    }
}

/// Warnings and errors in the log that are not findings (those name their `kind`).
fn complaints(c: &KubeLan) -> Vec<String> {
    let log = c.log();
    let bad =
        log.lines().filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains(" kind=\""));
    bad.map(str::to_owned).collect()
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn api_server_killed_mid_watch_then_back_on_the_same_address() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    c.api.apply(service("gone", "10.79.0.102")).unwrap();
    c.wait(Duration::from_secs(5), "web/gone known", |c| c.has_service("gone", None));
    c.wait(Duration::from_secs(5), "every watch open", |c| c.api.active_watches() >= 9);

    // Killed: the listener and every open watch connection go at once.
    c.api.set_down(true).unwrap();
    let noticed = c.wait_synced(0.0, Duration::from_secs(15), "the API is down");
    // Changes the daemon cannot see while it is down.
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.api.delete("v1", "services", "web", "gone").unwrap();
    // Monitoring goes on with the last inventory: the finding stays, probing and counting go on.
    c.assert_nothing_lost(&before);
    assert!(c.has_service("gone", None), "the last inventory stays while the API is down");
    std::thread::sleep(Duration::from_secs(4));

    let t0 = Instant::now();
    c.api.set_down(false).unwrap();
    c.wait(Duration::from_secs(20), "the changes made during the outage", |c| {
        c.has_service("api", None) && !c.has_service("gone", None) && c.synced() == Some(1.0)
    });
    let recovered = t0.elapsed();
    eprintln!("outage: noticed after {noticed:?}, inventory current {recovered:?} after the API came back");
    c.assert_nothing_lost(&before);
    assert_one_line_each_way(&c);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn api_server_stalled_for_30s_then_answering_again() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    c.wait(Duration::from_secs(5), "every watch open", |c| c.api.active_watches() >= 9);

    // It accepts connections and answers nothing: lists, new watches, running watches, /version.
    const STALL: Duration = Duration::from_secs(30);
    let stalled_at = Instant::now();
    c.api.stall(STALL);
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    let noticed = c.wait_synced(0.0, Duration::from_secs(15), "the health check notices the stall");
    // The daemon does not hang on it: /metrics answers, the finding stays, probing goes on.
    c.assert_nothing_lost(&before);
    assert!(c.has_service("nginx", Some("node-a")), "the last inventory stays");
    c.api.clear_requests();
    std::thread::sleep(STALL.saturating_sub(stalled_at.elapsed()));
    // Requests given up and retried with backoff, not in a storm: 9 watchers and the health check,
    // each at most every few seconds.
    let during = c.api.requests().len();
    assert!(
        during < 120,
        "{during} requests in the last {:?} of the stall:\n{}",
        STALL - noticed,
        c.last_requests(200)
    );

    let t0 = Instant::now();
    c.wait(Duration::from_secs(20), "the Service added during the stall, in sync", |c| {
        c.has_service("api", None) && c.synced() == Some(1.0)
    });
    let recovered = t0.elapsed();
    eprintln!(
        "stall of {STALL:?}: noticed after {noticed:?}, inventory current {recovered:?} after it ended"
    );
    c.assert_nothing_lost(&before);
    assert_one_line_each_way(&c);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_watch_gone_silent_is_given_up_and_reopened() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    c.wait(Duration::from_secs(5), "every watch open", |c| c.api.active_watches() >= 9);
    let watches = c.api.watch_count(SERVICES);

    // The open watches stay connected and say nothing, not even bookmarks; the server is otherwise
    // fine. Only a read timeout gets the daemon out of them.
    c.api.hang_watches();
    let t0 = Instant::now();
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.wait(Duration::from_secs(15), "the Service added while its watch was silent", |c| {
        c.has_service("api", None)
    });
    let recovered = t0.elapsed();
    eprintln!("silent watch: the change arrived after {recovered:?} (read_timeout 3s)");
    assert!(c.api.watch_count(SERVICES) > watches, "a new watch, not a wait for the old one");
    assert_eq!(c.synced(), Some(1.0), "the API itself answers: nothing to report");
    c.assert_nothing_lost(&before);
    assert_eq!(c.log_count("lost the Kubernetes API"), 0, "{}", c.log());
}

/// Shared by both 410 tests: `web/gone` is deleted and `web/db` created while the daemon's watches
/// are held, and the history is compacted away, so only a relist can tell.
fn changes_lost_to_compaction(c: &KubeLan) {
    c.api.apply(service("gone", "10.79.0.102")).unwrap();
    c.wait(Duration::from_secs(5), "web/gone known", |c| c.has_service("gone", None));
    c.wait(Duration::from_secs(5), "every watch open", |c| c.api.active_watches() >= 9);
    // Held only briefly: the health check (every 5 s, 5 s to answer) need not notice.
    c.api.stall(Duration::from_secs(60));
    c.api.delete("v1", "services", "web", "gone").unwrap();
    c.api.apply(service("db", "10.79.0.103")).unwrap();
    c.api.compact();
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn watch_expired_as_an_error_event_relists() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    changes_lost_to_compaction(&c);
    let lists = c.api.list_count(SERVICES);
    // The running watches go on from where they were: the change they missed is gone, so the
    // server sends an ERROR event with code 410 inside the stream.
    let t0 = Instant::now();
    c.api.stall(Duration::ZERO);
    c.wait(Duration::from_secs(10), "web/gone gone and web/db there after the relist", |c| {
        !c.has_service("gone", None) && c.has_service("db", None) && c.synced() == Some(1.0)
    });
    eprintln!("410 ERROR event: inventory current {:?} after the watch resumed", t0.elapsed());
    assert!(c.api.list_count(SERVICES) > lists, "a relist");
    c.assert_nothing_lost(&before);
    assert_eq!(complaints(&c), Vec::<String>::new(), "410 is routine");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn watch_expired_as_http_410_relists() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    c.api.expire_with_http_status(true);
    changes_lost_to_compaction(&c);
    // The running watches end; the daemon's new ones ask for the old resourceVersion and are refused
    // with HTTP 410: resuming can never work, only a relist does.
    c.api.close_watches();
    let lists = c.api.list_count(SERVICES);
    let t0 = Instant::now();
    c.api.stall(Duration::ZERO);
    c.wait(Duration::from_secs(10), "web/gone gone and web/db there after the relist", |c| {
        !c.has_service("gone", None) && c.has_service("db", None) && c.synced() == Some(1.0)
    });
    eprintln!("HTTP 410 on the watch: inventory current {:?} after the server answered", t0.elapsed());
    assert!(c.api.list_count(SERVICES) > lists, "a relist");
    // Once: the relisted watcher resumes from the new resourceVersion, no 410 loop.
    std::thread::sleep(Duration::from_secs(2));
    let watches = c.api.watch_count(SERVICES);
    std::thread::sleep(Duration::from_secs(3));
    assert!(c.api.watch_count(SERVICES) <= watches + 1, "{}", c.last_requests(40));
    c.assert_nothing_lost(&before);
    assert_eq!(complaints(&c), Vec::<String>::new(), "410 is routine");
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_list_that_is_not_json() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    // Every watcher relists (compaction, then the watches end); the Services list is garbage.
    c.api.garbage("services");
    c.api.compact();
    c.api.close_watches();
    c.wait_synced(0.0, Duration::from_secs(10), "Services cannot be read");
    // The rest of the inventory is read on: a new node arrives.
    c.api.apply(support::kube_cluster::node("node-b", "10.200.0.12")).unwrap();
    c.wait(Duration::from_secs(10), "node-b in the inventory", |c| c.inventory()["nodes"] == json!(2));
    // What was known of the Services stays.
    assert!(c.has_service("nginx", Some("node-a")), "{}", c.metrics());
    let lists = c.api.list_count(SERVICES);
    std::thread::sleep(Duration::from_secs(10));
    let retries = c.api.list_count(SERVICES) - lists;
    assert!((1..=4).contains(&retries), "{retries} Services lists in 10 s: backoff up to 5 s");
    assert_eq!(c.log_count("unreadable answer from the Kubernetes API"), 1, "said once:\n{}", c.log());

    let t0 = Instant::now();
    c.api.heal("services");
    c.wait_synced(1.0, Duration::from_secs(10), "Services readable again");
    eprintln!("list not JSON: in sync {:?} after the server was fixed", t0.elapsed());
    assert_eq!(c.log_count("read from the Kubernetes API again"), 1, "{}", c.log());
    c.assert_nothing_lost(&before);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn a_watch_line_that_is_not_json_relists() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    c.api.apply(service("gone", "10.79.0.102")).unwrap();
    c.wait(Duration::from_secs(5), "web/gone known", |c| c.has_service("gone", None));
    // The deletion reaches the daemon as a line that is not JSON: reading on past it would keep the
    // Service forever (the bookmarks after it move the watch past the change).
    c.api.garble_watches("services", true);
    let t0 = Instant::now();
    c.api.delete("v1", "services", "web", "gone").unwrap();
    c.wait(Duration::from_secs(10), "web/gone gone after a relist", |c| !c.has_service("gone", None));
    eprintln!("garbage watch line: the lost deletion seen {:?} later", t0.elapsed());
    c.api.garble_watches("services", false);
    // A watch that failed counts as working again once it has gone 5 s without an error.
    c.wait_synced(1.0, Duration::from_secs(15), "in sync after the relist");
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.wait(Duration::from_secs(5), "a later change, watched normally", |c| c.has_service("api", None));
    assert_eq!(c.log_count("unreadable answer from the Kubernetes API"), 1, "said once:\n{}", c.log());
    c.assert_nothing_lost(&before);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn an_object_with_a_wrong_typed_field_is_skipped_alone() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    // `ports` is a list; a string there makes the whole Service unreadable as a Service.
    let mut bad = service("bad", "10.79.0.102");
    bad["spec"]["ports"] = json!("http");
    c.api.apply(bad).unwrap();
    c.wait(Duration::from_secs(5), "a warning naming web/bad", |c| !c.warnings_about("web/bad").is_empty());
    // A relist with it among the Services: the others are still read.
    c.api.compact();
    c.api.close_watches();
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.wait(Duration::from_secs(10), "web/api after a relist that holds web/bad", |c| {
        c.has_service("api", None) && c.has_service("nginx", Some("node-a")) && c.synced() == Some(1.0)
    });
    assert!(!c.has_service("bad", None));
    let warned = c.warnings_about("web/bad");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(c.log_count("web/bad"), 1, "said once:\n{}", c.log());

    // Fixed: read like any other, and the warning goes.
    c.api.apply(service("bad", "10.79.0.102")).unwrap();
    c.wait(Duration::from_secs(5), "web/bad fixed", |c| {
        c.has_service("bad", None) && c.warnings_about("web/bad").is_empty()
    });
    c.assert_nothing_lost(&before);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn forbidden_servicel2statuses_are_treated_as_empty_and_said_once() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    assert!(c.has_service("nginx", Some("node-a")));
    // RBAC loses ServiceL2Status; every watcher relists.
    c.api.forbid("servicel2statuses");
    c.api.compact();
    c.api.close_watches();
    c.wait(Duration::from_secs(10), "nginx's announcer unknown without its ServiceL2Status", |c| {
        c.has_service("nginx", Some(""))
    });
    // The others keep working, and the inventory counts as in sync without it.
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.wait(Duration::from_secs(5), "web/api", |c| c.has_service("api", None));
    assert_eq!(c.synced(), Some(1.0));
    // No retry storm: a refused resource is asked again after tens of seconds, not every few.
    let lists = c.api.list_count(L2STATUSES);
    std::thread::sleep(Duration::from_secs(10));
    assert!(c.api.list_count(L2STATUSES) - lists <= 1, "{}", c.last_requests(40));
    assert_eq!(c.log_count("servicel2statuses"), 1, "said once:\n{}", c.log());

    // Granted again: picked up at the next try.
    let t0 = Instant::now();
    c.api.heal("servicel2statuses");
    c.wait(Duration::from_secs(45), "nginx's announcer back", |c| c.has_service("nginx", Some("node-a")));
    eprintln!("403 healed: ServiceL2Status read again {:?} later", t0.elapsed());
    c.assert_nothing_lost(&before);
}

#[test]
#[cfg_attr(qemu_user, ignore = "opens a capture ring (see .ci/arm64)")]
fn watches_that_end_at_once_are_paced_not_a_storm() {
    let mut c = KubeLan::new();
    c.start();
    let before = c.raise_conflict();
    // Every ServiceL2Status watch is answered 200 with half a line: to kube's watcher, a watch that
    // ended cleanly, so it asks again at once, with nothing to show for it.
    c.api.truncate("servicel2statuses");
    c.api.close_watches();
    std::thread::sleep(Duration::from_secs(2));
    let watches = c.api.watch_count(L2STATUSES);
    std::thread::sleep(Duration::from_secs(5));
    let in_5s = c.api.watch_count(L2STATUSES) - watches;
    eprintln!("watches ended at once: {in_5s} watch requests in 5 s");
    assert!(in_5s <= 7, "{in_5s} watch requests in 5 s: at most one a second");
    c.wait(Duration::from_secs(15), "said once", |c| c.log_count("ends every watch") == 1);
    // The rest goes on.
    c.api.apply(service("api", "10.79.0.101")).unwrap();
    c.wait(Duration::from_secs(5), "web/api", |c| c.has_service("api", None));

    // Fixed: the watch resumes where it was, and the change made meanwhile arrives.
    let name = l2status("node-a")["metadata"]["name"].as_str().unwrap().to_owned();
    c.api.delete("metallb.io/v1beta1", "servicel2statuses", "metallb-system", &name).unwrap();
    c.api.heal("servicel2statuses");
    let t0 = Instant::now();
    c.wait(Duration::from_secs(5), "nginx's announcer gone with its ServiceL2Status", |c| {
        c.has_service("nginx", Some(""))
    });
    eprintln!("watches ended at once: fixed, the change seen {:?} later", t0.elapsed());
    c.assert_nothing_lost(&before);
    assert_eq!(c.log_count("ends every watch"), 1, "{}", c.log());
}
