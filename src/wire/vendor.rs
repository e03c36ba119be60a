//! MAC vendor names from the IEEE registries (Debian's `ieee-data` package: `oui.csv`, `mam.csv`,
//! `oui36.csv`), for the `vendor` label and the reports. Looked up when a finding is raised or a scan
//! reports, never per frame.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::wire::mac::Mac;

/// Where Debian's `ieee-data` puts the registries: MA-L (24-bit), MA-M (28-bit), MA-S and IAB (36-bit).
pub const DEFAULT_FILES: [&str; 4] = [
    "/usr/share/ieee-data/oui.csv",
    "/usr/share/ieee-data/mam.csv",
    "/usr/share/ieee-data/oui36.csv",
    "/usr/share/ieee-data/iab.csv",
];

/// Vendor names by MAC prefix. Compact: one string buffer and a sorted index, about 1.5 MiB for the
/// full registries.
#[derive(Debug, Default)]
pub struct Vendors {
    /// (prefix bits, prefix value left-aligned in 48 bits, name offset, name length), sorted.
    index: Vec<(u8, u64, u32, u16)>,
    names: String,
}

/// What loading the registries found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Files read.
    pub files: Vec<PathBuf>,
    /// Files that exist but could not be read, with the reason.
    pub errors: Vec<String>,
}

impl Vendors {
    /// Reads every file of `paths` that exists (IEEE CSV: `Registry,Assignment,Organization Name,...`);
    /// missing files are skipped, malformed lines ignored.
    pub fn load(paths: &[impl AsRef<Path>]) -> (Vendors, Loaded) {
        Vendors::load_filtered(paths, None)
    }

