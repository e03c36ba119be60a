//! Rendering findings for people (text) and programs (JSON, schema `l2watch.findings/v1`, documented
//! in README.md). The daemon's `/findings` endpoint will use the same JSON shapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::capture::replay::link_type_name;
use crate::inventory::Inventory;
use crate::monitor::detect::Detector;
use crate::monitor::finding::{Detail, Finding, Severity};
use crate::monitor::tally::{Analysis, split_interface};
use crate::wire::decode::SkipReason;
use crate::wire::mac::Mac;
use crate::wire::observation::{FrameKind, Timestamp};
use crate::wire::vendor::Vendors;

/// The JSON schema identifier; bumped only on incompatible changes.
pub const SCHEMA: &str = "l2watch.findings/v1";

/// RFC 3339 UTC time with microseconds, e.g. `2010-06-29T07:39:02.912345Z`.
pub fn rfc3339(t: Timestamp) -> String {
    let secs = t.secs();
    let micros = (t.0 % 1_000_000_000) / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// One finding in JSON.
#[derive(Debug, Serialize)]
pub struct FindingJson {
    /// Finding kind (`foreign_mac`, ...).
    pub kind: &'static str,
    /// `info`, `warning` or `critical`.
    pub severity: &'static str,
    /// Still active (evidence within the hold time) at the end of the input.
    pub active: bool,
    /// The IP concerned; null for a finding about a Service that has no IP.
    pub ip: Option<String>,
    /// The MAC concerned (empty for `unanswered` and findings about Services).
    pub mac: String,
    /// The MAC's vendor from the IEEE registries, when known (absent without a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The other MAC involved, if any.
    pub other_mac: Option<String>,
    /// Role of the IP (`service`, `node`, `host`, `registry`, `pool`) or null when not watched.
    pub role: Option<&'static str>,
    /// Service namespace, or null.
    pub namespace: Option<String>,
    /// Service name, or null.
    pub service: Option<String>,
    /// Node or host concerned, or null.
    pub node: Option<String>,
    /// Pool, or null.
    pub pool: Option<String>,
    /// `mac_changed`: explained by an announcer change.
    pub expected: bool,
    /// `mac_changed`: the new MAC had claimed the IP before.
    pub flip_flop: bool,
    /// VLAN IDs of the first evidence, outermost first.
    pub vlans: Vec<u16>,
    /// Capture file of the first evidence (analyze) or interface name (daemon).
    pub source: String,
    /// First evidence (RFC 3339).
    pub first_seen: String,
    /// Latest evidence (RFC 3339).
    pub last_seen: String,
    /// Frame number of the first evidence.
    pub first_frame: u64,
    /// Frame number of the latest evidence.
    pub last_frame: u64,
    /// Pieces of evidence.
    pub count: u64,
    /// `ip_drift`: the IP the Service should have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_ip: Option<String>,
    /// `ip_drift`: the IP it has (null while pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_ip: Option<Option<String>>,
    /// `ip_drift`: `requested` or `registry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_source: Option<&'static str>,
    /// `ignored_annotation`: the key MetalLB ignores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `ignored_annotation`: the key MetalLB reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_key: Option<String>,
    /// What happened, for people.
    pub description: String,
    /// What to do about a finding of this kind.
    pub advice: &'static str,
}

impl FindingJson {
    /// From a finding; `source` names where its first evidence came from.
    pub fn new(f: &Finding, active: bool, source: String, vendors: &Vendors) -> FindingJson {
        let (mut expected_ip, mut actual_ip, mut drift_source, mut key, mut expected_key) =
            (None, None, None, None, None);
        match f.detail.as_deref() {
            Some(Detail::Drift { source, expected, actual, .. }) => {
                expected_ip = Some(expected.to_string());
                actual_ip = Some(actual.map(|a| a.to_string()));
                drift_source = Some(source.as_str());
            }
            Some(Detail::Ignored { key: k, expected_key: e }) => {
                key = Some(k.to_string());
                expected_key = Some(e.to_string());
            }
            _ => {}
        }
        FindingJson {
            kind: f.kind.as_str(),
            severity: f.severity().as_str(),
            active,
            ip: (!f.ip.is_unspecified()).then(|| f.ip.to_string()),
            mac: f.shown_mac().map(|m| m.to_string()).unwrap_or_default(),
            vendor: f.shown_mac().and_then(|m| vendors.lookup(m)).map(str::to_owned),
            other_mac: f.other_mac.map(|m| m.to_string()),
            role: f.role.map(|r| r.as_str()),
            namespace: f.service.as_ref().map(|s| s.namespace.clone()),
            service: f.service.as_ref().map(|s| s.name.clone()),
            node: f.node.as_deref().map(str::to_owned),
            pool: f.pool.as_deref().map(str::to_owned),
            expected: f.expected,
            flip_flop: f.flip_flop,
            vlans: f.vlans.as_slice().to_vec(),
            source,
            first_seen: rfc3339(f.first_seen),
            last_seen: rfc3339(f.last_seen),
            first_frame: f.first_frame,
            last_frame: f.last_frame,
            count: f.count,
            expected_ip,
            actual_ip,
            drift_source,
            key,
            expected_key,
            description: f.describe(),
            advice: f.kind.advice(),
        }
    }
}

/// A MAC's history for one IP in JSON.
#[derive(Debug, Serialize)]
pub struct MacJson {
    /// The MAC.
    pub mac: String,
    /// Its vendor, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The node or host it belongs to, or null.
    pub owner: Option<String>,
    /// First claim.
    pub first_seen: String,
    /// Latest claim.
    pub last_seen: String,
    /// Frame of the first claim.
    pub first_frame: u64,
    /// Frame of the latest claim.
    pub last_frame: u64,
    /// Claims seen.
    pub count: u64,
}

/// An IP with findings, and the MACs that claimed it.
#[derive(Debug, Serialize)]
pub struct IpJson {
    /// The IP.
    pub ip: String,
    /// Highest severity among its findings.
    pub severity: &'static str,
    /// MACs that claimed it (empty when it is not tracked).
    pub macs: Vec<MacJson>,
}

/// A file in JSON.
#[derive(Debug, Serialize)]
pub struct FileJson {
    /// Path as given.
    pub path: String,
    /// `pcap`, `pcapng` or null.
    pub format: Option<&'static str>,
    /// Link type numbers of its interfaces.
    pub link_types: Vec<u32>,
    /// Frames read.
    pub frames: u64,
    /// Error, or null.
    pub error: Option<String>,
}

/// Frame counts in JSON.
#[derive(Debug, Serialize)]
pub struct FramesJson {
    /// Frames read.
    pub total: u64,
    /// ARP and ND frames decoded, by kind (every kind present, zero or not).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Neither ARP nor ND.
    pub ignored: u64,
    /// ARP/ND frames skipped, by reason (every reason present).
    pub malformed: BTreeMap<&'static str, u64>,
    /// Frames of link types l2watch does not decode.
    pub unsupported_link_type: u64,
    /// ARP/ND frames per VLAN tag stack, outermost first; untagged frames are not listed.
    pub vlans: Vec<VlanJson>,
    /// Tagged ARP/ND frames whose stack was not listed (more distinct stacks than the report keeps).
    pub vlans_other: u64,
}

/// Frames seen with one VLAN tag stack.
#[derive(Debug, Serialize)]
pub struct VlanJson {
    /// VLAN IDs, outermost first.
    pub ids: Vec<u16>,
    /// ARP/ND frames with exactly this stack.
    pub frames: u64,
}

/// Summary in JSON.
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    /// Highest severity found, or null.
    pub highest_severity: Option<&'static str>,
    /// Findings per severity.
    pub by_severity: BTreeMap<&'static str, u64>,
    /// Findings not listed because of the report cap.
    pub findings_omitted: u64,
    /// IPs with per-IP history at the end.
    pub tracked_ips: usize,
    /// Per-IP states, MACs and findings evicted by the state caps.
    pub evicted: u64,
    /// Exit status of `analyze`.
    pub exit_status: i32,
}

