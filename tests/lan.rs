//! Checks the namespace LAN that end-to-end tests run the daemon on: the bridge forwards unicast,
//! broadcast and tagged frames, the management link reaches a host, names never clash between
//! concurrent LANs, and everything is gone after a test panics.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use std::{fs, thread};

use support::lan::{Host, Lan, http_get, wait_for};

/// Serves `argv[2]` as a chunked HTTP/1.1 body on port `argv[1]`, like hyper may.
const CHUNKED_SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = sys.argv[2].encode()
        for part in (body[:3], body[3:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;

/// Generous: a failing wait panics, and `Lan`'s drop then prints every process's output.
const WAIT: Duration = Duration::from_secs(10);

/// What `host` has in its neighbour table for `ip` on `dev`.
fn neigh(host: &Host, dev: &str, ip: &str) -> String {
    host.exec(["ip", "neigh", "show", ip, "dev", dev])
}

fn two_hosts(lan: &mut Lan) -> (Host, Host) {
    (lan.host("a", "02:00:00:00:00:11", "10.77.0.11/24"), lan.host("b", "02:00:00:00:00:12", "10.77.0.12/24"))
}

#[test]
fn bridge_forwards_pings_and_gratuitous_arp() {
    let mut lan = Lan::new();
    let (a, b) = two_hosts(&mut lan);
    a.exec(["ping", "-c1", "-W1", "10.77.0.12"]);
    b.exec(["ping", "-c1", "-W1", "10.77.0.11"]);
    assert!(neigh(&b, "eth0", "10.77.0.11").contains(&a.mac));

    // b wrongly believes .99 and .98 are elsewhere: only a broadcast that crossed the bridge
    // can correct that (the kernel updates, but does not create, entries from gratuitous ARP).
    for ip in ["10.77.0.99", "10.77.0.98"] {
        b.exec(["ip", "neigh", "replace", ip, "lladdr", "02:de:ad:00:00:01", "dev", "eth0", "nud", "stale"]);
    }
    a.add_addr("eth0", "10.77.0.99/24");
    a.gratuitous_arp("eth0", "10.77.0.99", 1);
    a.del_addr("eth0", "10.77.0.99/24");
    // Not configured anywhere: hosts allow announcing foreign addresses.
    a.gratuitous_arp("eth0", "10.77.0.98", 1);
    for ip in ["10.77.0.99", "10.77.0.98"] {
        wait_for(Duration::from_secs(3), &format!("b to learn {ip} is at {}", a.mac), || {
            neigh(&b, "eth0", ip).contains(&a.mac).then_some(())
        });
    }
    assert!(!a.exec(["ip", "-4", "addr", "show", "dev", "eth0"]).contains("10.77.0.99"));
}

#[test]
fn mgmt_link_reaches_http_server_in_host() {
    let mut lan = Lan::new();
    let (a, _) = two_hosts(&mut lan);
    let addr = lan.mgmt(&a);
    let server = lan.spawn(&a, "python3", ["-m", "http.server", "8000", "--bind", "0.0.0.0"]);
    let (status, body) = wait_for(WAIT, &format!("http.server on {addr}"), || {
        http_get(SocketAddr::from((addr, 8000)), "/").ok()
    });
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Directory listing"), "{body}");
    assert_eq!(http_get((addr, 8000).into(), "/no-such-file").unwrap().0, 404);

    lan.spawn(&a, "python3", ["-c", CHUNKED_SERVER, "8001", "hello, chunked world"]);
    let got = wait_for(WAIT, "chunked server", || http_get((addr, 8001).into(), "/metrics").ok());
    assert_eq!(got, (200, "hello, chunked world".to_owned()));

    assert!(server.is_running());
    // python exits on SIGTERM by the signal, not with a status code.
    assert!(server.stop().code().is_none());
    assert!(!server.is_running());
    assert!(server.stderr().contains("GET /no-such-file"), "{}", server.logs());
}

#[test]
fn everything_is_removed_when_a_test_panics() {
    let mut created = None;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut lan = Lan::new();
        let (a, _) = two_hosts(&mut lan);
        let far = lan.mgmt(&a);
        let sleeper = lan.spawn(&a, "sleep", ["1000"]);
        // `ip netns exec` execs the program, so the pid we hold is sleep's.
        let comm = format!("/proc/{}/comm", sleeper.pid());
        wait_for(WAIT, "ip netns exec to exec sleep", || {
            (fs::read_to_string(&comm).ok()? == "sleep\n").then_some(())
        });
        let near = Ipv4Addr::from(u32::from(far) - 1);
        let listing = root(&["-4", "-o", "addr", "show", "to", &near.to_string()]);
        let link = listing.split_whitespace().nth(1).expect("root end of the mgmt link").to_owned();
        created = Some(([a.ns.clone(), lan.switch().ns.clone()], link, sleeper.pid()));
        panic!("deliberate panic with a live LAN");
    }));
    assert!(outcome.is_err());
    let (namespaces, link, pid) = created.expect("the LAN was built");
    let listing = root(&["netns", "list"]);
    for ns in namespaces {
        assert!(
            !listing.lines().any(|l| l.split_whitespace().next() == Some(&ns)),
            "{ns} left in\n{listing}"
        );
    }
    assert!(!Path::new("/sys/class/net").join(&link).exists(), "{link} left in the root namespace");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "sleep {pid} still exists");
}

