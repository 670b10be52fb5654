//! The JSON-lines sink: each incident appended to a file as one line,
//! `{"timestamp": …, "event_type": "incident", "incident": {…}}`, in the
//! spirit of Suricata's `eve.json`. The file is opened for each line, so a
//! log rotation that moves it away is followed at the next incident.

use std::io::Write;
use std::path::PathBuf;

use crate::store::incidents::IncidentRow;

use super::{AlertError, Sink};

/// Appends to one file.
pub struct Jsonl {
    path: PathBuf,
}

impl Jsonl {
    /// Checks that `path` can be opened for appending (creating it).
    pub fn open(path: &str) -> Result<Jsonl, AlertError> {
        let j = Jsonl {
            path: PathBuf::from(path),
        };
        j.file().map_err(|source| AlertError::Jsonl {
            path: path.to_string(),
            source,
        })?;
        Ok(j)
    }

    fn file(&self) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }
}

impl Sink for Jsonl {
    fn deliver(&mut self, incident: &IncidentRow) -> Result<(), String> {
        let mut line = super::event(incident).to_string();
        line.push('\n');
        let mut f = self
            .file()
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        // One write of the whole line: appends of a line are not interleaved.
        f.write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .map_err(|e| format!("cannot append to {}: {e}", self.path.display()))
    }
}
