//! Bad input: clear errors, exit status 2, nothing lost.

mod support;

use l2watch::wire::frame::ArpSpec;
use support::{Capture, config_file, ip4, l2watch, mac, testdata};

fn analyze_with_config(yaml: &str) -> (support::Run, String) {
    let cfg = config_file(yaml);
    let cap = testdata().join("pcap/chrissanders_arp_resolution.pcapng");
    let run = l2watch(&["analyze", "--config", cfg.to_str().unwrap(), cap.to_str().unwrap()]);
    (run, cfg.to_str().unwrap().to_owned())
}

/// The error is one line naming the file, line and column.
fn assert_one_line_error(run: &support::Run, path: &str, line_col: &str, words: &str) {
    assert_eq!(run.status, 2, "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
    assert!(lines[0].starts_with(&format!("l2watch: error: {path}:{line_col}: ")), "{}", lines[0]);
    assert!(lines[0].contains(words), "{}", lines[0]);
    assert!(run.stdout.is_empty());
}

#[test]
fn unknown_config_key() {
    let (run, path) = analyze_with_config("detect:\n  hold: 10m\n  hodl: 5m\n");
    assert_one_line_error(&run, &path, "3:3", "unknown field `hodl`");
}

#[test]
fn bad_cidr_in_config() {
    let (run, path) = analyze_with_config(
        "inventory:\n  pools:\n    - name: p\n      addresses: [192.168.1.0/24, 10.0.0.0/33]\n",
    );
    assert_one_line_error(&run, &path, "4:35", "invalid prefix length in \"10.0.0.0/33\"");
}

#[test]
fn bad_mac_in_config() {
    let (run, path) = analyze_with_config("allow:\n  - mac: \"00:11:22:33:44\"\n");
    assert_one_line_error(&run, &path, "2:10", "invalid MAC address \"00:11:22:33:44\"");
}

#[test]
fn announcer_that_is_not_a_node() {
    let (run, path) = analyze_with_config(
        "inventory:\n  services:\n    - name: web/nginx\n      ips: [10.0.0.1]\n      announcer: worker-9\n",
    );
    assert_one_line_error(&run, &path, "3:7", "announcer \"worker-9\"");
}

#[test]
fn missing_config_file() {
    let cap = testdata().join("pcap/chrissanders_arp_resolution.pcapng");
    let run = l2watch(&["analyze", "--config", "/nonexistent/l2watch.yaml", cap.to_str().unwrap()]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("/nonexistent/l2watch.yaml: cannot read"), "{}", run.stderr);
}

#[test]
fn the_example_config_is_valid_and_documents_every_option() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/l2watch.yaml");
    let cap = testdata().join("pcap/chrissanders_arp_resolution.pcapng");
    let run = l2watch(&["analyze", "--config", example, cap.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(example).unwrap();
    for key in [
        "source:",
        "nodes:",
        "hosts:",
        "pools:",
        "services:",
        "announcer:",
        "allow:",
        "registry:",
        "hold:",
        "flip_window:",
        "track:",
        "max_tracked_ips:",
        "max_macs_per_ip:",
        "max_findings:",
        "node_name:",
        "capture:",
        "interfaces:",
        "exclude:",
        "ring_mib:",
        "probe:",
        "enabled:",
        "interval:",
        "pool_interval:",
        "reply_window:",
        "rate:",
        "unanswered_after:",
        "max_pool_addresses:",
        "metrics:",
        "listen:",
        "max_series:",
        "oui_files:",
    ] {
        assert!(text.contains(key), "examples/l2watch.yaml does not document {key}");
    }
}

#[test]
fn not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "this is not a capture\n").unwrap();
    let run = l2watch(&["analyze", p.to_str().unwrap()]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("not a pcap or pcapng capture"), "{}", run.stderr);
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let run = l2watch(&["analyze", empty.to_str().unwrap()]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
}

#[test]
fn missing_capture_file() {
    let run = l2watch(&["analyze", "/nonexistent/capture.pcap"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("/nonexistent/capture.pcap: cannot read"), "{}", run.stderr);
}

#[test]
fn truncated_capture_reports_what_it_read_and_exits_2() {
    let mut c = Capture::new();
    for i in 0..10u8 {
        c.arp(ArpSpec::gratuitous(mac("02:00:00:00:00:01"), ip4(&format!("10.0.0.{}", i + 1)))).after(0.1);
    }
    c.arp(ArpSpec::reply(
        mac("02:00:00:00:00:66"),
        ip4("10.0.0.1"),
        mac("02:00:00:00:00:01"),
        ip4("10.0.0.2"),
    ));
    let bytes = c.pcap_bytes();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.pcap");
    std::fs::write(&p, &bytes[..bytes.len() - 20]).unwrap();
    let run = l2watch(&["analyze", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("broken after frame 10") && run.stderr.contains("truncated"),
        "{}",
        run.stderr
    );
    let r = run.json();
    assert_eq!(r["frames"]["by_kind"]["gratuitous"], 10, "the frames before the cut are analyzed");
    assert_eq!(r["files"][0]["frames"], 10);
}

#[test]
fn usage_errors_exit_2() {
    let run = l2watch(&["analyze"]);
    assert_eq!(run.status, 2);
    let run = l2watch(&["analyze", "--format", "xml", "x.pcap"]);
    assert_eq!(run.status, 2);
}

#[test]
fn text_report_groups_findings_by_ip() {
    let mut c = Capture::new();
    c.arp(ArpSpec::reply(
        mac("02:00:00:00:00:66"),
        ip4("10.0.0.5"),
        mac("02:00:00:00:00:01"),
        ip4("10.0.0.2"),
    ));
    c.after(1.0).arp(ArpSpec::reply(
        mac("02:00:00:00:00:67"),
        ip4("10.0.0.5"),
        mac("02:00:00:00:00:01"),
        ip4("10.0.0.2"),
    ));
    c.after(1.0).arp(ArpSpec::reply(
        mac("02:00:00:00:00:66"),
        ip4("10.0.0.5"),
        mac("02:00:00:00:00:01"),
        ip4("10.0.0.2"),
    ));
    let p = c.temp_pcap();
    let run = l2watch(&["analyze", p.to_str().unwrap()]);
    assert_eq!(run.status, 1);
    let out = &run.stdout;
    assert!(out.contains("\n10.0.0.5\n"), "{out}");
    assert!(out.contains("CRITICAL multiple_responders"), "{out}");
    assert!(out.contains("MACs that claimed it:") && out.contains("02:00:00:00:00:67"), "{out}");
    assert!(out.contains("Frames by kind: reply 3"), "{out}");
    assert!(out.contains("exit status 1"), "{out}");
}
