//! Throwaway LANs built from network namespaces, for end-to-end tests of the daemon.
//!
//! ```ignore
//! let mut lan = Lan::new();
//! let a = lan.host("a", "02:00:00:00:00:11", "10.77.0.11/24");
//! let b = lan.host("b", "02:00:00:00:00:12", "10.77.0.12/24");
//! let scrape = lan.mgmt(&b);
//! let daemon = lan.spawn(&b, env!("CARGO_BIN_EXE_l2watch"), ["--interface", "eth0"]);
//! a.gratuitous_arp("eth0", "10.77.0.12", 1);
//! let (status, body) = http_get((scrape, 9100).into(), "/metrics").unwrap();
//! ```
//!
//! Layout: namespace `<prefix>-lan` holds the switch, bridge `br0`; each host is namespace
//! `<prefix>-<name>` whose `eth0` is a veth with its peer in a port of `br0`. `<prefix>` is
//! `l2w<pid>x<n>`, unique per [`Lan`] among every test binary running on the machine. The root
//! namespace only ever gets the management veths `l2w<pid>m<n>` and their /30s in 10.250.0.0/16.
//!
//! Needs root, iproute2 and `sh`; [`Host::gratuitous_arp`] needs iputils-arping, [`Host::inject`]
//! python3.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use std::{env, thread};

/// Runs `ip` with formatted, whitespace-separated arguments (names and addresses hold no spaces).
macro_rules! try_ip {
    ($($fmt:tt)*) => { try_run(Command::new("ip").args(format!($($fmt)*).split_whitespace())) };
}

/// Like `try_ip!`, but panics with all that `ip` printed unless it succeeds. Returns stdout.
macro_rules! ip {
    ($($fmt:tt)*) => { try_ip!($($fmt)*).unwrap_or_else(|e| panic!("{e}")) };
}

/// Starts every name we create, so a sweep can recognise leftovers (and their owner's pid).
const TAG: &str = "l2w";
/// Management links get a /30 in here; the root namespace routes nothing else of it.
const MGMT_NET: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 0);

static NEXT_LAN: AtomicU32 = AtomicU32::new(0);
static NEXT_MGMT: AtomicU32 = AtomicU32::new(0);

/// Written in a new host namespace before `eth0` exists, so they apply to it: no DAD wait and no
/// router solicitations (IPv6 addresses usable at once, less noise), and `ip_nonlocal_bind` so
/// arping may announce addresses the host does not hold, as a MetalLB speaker does.
const HOST_SYSCTLS: &[(&str, &str)] = &[
    ("ipv6/conf/all/accept_dad", "0"),
    ("ipv6/conf/default/accept_dad", "0"),
    ("ipv6/conf/all/router_solicitations", "0"),
    ("ipv6/conf/default/router_solicitations", "0"),
    ("ipv4/ip_nonlocal_bind", "1"),
];
/// The switch takes no part in IPv6 (bridging still forwards it), so the LAN carries only what
/// the hosts send.
const SWITCH_SYSCTLS: &[(&str, &str)] =
    &[("ipv6/conf/all/disable_ipv6", "1"), ("ipv6/conf/default/disable_ipv6", "1")];

/// A bridge in its own namespace plus the hosts plugged into it. Dropping it (also while a test
/// panics) stops every process started through it, deletes its namespaces and management veths,
/// and, when panicking, prints those processes' output.
pub struct Lan {
    prefix: String,
    switch: Host,
    /// Every namespace created, the switch first.
    namespaces: Vec<String>,
    /// Root ends of the management veths.
    mgmt_links: Vec<String>,
    procs: Vec<Proc>,
    log_dir: PathBuf,
}

/// A namespace on the LAN. Cheap to clone; the [`Lan`] owns the namespace.
#[derive(Clone, Debug)]
pub struct Host {
    /// Namespace name, for `ip netns exec`.
    pub ns: String,
    /// The name given to [`Lan::host`] (`lan` for the switch).
    pub name: String,
    /// MAC address of `eth0` (empty for the switch).
    pub mac: String,
    /// IPv4 address of `eth0` (unspecified for the switch).
    pub ip: Ipv4Addr,
    /// This host's port in the switch namespace (`br0` for the switch itself).
    pub port: String,
}

