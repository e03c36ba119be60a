//! The state file (`--state FILE`, `state.path`): the detector's state (see `monitor::state`) on disk,
//! so a restarted pod still knows which MAC owned an address and which conflicts are active.
//!
//! Written atomically (a temporary file beside it, fsync, rename, fsync of the directory), so a crash
//! or a full disk leaves the previous file whole. The first line carries a checksum and the length of
//! the JSON that follows: a truncated or damaged file is told apart from a good one, set aside and
//! warned about, and the daemon starts clean.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::monitor::state::{SCHEMA, State};

/// The first word of the header line.
const MAGIC: &str = "l2watch-state";

/// Files larger than this are not read: the largest state the limits allow is a few MiB.
pub const MAX_BYTES: u64 = 64 << 20;

/// Why a state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a whole state file as this version writes it (truncated, damaged, or not one).
    #[error("{path}: not a usable state file: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A different (newer) l2watch wrote it.
    #[error(
        "{path}: written in schema {schema:?}, this l2watch reads {SCHEMA:?} (a newer version wrote it?)"
    )]
    Version {
        /// The file.
        path: String,
        /// The schema it names.
        schema: String,
    },
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a good one (not an integrity seal).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The file's bytes for `state`: the header line, then the JSON.
pub fn encode(state: &State) -> Vec<u8> {
    // Serializing plain data into memory cannot fail.
    let body = serde_json::to_vec(state).unwrap_or_default();
    let mut out = format!("{MAGIC} {:016x} {}\n", checksum(&body), body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Reads `bytes` back; `path` names the file in errors.
pub fn decode(path: &str, bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |why: String| StateError::Corrupt { path: path.to_owned(), why };
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| corrupt("no header line".into()))?;
    let header =
        std::str::from_utf8(&bytes[..newline]).map_err(|_| corrupt("the header is not text".into()))?;
    let body = &bytes[newline + 1..];
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(corrupt(format!("it does not start with {MAGIC:?}")));
    }
    let sum = words.next().and_then(|w| u64::from_str_radix(w, 16).ok());
    let len = words.next().and_then(|w| w.parse::<usize>().ok());
    let (Some(sum), Some(len), None) = (sum, len, words.next()) else {
        return Err(corrupt(format!("bad header {header:?}")));
    };
    if body.len() != len {
        return Err(corrupt(format!(
            "{} bytes of JSON where the header says {len} (truncated?)",
            body.len()
        )));
    }
    if checksum(body) != sum {
        return Err(corrupt("the checksum does not match (damaged?)".into()));
    }
    // The schema first, so a newer layout is reported as such rather than as damage.
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: String,
    }
    let schema: Schema = serde_json::from_slice(body).map_err(|e| corrupt(format!("bad JSON: {e}")))?;
    if schema.schema != SCHEMA {
        return Err(StateError::Version { path: path.to_owned(), schema: schema.schema });
    }
    serde_json::from_slice(body).map_err(|e| corrupt(format!("bad JSON: {e}")))
}

/// A state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file at `path` (which need not exist yet).
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io { path: self.shown(), source }
    }

    /// Reads the state; `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let size = file.metadata().map_err(|e| self.io(e))?.len();
        if size > MAX_BYTES {
            return Err(StateError::Corrupt {
                path: self.shown(),
                why: format!("{size} bytes is more than any state l2watch writes ({MAX_BYTES} at most)"),
            });
        }
        let bytes = fs::read(&self.path).map_err(|e| self.io(e))?;
        decode(&self.shown(), &bytes).map(Some)
    }

    /// Moves an unusable file out of the way (to `FILE.bad`, replacing an older one) so the next
    /// write does not destroy what an operator may want to look at; returns where it went.
    pub fn set_aside(&self) -> Result<PathBuf, StateError> {
        let mut bad = self.path.clone().into_os_string();
        bad.push(".bad");
        let bad = PathBuf::from(bad);
        fs::rename(&self.path, &bad).map_err(|e| self.io(e))?;
        Ok(bad)
    }

    /// Replaces the file with `bytes` atomically: a reader (or a crash) sees the old file or the new
    /// one, never a mix.
    pub fn write(&self, bytes: &[u8]) -> Result<(), StateError> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable only once the directory is.
            let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::{Address, SavedFinding, SavedMac};

    fn state() -> State {
        State {
            schema: SCHEMA.into(),
            taken: 5,
            addresses: vec![Address {
                ip: "10.0.0.1".parse().unwrap(),
                current: Some(0),
                macs: vec![SavedMac {
                    mac: "02:00:00:00:00:01".parse().unwrap(),
                    first_seen: 1,
                    last_seen: 2,
                    count: 3,
                }],
            }],
            findings: vec![SavedFinding {
                kind: "foreign_mac".into(),
                ip: "10.0.0.1".parse().unwrap(),
                mac: "02:00:00:00:00:01".parse().unwrap(),
                other_mac: None,
                node: None,
                expected: false,
                flip_flop: false,
                vlans: vec![10],
                interface: 0,
                first_seen: 1,
                last_seen: 2,
                count: 3,
            }],
        }
    }

    #[test]
    fn a_written_file_reads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path().join("state"));
        assert!(f.load().unwrap().is_none());
        f.write(&encode(&State { taken: 1, ..state() })).unwrap();
        f.write(&encode(&state())).unwrap();
        assert_eq!(f.load().unwrap(), Some(state()));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn truncated_damaged_foreign_and_newer_files_are_told_apart() {
        let good = encode(&state());
        let err = |bytes: &[u8]| decode("s", bytes).unwrap_err().to_string();
        assert!(err(&good[..good.len() - 7]).contains("truncated"), "{}", err(&good[..good.len() - 7]));
        assert!(err(&good[..10]).contains("no header line"));
        let mut damaged = good.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 0x01;
        assert!(err(&damaged).contains("checksum"), "{}", err(&damaged));
        assert!(err(b"{\"schema\":\"l2watch.state/v1\"}\n").contains("does not start with"));
        assert!(err(b"").contains("no header line"));
        let newer = encode(&State { schema: "l2watch.state/v2".into(), ..state() });
        let e = decode("s", &newer).unwrap_err();
        assert!(matches!(e, StateError::Version { ref schema, .. } if schema == "l2watch.state/v2"), "{e}");
        // Valid JSON in the wrong shape is damage too, not a panic.
        let body = b"{\"schema\":\"l2watch.state/v1\",\"taken\":\"x\"}";
        let mut odd = format!("{MAGIC} {:016x} {}\n", checksum(body), body.len()).into_bytes();
        odd.extend_from_slice(body);
        assert!(err(&odd).contains("bad JSON"), "{}", err(&odd));
    }

    #[test]
    fn an_unusable_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path().join("state"));
        fs::write(f.path(), b"garbage").unwrap();
        assert!(matches!(f.load(), Err(StateError::Corrupt { .. })));
        let bad = f.set_aside().unwrap();
        assert_eq!(fs::read(&bad).unwrap(), b"garbage");
        assert!(f.load().unwrap().is_none());
    }
}