/// `ip args` in the root namespace (read-only uses).
fn root(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Prints "ready", then for each frame on `argv[1]` from MAC `argv[2]`: its VLAN id (from the
/// packet socket's auxdata, where the kernel puts a tag it strips, or from the frame) and EtherType.
const CAPTURE: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA
print("ready", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(65535, socket.CMSG_SPACE(32))
    vlan = None
    for level, kind, aux in anc:
        status, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", aux[:20])
        if level == 263 and kind == 8 and status & 0x10:  # TP_STATUS_VLAN_VALID
            vlan = tci & 0xfff
    if data[12:14] == b"\x81\x00":
        vlan, data = struct.unpack("!H", data[14:16])[0] & 0xfff, data[:12] + data[16:]
    if data[6:12].hex(":") == sys.argv[2]:
        print("vlan", vlan, "type", data[12:14].hex(), flush=True)
"#;

/// A gratuitous ARP for 10.77.20.11 from 02:00:00:00:20:11, tagged with VLAN 20.
fn tagged_garp() -> Vec<u8> {
    let (mac, ip) = ([2, 0, 0, 0, 0x20, 0x11], [10, 77, 20, 11]);
    let mut f = vec![0xff; 6];
    f.extend(mac);
    f.extend([0x81, 0x00, 0x00, 20, 0x08, 0x06]); // 802.1Q, VLAN 20, then ARP
    f.extend([0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4 request
    f.extend(mac.iter().chain(&ip).chain(&[0; 6]).chain(&ip));
    f.resize(64, 0);
    f
}

#[test]
fn tagged_frames_cross_the_bridge() {
    let mut lan = Lan::new();
    let (a, b) = two_hosts(&mut lan);
    let capture = lan.spawn(&b, "python3", ["-c", CAPTURE, "eth0", "02:00:00:00:20:11"]);
    wait_for(WAIT, "capture to start", || capture.stdout().starts_with("ready").then_some(()));
    a.inject("eth0", [tagged_garp(), tagged_garp()]);
    let seen = wait_for(Duration::from_secs(3), "b to see both frames", || {
        let out = capture.stdout();
        (out.lines().count() == 3).then_some(out)
    });
    assert_eq!(seen, "ready\nvlan 20 type 0806\nvlan 20 type 0806\n");
}

#[test]
fn concurrent_lans_do_not_collide() {
    // Built at the same time with the same host names, MACs and addresses, then used side by side.
    let built: Vec<_> = ["first", "second"]
        .map(|tag| {
            thread::spawn(move || {
                let mut lan = Lan::new();
                let (a, b) = two_hosts(&mut lan);
                let addr = lan.mgmt(&a);
                lan.spawn(&a, "python3", ["-c", CHUNKED_SERVER, "8000", tag]);
                (lan, a, b, addr, tag)
            })
        })
        .into_iter()
        .map(|h| h.join().expect("building a LAN"))
        .collect();
    for (_, a, b, addr, tag) in &built {
        let got = wait_for(WAIT, &format!("{tag} server"), || http_get((*addr, 8000).into(), "/").ok());
        assert_eq!(got, (200, tag.to_string()));
        b.exec(["ping", "-c1", "-W1", "10.77.0.11"]);
        assert!(neigh(b, "eth0", "10.77.0.11").contains(&a.mac));
    }
    let [first, second] = &built[..] else { unreachable!() };
    assert_ne!(first.1.ns, second.1.ns);
    assert_ne!(first.3, second.3);
}
