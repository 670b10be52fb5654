//! Which sender names are connected now, and from where: a second live
//! connection under a name already in use is refused, so two senders can
//! never interleave one name's seqs (issue #10). A name is held from its
//! hello until its connection stops reading.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The live names.
#[derive(Default)]
pub struct LiveNames {
    held: Mutex<HashMap<Arc<str>, (u64, SocketAddr)>>,
}

/// A name held by one connection; released when dropped.
pub struct NameHold {
    names: Arc<LiveNames>,
    name: Arc<str>,
    conn: u64,
}

impl LiveNames {
    /// An empty registry.
    pub fn new() -> Arc<LiveNames> {
        Arc::new(LiveNames::default())
    }

    /// Holds `name` for connection `conn` from `peer`, or says who holds it.
    pub fn claim(
        self: &Arc<Self>,
        name: &Arc<str>,
        conn: u64,
        peer: SocketAddr,
    ) -> Result<NameHold, SocketAddr> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&(_, other)) = held.get(name) {
            return Err(other);
        }
        held.insert(Arc::clone(name), (conn, peer));
        Ok(NameHold {
            names: Arc::clone(self),
            name: Arc::clone(name),
            conn,
        })
    }

    /// [`LiveNames::claim`], waiting up to `patience` for the holder to let
    /// go: a sender that reconnects at once may find its own earlier
    /// connection still answering its last lines (milliseconds).
    pub fn claim_within(
        self: &Arc<Self>,
        name: &Arc<str>,
        conn: u64,
        peer: SocketAddr,
        patience: std::time::Duration,
    ) -> Result<NameHold, SocketAddr> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match self.claim(name, conn, peer) {
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }
}

impl Drop for NameHold {
    fn drop(&mut self) {
        let mut held = self.names.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&self.name).is_some_and(|&(c, _)| c == self.conn) {
            held.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_once_and_free_again_when_released() {
        let names = LiveNames::new();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let name: Arc<str> = Arc::from("sensor-1");
        let hold = names.claim(&name, 1, a).expect("free");
        assert_eq!(names.claim(&name, 2, b).err(), Some(a));
        let other: Arc<str> = Arc::from("sensor-2");
        let _other = names.claim(&other, 3, b).expect("another name is free");
        drop(hold);
        assert!(names.claim(&name, 2, b).is_ok());
    }

    #[test]
    fn a_claim_waits_a_moment_for_the_holder_to_let_go() {
        let names = LiveNames::new();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let name: Arc<str> = Arc::from("sensor-1");
        let hold = names.claim(&name, 1, a).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(hold);
        });
        let patience = std::time::Duration::from_secs(2);
        assert!(names.claim_within(&name, 2, a, patience).is_ok());
        releaser.join().unwrap();
        let _held = names.claim(&Arc::from("other"), 3, a).unwrap();
        let short = std::time::Duration::from_millis(50);
        assert_eq!(
            names.claim_within(&Arc::from("other"), 4, a, short).err(),
            Some(a)
        );
    }
}