/// The whole `analyze` report.
#[derive(Debug, Serialize)]
pub struct ReportJson {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Input files.
    pub files: Vec<FileJson>,
    /// Frame counts.
    pub frames: FramesJson,
    /// Findings, most severe first, then by IP and first evidence.
    pub findings: Vec<FindingJson>,
    /// IPs with findings and their MAC history.
    pub ips: Vec<IpJson>,
    /// Summary.
    pub summary: SummaryJson,
    /// The daemon's inventory: where it comes from, whether it is in sync, what did not fit together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryJson>,
}

/// The inventory behind a live `/findings`.
#[derive(Debug, Serialize)]
pub struct InventoryJson {
    /// `kubernetes`, `static` or `none`.
    pub source: &'static str,
    /// Whether the source is in sync now (false while the API is unreachable: the last inventory is
    /// used).
    pub synced: bool,
    /// Nodes, hosts, Services, pools and registry entries known.
    pub nodes: usize,
    /// Known hosts outside the cluster.
    pub hosts: usize,
    /// LoadBalancer Services.
    pub services: usize,
    /// Address pools.
    pub pools: usize,
    /// What did not fit together (a node without MACs, a MAC given to two machines...).
    pub warnings: Vec<String>,
}

impl InventoryJson {
    /// What `inv` from `source` says about itself.
    pub fn new(inv: &Inventory, source: &'static str, synced: bool) -> InventoryJson {
        InventoryJson {
            source,
            synced,
            nodes: inv.nodes.len(),
            hosts: inv.hosts.len(),
            services: inv.services.len(),
            pools: inv.pools.len(),
            warnings: inv.warnings.clone(),
        }
    }
}