/// A process started by [`Lan::spawn`], its output going to files. Clones share the process.
#[derive(Clone)]
pub struct Proc {
    pid: u32,
    label: String,
    child: Arc<Mutex<Child>>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Lan {
    /// Creates the switch: namespace `<prefix>-lan` with bridge `br0` up. The first call in a
    /// process first removes what killed test runs left behind.
    pub fn new() -> Lan {
        require_root();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_leftovers);
        let prefix = format!("{TAG}{}x{}", process::id(), NEXT_LAN.fetch_add(1, Ordering::Relaxed));
        let log_dir = env::temp_dir().join(&prefix);
        fs::create_dir_all(&log_dir).unwrap_or_else(|e| panic!("creating {}: {e}", log_dir.display()));
        let switch = Host {
            ns: format!("{prefix}-lan"),
            name: "lan".into(),
            mac: String::new(),
            ip: Ipv4Addr::UNSPECIFIED,
            port: "br0".into(),
        };
        // Built before anything exists, so a failing step below is cleaned up by Drop.
        let mut lan = Lan { prefix, switch, namespaces: vec![], mgmt_links: vec![], procs: vec![], log_dir };
        let ns = lan.switch.ns.clone();
        lan.add_netns(&ns, SWITCH_SYSCTLS);
        // Without snooping the bridge floods all multicast (IPv6 ND included) like a plain switch.
        ip!("-n {ns} link add br0 type bridge mcast_snooping 0");
        ip!("-n {ns} link set br0 up");
        lan
    }

    /// The switch namespace, e.g. to capture on a host's port or to spawn a process there.
    pub fn switch(&self) -> &Host {
        &self.switch
    }

    /// Plugs in a machine: namespace `<prefix>-<name>` with `lo` up and `eth0` up, with `mac` and
    /// `cidr` (like "10.77.0.11/24"). IPv6 stays on, without DAD delay.
    pub fn host(&mut self, name: &str, mac: &str, cidr: &str) -> Host {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
        assert!(valid && name != "lan", "host name {name:?}: want 1-32 of [A-Za-z0-9_-], not \"lan\"");
        let addr: Ipv4Addr = cidr
            .split_once('/')
            .and_then(|(addr, _)| addr.parse().ok())
            .unwrap_or_else(|| panic!("{cidr:?} is not an IPv4 address/prefix"));
        let ns = format!("{}-{name}", self.prefix);
        let port = format!("p{}", self.namespaces.len());
        self.add_netns(&ns, HOST_SYSCTLS);
        ip!("-n {ns} link set lo up");
        // Created inside the host with the peer sent straight to the switch: neither end ever
        // exists in the root namespace, where names could clash.
        let switch = &self.switch.ns;
        ip!("-n {ns} link add eth0 address {mac} type veth peer name {port} netns {switch}");
        ip!("-n {ns} addr add {cidr} dev eth0");
        ip!("-n {ns} link set eth0 up");
        ip!("-n {switch} link set {port} master br0 up");
        // The kernel reports carrier to the bridge asynchronously (link watch, up to a second
        // late under load): until then the port drops frames and a first ping can fail.
        wait_for(Duration::from_secs(5), &format!("{ns}: eth0 up, switch port {port} forwarding"), || {
            let eth0 = ip!("-n {ns} -o link show dev eth0").contains(" state UP ");
            (eth0 && ip!("-n {switch} -d -o link show dev {port}").contains(" state forwarding "))
                .then_some(())
        });
        Host { ns, name: name.into(), mac: mac.into(), ip: addr, port }
    }