    /// Like [`Vendors::load`], keeping only the prefixes of `macs`: for a report that knows which MACs
    /// it names, reading the registries costs a scan of their lines (a few milliseconds) instead of
    /// building the index of all ~50,000 entries beside the work (3 times that, on a core the work wants).
    pub fn load_for(paths: &[impl AsRef<Path>], macs: impl IntoIterator<Item = Mac>) -> (Vendors, Loaded) {
        let mut wanted: Vec<(u8, u64)> = macs
            .into_iter()
            // Named without the registries (see `lookup`).
            .filter(|m| !m.is_local())
            .flat_map(|m| PREFIX_BITS.map(|bits| (bits, prefix(m.to_u64(), bits))))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return (Vendors::default(), Loaded::default());
        }
        Vendors::load_filtered(paths, Some(&wanted))
    }

    /// Reads the registries, keeping every entry or those of `wanted` (sorted `(bits, prefix)`).
    fn load_filtered(paths: &[impl AsRef<Path>], wanted: Option<&[(u8, u64)]>) -> (Vendors, Loaded) {
        let mut v = Vendors::default();
        let mut loaded = Loaded::default();
        for p in paths {
            let p = p.as_ref();
            // Line by line: the registries are a few MiB of text, and the daemon's idle RSS budget is tight.
            match std::fs::File::open(p)
                .and_then(|f| v.add_csv(std::io::BufReader::with_capacity(1 << 16, f), wanted))
            {
                Ok(()) => loaded.files.push(p.to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => loaded.errors.push(format!("{}: {e}", p.display())),
            }
        }
        v.index.sort_unstable_by_key(|&(bits, prefix, _, _)| (bits, prefix));
        v.index.dedup_by_key(|&mut (bits, prefix, _, _)| (bits, prefix));
        v.index.shrink_to_fit();
        v.names.shrink_to_fit();
        (v, loaded)
    }

    /// Adds the entries of one IEEE CSV registry (those of `wanted` only, when given).
    fn add_csv(
        &mut self,
        mut text: impl std::io::BufRead,
        wanted: Option<&[(u8, u64)]>,
    ) -> std::io::Result<()> {
        // Lines are read where the reader's buffer holds them; only one cut by the buffer's end is
        // copied. Nothing is allocated per line of the ~50,000.
        let mut carry = Vec::new();
        // The line being carried grew past MAX_LINE: not a registry; it is skipped to its end.
        let mut overlong = false;
        let mut header = true;
        let mut each = |line: &[u8]| {
            if !std::mem::take(&mut header) {
                self.add_line(line, wanted);
            }
        };
        loop {
            let buf = text.fill_buf()?;
            if buf.is_empty() {
                if !carry.is_empty() {
                    each(&carry);
                }
                return Ok(());
            }
            let used = buf.len();
            let mut rest = buf;
            while let Some(end) = memchr::memchr(b'\n', rest) {
                if std::mem::take(&mut overlong) {
                    each(&[]);
                } else if carry.is_empty() {
                    each(&rest[..end]);
                } else {
                    carry.extend_from_slice(&rest[..end]);
                    each(&carry);
                    carry.clear();
                }
                rest = &rest[end + 1..];
            }
            if carry.len() + rest.len() > MAX_LINE {
                carry.clear();
                overlong = true;
            } else if !overlong {
                carry.extend_from_slice(rest);
            }
            text.consume(used);
        }
    }

    /// Adds the entry of one registry line, if it is one (and wanted).
    fn add_line(&mut self, line: &[u8], wanted: Option<&[(u8, u64)]>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut fields = CsvFields { rest: line };
        let (Some(_registry), Some(assignment)) = (fields.next(), fields.next()) else { return };
        let bits = assignment.len() * 4;
        let (24 | 28 | 36) = bits else { return };
        let Some(value) = hex(&assignment) else { return };
        let key = (bits as u8, value << (48 - bits));
        // Most lines are not wanted by a filtered load: decided before the name is read.
        if wanted.is_some_and(|w| w.binary_search(&key).is_err()) {
            return;
        }
        let Some(name) = fields.next() else { return };
        // Bytes, read lossily: one stray non-UTF-8 byte must not cost the entry or the rest of the file.
        let name = String::from_utf8_lossy(&name);
        let name = name.trim();
        let (Ok(offset), Ok(len)) = (u32::try_from(self.names.len()), u16::try_from(name.len())) else {
            return;
        };
        if name.is_empty() {
            return;
        }
        self.names.push_str(name);
        self.index.push((key.0, key.1, offset, len));
    }

    /// Number of prefixes known.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no registry was loaded.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The vendor of `mac`: the longest registered prefix, `locally administered` for MACs outside the
    /// registries by design (random, virtual), or `None`.
    pub fn lookup(&self, mac: Mac) -> Option<&str> {
        if mac.is_local() {
            return Some("locally administered");
        }
        let m = mac.to_u64();
        for bits in PREFIX_BITS {
            if let Ok(i) = self.index.binary_search_by_key(&(bits, prefix(m, bits)), |&(b, p, _, _)| (b, p)) {
                let (_, _, off, len) = self.index[i];
                return self.names.get(off as usize..off as usize + len as usize);
            }
        }
        None
    }
}

/// The longest registry line read (the longest real one is under 400 bytes): a file of something else,
/// one line of gigabytes, must not be held in memory.
const MAX_LINE: usize = 1 << 16;

/// A hexadecimal number of 1 to 16 digits, or `None`.
fn hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| Some(n << 4 | u64::from(char::from(d).to_digit(16)?)))
}

/// The registries' prefix lengths, longest (most specific) first.
const PREFIX_BITS: [u8; 3] = [36, 28, 24];

/// The first `bits` bits of a MAC held in the low 48 bits of `m`, the rest zeroed.
fn prefix(m: u64, bits: u8) -> u64 {
    m & !((1u64 << (48 - u32::from(bits))) - 1)
}