/// Exit status: 2 on an error, else 1 when a finding of warning or above exists, else 0.
pub fn exit_status(a: &Analysis) -> i32 {
    if a.had_errors() {
        2
    } else if a.findings.iter().any(|(f, _)| f.severity() >= Severity::Warning) {
        1
    } else {
        0
    }
}

fn sorted(a: &Analysis) -> Vec<&(Finding, bool)> {
    let mut v: Vec<&(Finding, bool)> = a.findings.iter().collect();
    v.sort_by(|(x, _), (y, _)| {
        y.severity()
            .cmp(&x.severity())
            .then(x.ip.cmp(&y.ip))
            .then(x.first_seen.cmp(&y.first_seen))
            .then(x.kind.cmp(&y.kind))
    });
    v
}

fn source_of(a: &Analysis, interface: u16) -> String {
    let (file, iface) = split_interface(interface);
    match a.files.get(file) {
        Some(f) if f.link_types.len() > 1 => format!("{}#{iface}", f.path.display()),
        Some(f) => f.path.display().to_string(),
        None => String::new(),
    }
}

/// Every MAC whose vendor a report of `a` may name (those of the findings and of their addresses'
/// histories), so that [`Vendors::load_for`] can read only those from the registries.
pub fn named_macs<'a>(a: &'a Analysis, detector: &'a Detector) -> impl Iterator<Item = Mac> + 'a {
    a.findings.iter().flat_map(|(f, _)| {
        let history = detector.history(f.ip).unwrap_or(&[]).iter().map(|s| s.mac);
        f.shown_mac().into_iter().chain(history)
    })
}

/// Builds the JSON report.
pub fn to_json(a: &Analysis, detector: &Detector, inv: &Inventory, vendors: &Vendors) -> ReportJson {
    let findings = sorted(a);
    let mut by_severity: BTreeMap<&'static str, u64> =
        [Severity::Info, Severity::Warning, Severity::Critical].iter().map(|s| (s.as_str(), 0)).collect();
    for (f, _) in &findings {
        *by_severity.entry(f.severity().as_str()).or_default() += 1;
    }
    let highest = findings.first().map(|(f, _)| f.severity().as_str());
    let mut ips: Vec<IpJson> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for (f, _) in &findings {
        if f.kind.from_inventory() || !listed.insert(f.ip) {
            continue;
        }
        let ip = f.ip.to_string();
        let macs = detector
            .history(f.ip)
            .unwrap_or(&[])
            .iter()
            .map(|s| MacJson {
                mac: s.mac.to_string(),
                vendor: vendors.lookup(s.mac).map(str::to_owned),
                owner: inv.owner(s.mac).map(|o| inv.owner_name(o).to_string()),
                first_seen: rfc3339(s.first_seen),
                last_seen: rfc3339(s.last_seen),
                first_frame: s.first_frame,
                last_frame: s.last_frame,
                count: s.count,
            })
            .collect();
        ips.push(IpJson { ip, severity: f.severity().as_str(), macs });
    }
    let stats = detector.stats();
    ReportJson {
        schema: SCHEMA,
        files: a
            .files
            .iter()
            .map(|f| FileJson {
                path: f.path.display().to_string(),
                format: f.format,
                link_types: f.link_types.clone(),
                frames: f.frames,
                error: file_error(f),
            })
            .collect(),
        frames: FramesJson {
            total: a.frames.total,
            by_kind: FrameKind::ALL.iter().map(|k| (k.as_str(), stats.frames[k.index()])).collect(),
            ignored: a.frames.ignored,
            malformed: SkipReason::ALL.iter().map(|r| (r.as_str(), a.frames.skipped[r.index()])).collect(),
            unsupported_link_type: a.frames.unsupported_link_type,
            vlans: {
                let mut v: Vec<VlanJson> = a
                    .frames
                    .vlans
                    .iter()
                    .map(|(k, n)| VlanJson { ids: k.as_slice().to_vec(), frames: *n })
                    .collect();
                v.sort_by(|x, y| x.ids.cmp(&y.ids));
                v
            },
            vlans_other: a.frames.vlans_other,
        },
        findings: findings
            .iter()
            .map(|(f, active)| FindingJson::new(f, *active, source_of(a, f.interface), vendors))
            .collect(),
        ips,
        summary: SummaryJson {
            highest_severity: highest,
            by_severity,
            findings_omitted: a.findings_omitted,
            tracked_ips: detector.tracked_ips(),
            evicted: stats.evicted(),
            exit_status: exit_status(a),
        },
        inventory: None,
    }
}