    /// Links the root namespace to `host` (one per host; its end is `mgmt0`) so the test can
    /// scrape HTTP; returns the host end's address. IPv6 is off on both ends.
    pub fn mgmt(&mut self, host: &Host) -> Ipv4Addr {
        let n = NEXT_MGMT.fetch_add(1, Ordering::Relaxed) % 10_000; // pid + n fit in 15 bytes
        let root = format!("{TAG}{}m{n}", process::id());
        ip!("link add {root} type veth peer name mgmt0 netns {}", host.ns);
        self.mgmt_links.push(root.clone());
        // Only our own interface's setting, and the file exists unless IPv6 is off altogether.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{root}/disable_ipv6"), "1");
        write_sysctls(&host.ns, &[("ipv6/conf/mgmt0/disable_ipv6", "1")]);
        // Interface indexes are unique within the root namespace at any moment, so a /30 derived
        // from ours cannot be in use by a concurrent Lan, in this process or another.
        let listing = ip!("-o link show dev {root}");
        let index: u32 = listing.split(':').next().and_then(|s| s.trim().parse().ok()).expect("ifindex");
        let base = u32::from(MGMT_NET) + (index % (1 << 14)) * 4;
        let (near, far, net) =
            (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2), format!("{}/30", Ipv4Addr::from(base)));
        // Never shadow a network the machine really uses.
        for how in ["match", "root"] {
            let routes = ip!("-4 -o route show table all {how} {net}");
            let clash: Vec<&str> = routes.lines().filter(|l| !l.starts_with("default")).collect();
            assert!(clash.is_empty(), "root namespace already routes into {net}:\n{}", clash.join("\n"));
        }
        ip!("addr add {near}/30 dev {root}");
        ip!("link set {root} up");
        ip!("-n {} addr add {far}/30 dev mgmt0", host.ns);
        ip!("-n {} link set mgmt0 up", host.ns);
        far
    }

    /// Starts `program` inside `host` (`ip netns exec`, which execs it, so [`Proc::pid`] is the
    /// program's), stdin empty, stdout and stderr to files.
    pub fn spawn<S: AsRef<OsStr>>(
        &mut self,
        host: &Host,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Proc {
        let n = self.procs.len();
        let label = format!("{}#{n} {}", host.name, program.as_ref().to_string_lossy());
        let (stdout, stderr) = (self.log_dir.join(format!("{n}.out")), self.log_dir.join(format!("{n}.err")));
        let create = |p: &Path| File::create(p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {label}: {e}"));
        let pid = child.id();
        let proc = Proc { pid, label, child: Arc::new(Mutex::new(child)), stdout, stderr };
        self.procs.push(proc.clone());
        proc
    }

    fn add_netns(&mut self, ns: &str, sysctls: &[(&str, &str)]) {
        ip!("netns add {ns}");
        self.namespaces.push(ns.to_owned());
        write_sysctls(ns, sysctls);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let panicking = thread::panicking();
        for p in &self.procs {
            if let Err(e) = p.terminate(Duration::from_secs(2)) {
                eprintln!("lan: stopping {}: {e}", p.label);
            }
            if panicking {
                eprintln!("{}", p.logs());
            }
        }
        // Anything else still in there (a daemon's children, something a test backgrounded)
        // would keep a namespace alive after its name is gone.
        for ns in &self.namespaces {
            kill_all_in(ns);
        }
        // Deleting the root end removes the pair at once; left to `ip netns del` it would linger
        // until the kernel finishes tearing the namespace down.
        for link in &self.mgmt_links {
            warn(try_ip!("link del {link}"));
        }
        for ns in self.namespaces.iter().rev() {
            warn(try_ip!("netns del {ns}"));
        }
        if let Err(e) = fs::remove_dir_all(&self.log_dir) {
            eprintln!("lan: removing {}: {e}", self.log_dir.display());
        }
    }
}

impl Host {
    /// Runs `args` inside the namespace; panics with its output unless it succeeds. Returns stdout.
    pub fn exec<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        run(Command::new("ip").args(["netns", "exec", &self.ns]).args(args))
    }

    /// Runs `args` inside the namespace, whatever the outcome; panics only if `ip` cannot start.
    pub fn try_exec<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).args(args);
        cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }

    /// Adds an address (like "10.77.0.99/24" or "fd00::1/64") to `dev`.
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        ip!("-n {} addr add {cidr} dev {dev}", self.ns);
    }

    /// Removes an address from `dev`.
    pub fn del_addr(&self, dev: &str, cidr: &str) {
        ip!("-n {} addr del {cidr} dev {dev}", self.ns);
    }

    /// Creates 802.1Q interface `<parent>.<id>` with `mac` and `cidr`, up; returns its name.
    /// Needs 802.1Q in the kernel (`CONFIG_VLAN_8021Q`); [`Host::inject`] does not.
    pub fn vlan(&self, parent: &str, id: u16, mac: &str, cidr: &str) -> String {
        let (ns, name) = (&self.ns, format!("{parent}.{id}"));
        try_ip!("-n {ns} link add link {parent} name {name} address {mac} type vlan id {id}").unwrap_or_else(
            |e| panic!("{e}(\"Unknown device type\": kernel without 802.1Q, try modprobe 8021q)"),
        );
        ip!("-n {ns} addr add {cidr} dev {name}");
        ip!("-n {ns} link set {name} up");
        name
    }

    /// Sends `count` unsolicited ARP requests announcing `ip` (sender and target) from `dev`, with
    /// iputils `arping -U`. `ip` need not be configured: hosts allow non-local binds. Blocks about
    /// `count` seconds (one per second, and arping exits on the tick after the last).
    pub fn gratuitous_arp(&self, dev: &str, ip: &str, count: u32) {
        static FLAVOUR: OnceLock<Result<String, String>> = OnceLock::new();
        let flavour = FLAVOUR.get_or_init(|| {
            let out = Command::new("arping").arg("-V").output().map_err(|e| e.to_string())?;
            Ok(lossy(out.stdout) + &lossy(out.stderr))
        });
        // Other arpings (Habets') read the same flags differently.
        match flavour {
            Ok(v) if v.contains("iputils") => {}
            Ok(v) => panic!("arping is not iputils' (`arping -V`: {v:?}); install iputils-arping"),
            Err(e) => panic!("cannot run arping ({e}); install iputils-arping"),
        }
        self.exec(["arping", "-q", "-U", "-c", &count.to_string(), "-I", dev, ip]);
    }

    /// Sends raw Ethernet frames (header included, no FCS) out of `dev` through a packet socket,
    /// with python3: any frame at once, 802.1Q tags included even where the kernel lacks 802.1Q.
    pub fn inject(&self, dev: &str, frames: impl IntoIterator<Item = impl AsRef<[u8]>>) {
        const SEND: &str = "import socket, sys\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
            s.bind((sys.argv[1], 0))\nfor f in sys.argv[2:]: s.send(bytes.fromhex(f))";
        let hex = frames.into_iter().map(|f| f.as_ref().iter().map(|b| format!("{b:02x}")).collect());
        self.exec(["python3", "-c", SEND, dev].map(String::from).into_iter().chain(hex));
    }
}