/// Splits a CSV line into fields, honouring double quotes (with `""` inside quoted fields). Fields are
/// borrowed from the line unless they hold an escaped quote.
struct CsvFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.rest.is_empty() {
            return None;
        }
        let s = self.rest;
        let Some(quoted) = s.strip_prefix(b"\"") else {
            let end = s.iter().position(|&b| b == b',');
            self.rest = end.map_or(&[], |i| &s[i + 1..]);
            return Some(Cow::Borrowed(&s[..end.unwrap_or(s.len())]));
        };
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(&[]);
        let mut from = 0;
        loop {
            let Some(q) = quoted[from..].iter().position(|&b| b == b'"').map(|i| from + i) else {
                // No closing quote: the field runs to the end of the line.
                self.rest = &[];
                return Some(append(out, &quoted[from..]));
            };
            if quoted.get(q + 1) == Some(&b'"') {
                // An escaped quote: keep one and go on.
                out = Cow::Owned(append(out, &quoted[from..=q]).into_owned());
                from = q + 2;
                continue;
            }
            let after = &quoted[q + 1..];
            self.rest = after.strip_prefix(b",").unwrap_or(&[]);
            return Some(append(out, &quoted[from..q]));
        }
    }
}

/// `head` followed by `tail`, borrowing when `head` is empty.
fn append<'a>(head: Cow<'a, [u8]>, tail: &'a [u8]) -> Cow<'a, [u8]> {
    if head.is_empty() {
        Cow::Borrowed(tail)
    } else {
        let mut v = head.into_owned();
        v.extend_from_slice(tail);
        Cow::Owned(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUI: &str = "Registry,Assignment,Organization Name,Organization Address
MA-L,F4BD9E,\"Cisco Systems, Inc\",80 West Tasman Drive San Jose CA US 94568
MA-L,525400,QEMU virtual NIC,
MA-L,001B21,Intel Corporate,\"Lot 8, Jalan Hi-Tech 2/3 \"
MA-L,70B3D5,IEEE Registration Authority,
bad line
MA-L,ZZZZZZ,Broken,
";
    const OUI36: &str = "Registry,Assignment,Organization Name,Organization Address
MA-S,70B3D5F2F,TELEPLATFORMS,\"Polbina st., 3/1 Moscow  RU 109388 \"
MA-S,70B3D5F30,\"Quoted \"\"Name\"\" Ltd\",x
";
    /// An MA-M registry with a byte that is not UTF-8.
    const MAM: &[u8] = b"Registry,Assignment,Organization Name,Organization Address\r
MA-M,741AE09,Private,\r
MA-M,8C1F640,Caf\xe9 Ltd,\r
MA-M,8C1F641,After the bad byte,\r
";

    /// `text` as the one registry file of a temporary directory (kept while the directory lives).
    fn one_registry(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oui.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn longest_prefix_wins_and_quotes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oui.csv"), OUI).unwrap();
        std::fs::write(dir.path().join("oui36.csv"), OUI36).unwrap();
        std::fs::write(dir.path().join("mam.csv"), MAM).unwrap();
        let files = [
            dir.path().join("oui.csv"),
            dir.path().join("missing.csv"),
            dir.path().join("oui36.csv"),
            dir.path().join("mam.csv"),
        ];
        let (v, loaded) = Vendors::load(&files);
        assert_eq!(loaded.files.len(), 3);
        assert!(loaded.errors.is_empty());
        assert_eq!(v.len(), 9);
        let mac = |s: &str| s.parse::<Mac>().unwrap();
        // MA-M (28 bits), and a name with a byte that is not UTF-8 that costs nothing after it.
        assert_eq!(v.lookup(mac("74:1a:e0:9a:bc:de")), Some("Private"));
        assert_eq!(v.lookup(mac("8c:1f:64:00:00:01")), Some("Caf\u{fffd} Ltd"));
        assert_eq!(v.lookup(mac("8c:1f:64:10:00:01")), Some("After the bad byte"));
        assert_eq!(v.lookup(mac("f4:bd:9e:01:02:03")), Some("Cisco Systems, Inc"));
        assert_eq!(v.lookup(mac("00:1b:21:aa:bb:cc")), Some("Intel Corporate"));
        assert_eq!(v.lookup(mac("70:b3:d5:f2:f1:23")), Some("TELEPLATFORMS"));
        assert_eq!(v.lookup(mac("70:b3:d5:f3:01:23")), Some("Quoted \"Name\" Ltd"));
        assert_eq!(v.lookup(mac("70:b3:d5:11:22:33")), Some("IEEE Registration Authority"));
        assert_eq!(v.lookup(mac("00:00:00:11:22:33")), None);
        assert_eq!(v.lookup(mac("02:42:ac:11:00:02")), Some("locally administered"));
    }

    #[test]
    fn a_filtered_load_keeps_the_wanted_prefixes_and_names_them_as_a_full_load_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oui.csv"), OUI).unwrap();
        std::fs::write(dir.path().join("oui36.csv"), OUI36).unwrap();
        std::fs::write(dir.path().join("mam.csv"), MAM).unwrap();
        let files = [dir.path().join("oui.csv"), dir.path().join("oui36.csv"), dir.path().join("mam.csv")];
        let mac = |s: &str| s.parse::<Mac>().unwrap();
        // A quoted name, an MA-S prefix under a registered MA-L one, an MA-M one, and one in no registry.
        let wanted = [
            mac("f4:bd:9e:01:02:03"),
            mac("70:b3:d5:f3:01:23"),
            mac("8c:1f:64:10:00:01"),
            mac("00:00:00:11:22:33"),
        ];
        let (full, _) = Vendors::load(&files);
        let (some, loaded) = Vendors::load_for(&files, wanted);
        assert_eq!(loaded.files.len(), 3);
        for m in wanted {
            assert_eq!(some.lookup(m), full.lookup(m), "{m}");
        }
        // The MA-S entry and the MA-L one it sits under both match 70:b3:d5:f3:01:23.
        assert_eq!(some.len(), 4);
        assert_eq!(some.lookup(mac("00:1b:21:aa:bb:cc")), None, "not asked for");
        assert_eq!(full.lookup(mac("00:1b:21:aa:bb:cc")), Some("Intel Corporate"));
    }

    #[test]
    fn a_filtered_load_of_local_macs_reads_no_registry() {
        let (_dir, path) = one_registry(OUI);
        let local = "02:42:ac:11:00:02".parse::<Mac>().unwrap();
        let (v, loaded) = Vendors::load_for(&[path], [local]);
        assert!(loaded.files.is_empty() && v.is_empty());
        assert_eq!(v.lookup(local), Some("locally administered"));
    }

    #[test]
    fn lines_cut_by_the_read_buffer_are_read_whole() {
        let mut text = String::from("Registry,Assignment,Organization Name,Organization Address\n");
        for i in 0..2000u32 {
            text.push_str(&format!("MA-L,{:06X},\"Vendor {i}, Inc\",Some street {i}\r\n", i * 7));
        }
        // No newline at the end: the last line counts too.
        text.push_str("MA-L,0CFFFE,Last Ltd,");
        let (_dir, path) = one_registry(&text);
        let (v, _) = Vendors::load(&[&path]);
        assert_eq!(v.len(), 2001);
        for i in [0u32, 1, 700, 1999] {
            let [_, a, b, c] = (i * 7).to_be_bytes();
            let m = Mac([a, b, c, 0, 0, 1]);
            assert_eq!(v.lookup(m), Some(format!("Vendor {i}, Inc").as_str()), "{m}");
        }
        assert_eq!(v.lookup("0c:ff:fe:00:00:01".parse().unwrap()), Some("Last Ltd"));
    }

    #[test]
    fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let long = "x".repeat(3 * MAX_LINE);
        let text = format!("Registry,Assignment,Organization Name\nMA-L,0C0000,{long}\nMA-L,0C0001,After\n");
        let (_dir, path) = one_registry(&text);
        let (v, loaded) = Vendors::load(&[&path]);
        assert_eq!(loaded.files.len(), 1);
        assert_eq!(v.len(), 1);
        assert_eq!(v.lookup("0c:00:00:00:00:01".parse().unwrap()), None);
        assert_eq!(v.lookup("0c:00:01:00:00:01".parse().unwrap()), Some("After"));
    }

    #[test]
    fn no_registry_is_empty_not_an_error() {
        let (v, loaded) = Vendors::load(&["/nonexistent/oui.csv"]);
        assert!(v.is_empty() && loaded.files.is_empty() && loaded.errors.is_empty());
    }
}
