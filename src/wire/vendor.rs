//! MAC vendor names from the IEEE registries (Debian's `ieee-data` package: `oui.csv`, `mam.csv`,
//! `oui36.csv`), for the `vendor` label and the reports. Looked up when a finding is raised or a scan
//! reports, never per frame.

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
        let mut v = Vendors::default();
        let mut loaded = Loaded::default();
        for p in paths {
            let p = p.as_ref();
            // Line by line: the registries are a few MiB of text, and the daemon's idle RSS budget is tight.
            match std::fs::File::open(p).and_then(|f| v.add_csv(std::io::BufReader::new(f))) {
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

    /// Adds the entries of one IEEE CSV registry.
    fn add_csv(&mut self, text: impl std::io::BufRead) -> std::io::Result<()> {
        // Bytes, read lossily: one stray non-UTF-8 byte must not cost the rest of the file.
        let mut lines = text.split(b'\n');
        lines.next().transpose()?;
        for line in lines {
            let line = line?;
            let line = String::from_utf8_lossy(&line);
            let mut fields = CsvFields { rest: line.trim_end_matches('\r') };
            let (Some(_registry), Some(assignment), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let bits = assignment.len() * 4;
            let (24 | 28 | 36) = bits else { continue };
            let Ok(value) = u64::from_str_radix(&assignment, 16) else { continue };
            let name = name.trim();
            let (Ok(offset), Ok(len)) = (u32::try_from(self.names.len()), u16::try_from(name.len())) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            self.names.push_str(name);
            self.index.push((bits as u8, value << (48 - bits), offset, len));
        }
        Ok(())
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
        if mac.0[0] & 0x02 != 0 {
            return Some("locally administered");
        }
        let m = mac.to_u64();
        for bits in [36u8, 28, 24] {
            let prefix = m & !((1u64 << (48 - u32::from(bits))) - 1);
            if let Ok(i) = self.index.binary_search_by_key(&(bits, prefix), |&(b, p, _, _)| (b, p)) {
                let (_, _, off, len) = self.index[i];
                return self.names.get(off as usize..off as usize + len as usize);
            }
        }
        None
    }
}

/// Splits a CSV line into fields, honouring double quotes (with `""` inside quoted fields).
struct CsvFields<'a> {
    rest: &'a str,
}

impl Iterator for CsvFields<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let s = self.rest;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c != '"' {
                    out.push(c);
                    continue;
                }
                if quoted[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                    continue;
                }
                let after = &quoted[i + 1..];
                self.rest = after.strip_prefix(',').unwrap_or("");
                return Some(out);
            }
            self.rest = "";
            Some(out)
        } else {
            match s.find(',') {
                Some(i) => {
                    self.rest = &s[i + 1..];
                    Some(s[..i].to_owned())
                }
                None => {
                    self.rest = "";
                    Some(s.to_owned())
                }
            }
        }
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
    fn no_registry_is_empty_not_an_error() {
        let (v, loaded) = Vendors::load(&["/nonexistent/oui.csv"]);
        assert!(v.is_empty() && loaded.files.is_empty() && loaded.errors.is_empty());
    }
}