impl Proc {
    /// The program's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it has not exited yet.
    pub fn is_running(&self) -> bool {
        matches!(lock(&self.child).try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it is still running after 5 s; returns how it ended (also if it
    /// had ended before).
    pub fn stop(&self) -> ExitStatus {
        self.terminate(Duration::from_secs(5)).unwrap_or_else(|e| panic!("stopping {}: {e}", self.label))
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = lock(&self.child);
        poll_for(timeout, || child.try_wait().unwrap_or_else(|e| panic!("waiting for {}: {e}", self.label)))
    }

    /// Its stdout so far.
    pub fn stdout(&self) -> String {
        fs::read(&self.stdout).map(lossy).unwrap_or_default()
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        fs::read(&self.stderr).map(lossy).unwrap_or_default()
    }

    /// Stdout and stderr so far, under headers naming the process, for failure messages.
    pub fn logs(&self) -> String {
        let (label, pid, out, err) = (&self.label, self.pid, self.stdout(), self.stderr());
        format!("---- {label} (pid {pid}) stdout:\n{out}---- stderr:\n{err}")
    }

    fn terminate(&self, grace: Duration) -> io::Result<ExitStatus> {
        let mut child = lock(&self.child);
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        // Not reaped yet, so the pid cannot belong to anyone else: safe to signal by number.
        signal(self.pid, "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()
    }
}

/// GET `path` over HTTP/1.1 (connect timeout 1 s, 3 s per read); returns the status code and
/// body. Understands Content-Length, chunked and read-to-close bodies.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?;
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| bad(format!("bad header {line:?}")))?;
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>().map_err(|e| bad(format!("{line:?}: {e}")))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let line = read_line(&mut reader)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|e| bad(format!("chunk size {line:?}: {e}")))?;
            if size == 0 {
                break; // trailers, if any, do not matter: we asked the server to close
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            read_line(&mut reader)?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    let body = String::from_utf8(body).map_err(|e| bad(format!("body is not UTF-8: {e}")))?;
    Ok((status, body))
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Calls `f` every 100 ms until it returns `Some`, or until `timeout` has passed; then panics
/// "timed out after ... waiting for `what`". Build `what` with the context a reader will need.
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_for(timeout, f).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Like [`wait_for`] but returns `None` on timeout.
pub fn poll_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Panics unless we are root and can create, enter and delete a network namespace: these tests
/// must fail, never quietly pass, where they cannot run.
pub fn require_root() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let check = CHECK.get_or_init(|| {
        let status =
            fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
        let euid =
            status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
        if euid != Some("0") {
            return Err(format!("effective uid is {euid:?}, not 0"));
        }
        // Also makes iproute2 set up /run/netns once, before tests add namespaces in parallel.
        let ns = format!("{TAG}{}xcheck", process::id());
        let result = try_ip!("netns add {ns}").and_then(|_| try_ip!("netns exec {ns} true"));
        let _ = try_ip!("netns del {ns}");
        result.map(drop)
    });
    if let Err(e) = check {
        panic!("network namespace tests need root and a working `ip netns` (iproute2): {e}");
    }
}

/// Removes namespaces and root veths (and log directories) named by our scheme whose owning
/// process is gone: what a test binary killed with SIGKILL leaves behind. Names with our own pid
/// are stale too, as this runs before this process creates any.
fn sweep_leftovers() {
    let me = process::id();
    let stale = |name: &str, sep: char| {
        let rest = name.strip_prefix(TAG).unwrap_or_default();
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        let pid = rest[..digits].parse::<u32>().ok().filter(|_| rest[digits..].starts_with(sep));
        pid.is_some_and(|pid| pid == me || !Path::new(&format!("/proc/{pid}")).exists())
    };
    let listing = try_ip!("netns list").unwrap_or_default();
    for ns in listing.lines().filter_map(|l| l.split_whitespace().next()).filter(|ns| stale(ns, 'x')) {
        kill_all_in(ns);
        let _ = try_ip!("netns del {ns}");
    }
    let names = |dir: PathBuf| -> Vec<String> {
        let entries = fs::read_dir(dir).into_iter().flatten().flatten();
        entries.filter_map(|e| e.file_name().into_string().ok()).collect()
    };
    for link in names("/sys/class/net".into()).into_iter().filter(|l| stale(l, 'm')) {
        let _ = try_ip!("link del {link}");
    }
    for dir in names(env::temp_dir()).into_iter().filter(|d| stale(d, 'x')) {
        let _ = fs::remove_dir_all(env::temp_dir().join(dir));
    }
}

/// SIGKILLs every process in namespace `ns`.
fn kill_all_in(ns: &str) {
    let pids = try_ip!("netns pids {ns}");
    pids.iter()
        .flat_map(|p| p.split_whitespace())
        .filter_map(|p| p.parse().ok())
        .for_each(|p| signal(p, "KILL"));
    warn(pids);
}

/// Sends a signal with the shell's `kill`, present even where procps is not.
fn signal(pid: u32, sig: &str) {
    warn(try_run(Command::new("sh").args(["-c", "kill -s \"$0\" \"$1\"", sig, &pid.to_string()])));
}

/// Writes `/proc/sys/net/<key>` inside namespace `ns`, as that file shows the writer's namespace.
fn write_sysctls(ns: &str, sysctls: &[(&str, &str)]) {
    let script: String =
        sysctls.iter().map(|(key, value)| format!("echo {value} > /proc/sys/net/{key} && ")).collect();
    run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", &(script + "true")]));
}

/// Runs `cmd`; panics with everything it printed unless it succeeds. Returns stdout.
fn run(cmd: &mut Command) -> String {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// For cleanup, which must not panic: failures go to stderr.
fn warn(result: Result<String, String>) {
    if let Err(e) = result {
        eprintln!("lan: {e}");
    }
}

fn try_run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let (status, stdout, stderr) = (out.status, lossy(out.stdout), lossy(out.stderr));
    if !status.success() {
        return Err(format!("{cmd:?}: {status}\nstdout:\n{stdout}stderr:\n{stderr}"));
    }
    Ok(stdout)
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