fn file_error(f: &crate::monitor::tally::FileOutcome) -> Option<String> {
    let mut parts: Vec<String> = f.error.iter().cloned().collect();
    for (lt, n) in &f.unsupported {
        parts.push(format!(
            "{}: link type {lt} ({}) is not supported (l2watch decodes Ethernet, Linux cooked v1 and v2, IP over InfiniBand): {n} frames skipped",
            f.path.display(),
            link_type_name(*lt)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Renders the report for people.
pub fn to_text(a: &Analysis, detector: &Detector, inv: &Inventory, vendors: &Vendors) -> String {
    let j = to_json(a, detector, inv, vendors);
    let mut out = String::new();
    let decoded: u64 = j.frames.by_kind.values().sum();
    let malformed: u64 = j.frames.malformed.values().sum();
    let _ = writeln!(
        out,
        "l2watch analyze: {} file(s), {} frames: {decoded} ARP/ND, {} other, {malformed} malformed or unsupported ARP/ND{}",
        j.files.len(),
        j.frames.total,
        j.frames.ignored,
        if j.frames.unsupported_link_type > 0 {
            format!(", {} of an unsupported link type", j.frames.unsupported_link_type)
        } else {
            String::new()
        }
    );
    for f in &j.files {
        if let Some(e) = &f.error {
            let _ = writeln!(out, "error: {e}");
        }
    }
    let _ = writeln!(out);
    if j.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
    }
    for ip in &j.ips {
        let mine: Vec<&FindingJson> =
            j.findings.iter().filter(|f| f.ip.as_deref() == Some(ip.ip.as_str())).collect();
        let first = mine[0];
        let mut what = String::new();
        if let Some(role) = first.role {
            what.push_str(role);
        }
        if let (Some(ns), Some(s)) = (&first.namespace, &first.service) {
            let _ = write!(what, " {ns}/{s}");
        }
        if let Some(p) = &first.pool {
            let _ = write!(what, ", pool {p}");
        }
        let _ = writeln!(
            out,
            "{}{}",
            ip.ip,
            if what.is_empty() { String::new() } else { format!("  ({})", what.trim()) }
        );
        for f in &mine {
            let _ = writeln!(out, "  {:<8} {:<20} {}", f.severity.to_uppercase(), f.kind, f.description);
            if f.severity != "info" && f.active {
                let _ = writeln!(out, "           {:<20} what to do: {}", "", f.advice);
            }
            let _ = writeln!(
                out,
                "           {:<20} {} time(s), frames {}..{}, {} .. {}{}{}",
                "",
                f.count,
                f.first_frame,
                f.last_frame,
                f.first_seen,
                f.last_seen,
                if f.vlans.is_empty() { String::new() } else { format!(", vlan {:?}", f.vlans) },
                if f.active { "" } else { " (cleared)" }
            );
        }
        if !ip.macs.is_empty() {
            let _ = writeln!(out, "  MACs that claimed it:");
            for m in &ip.macs {
                let _ = writeln!(
                    out,
                    "    {}  {:>6} claim(s)  frames {}..{}  {} .. {}{}",
                    m.mac,
                    m.count,
                    m.first_frame,
                    m.last_frame,
                    m.first_seen,
                    m.last_seen,
                    match (&m.owner, &m.vendor) {
                        (Some(o), _) => format!("  ({o})"),
                        (None, Some(v)) => format!("  [{v}]"),
                        (None, None) => String::new(),
                    }
                );
            }
        }
        let _ = writeln!(out);
    }
    if j.summary.findings_omitted > 0 {
        let _ = writeln!(out, "{} more findings not listed (report cap).", j.summary.findings_omitted);
    }
    let kinds: Vec<String> =
        j.frames.by_kind.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "Frames by kind: {}",
        if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") }
    );
    if !j.frames.vlans.is_empty() {
        let v: Vec<String> = j
            .frames
            .vlans
            .iter()
            .map(|v| {
                let ids: Vec<String> = v.ids.iter().map(u16::to_string).collect();
                format!("{} {}", ids.join("."), v.frames)
            })
            .collect();
        let _ = writeln!(out, "Frames by VLAN (outer.inner): {}", v.join(", "));
    }
    let bad: Vec<String> =
        j.frames.malformed.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if !bad.is_empty() {
        let _ = writeln!(out, "Malformed or unsupported ARP/ND: {}", bad.join(", "));
    }
    if j.summary.evicted > 0 {
        let _ = writeln!(
            out,
            "State caps reached: {} entries evicted (see detect.max_* in the config).",
            j.summary.evicted
        );
    }
    let _ = writeln!(
        out,
        "Result: {} critical, {} warning, {} info; exit status {}",
        j.summary.by_severity["critical"],
        j.summary.by_severity["warning"],
        j.summary.by_severity["info"],
        j.summary.exit_status
    );
    out
}
