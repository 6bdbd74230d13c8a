//! The Raft log on disk: one append-only file of checksummed records.
//!
//! ```text
//! file   := "AURALOG1" record*
//! record := len:u32le crc32:u32le payload[len]      (crc over payload)
//! ```
//!
//! Payloads are JSON [`Record`]s. The in-memory log is rebuilt by replaying
//! them in order. A crash can only tear the last batch the writer had not
//! yet synced, so recovery keeps the longest valid prefix and cuts the rest,
//! but refuses to cut more than one batch can hold: anything larger is
//! corruption, not a torn write, and must not be papered over.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogId, Vote};

pub const MAGIC: &[u8; 8] = b"AURALOG1";
const FRAME: usize = 8;
/// The writer never puts more than this into one write + sync, so a torn
/// tail is never longer than this plus one record.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Largest single record; a larger length field is corruption.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Entry(Box<Entry>),
    Vote(Vote),
    Committed(Option<LogId>),
    /// Entries after this one are gone (`None`: all of them).
    TruncateAfter(Option<LogId>),
    /// Entries up to and including this one are gone.
    Purge(LogId),
}

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("raft log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("raft log {path} is not an AURA log (bad header)")]
    BadHeader { path: PathBuf },
    #[error(
        "raft log {path} is corrupt at byte {offset}: {reason}; {tail} bytes follow, more than a torn write can leave, so nothing was cut"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
        tail: u64,
    },
}

pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME]);
    serde_json::to_writer(&mut *out, record).expect("raft records always serialize");
    let len = (out.len() - start - FRAME) as u32;
    let crc = crc32fast::hash(&out[start + FRAME..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// Each record with its size in the file, frame included.
    pub records: Vec<(Record, u64)>,
    /// Bytes of the valid prefix, header included.
    pub valid_len: u64,
    /// Bytes cut from a torn tail.
    pub cut: u64,
}

/// Reads the file, keeping the longest valid prefix. A missing file is an
/// empty log.
pub fn recover(path: &Path) -> Result<Recovered, LogFileError> {
    let io_err = |source| LogFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io_err)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    if bytes.is_empty() {
        return Ok(Recovered {
            records: Vec::new(),
            valid_len: 0,
            cut: 0,
        });
    }
    if bytes.len() < MAGIC.len() {
        // A crash while the header itself was being written.
        return Ok(Recovered {
            records: Vec::new(),
            valid_len: 0,
            cut: bytes.len() as u64,
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(LogFileError::BadHeader {
            path: path.to_owned(),
        });
    }
    let mut records = Vec::new();
    let mut at = MAGIC.len();
    let stop = |at: usize, reason: String| -> Result<(), LogFileError> {
        let tail = (bytes.len() - at) as u64;
        if tail as usize > MAX_BATCH_BYTES + MAX_RECORD_BYTES + FRAME {
            return Err(LogFileError::Corrupt {
                path: path.to_owned(),
                offset: at as u64,
                reason,
                tail,
            });
        }
        tracing::warn!(offset = at, cut = tail, %reason, "cutting torn tail of the raft log");
        Ok(())
    };
    while at < bytes.len() {
        if bytes.len() - at < FRAME {
            stop(at, "incomplete record header".into())?;
            break;
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_BYTES {
            stop(at, format!("record length {len} is impossible"))?;
            break;
        }
        let Some(payload) = bytes.get(at + FRAME..at + FRAME + len) else {
            stop(at, "incomplete record".into())?;
            break;
        };
        if crc32fast::hash(payload) != crc {
            stop(at, "checksum mismatch".into())?;
            break;
        }
        match serde_json::from_slice::<Record>(payload) {
            Ok(r) => records.push((r, (FRAME + len) as u64)),
            // A record whose checksum holds but which does not decode was
            // written that way: that is a bug or a foreign file, never a
            // torn write.
            Err(e) => {
                return Err(LogFileError::Corrupt {
                    path: path.to_owned(),
                    offset: at as u64,
                    reason: format!("record does not decode: {e}"),
                    tail: (bytes.len() - at) as u64,
                });
            }
        }
        at += FRAME + len;
    }
    Ok(Recovered {
        records,
        valid_len: at as u64,
        cut: (bytes.len() - at) as u64,
    })
}

/// Opens the log for appending after recovery: cuts any torn tail, writes
/// the header to a new file, and makes the file's existence durable.
pub fn open_for_append(path: &Path, valid_len: u64) -> io::Result<File> {
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    if valid_len == 0 {
        f.set_len(0)?;
        f.write_all(MAGIC)?;
    } else {
        f.set_len(valid_len)?;
    }
    f.sync_all()?;
    if !existed {
        sync_dir(path)?;
    }
    use std::io::Seek;
    f.seek(io::SeekFrom::End(0))?;
    Ok(f)
}

/// Replaces the log with `image` (header included) atomically: after a
/// crash the old or the new file is there, whole.
pub fn replace(path: &Path, image: &[u8]) -> io::Result<File> {
    let tmp = path.with_extension("rewrite");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(image)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    use std::io::Seek;
    f.seek(io::SeekFrom::End(0))?;
    Ok(f)
}

pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}
