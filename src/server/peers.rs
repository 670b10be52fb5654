//! How many connections (served and waiting) each peer address holds, so one
//! address cannot take every slot and place in line
//! (`server.max_connections_per_address`; 0 turns the cap off).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections per address.
pub struct PeerCounts {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
pub struct PeerHold {
    peers: Arc<PeerCounts>,
    addr: IpAddr,
}

impl PeerCounts {
    /// At most `cap` connections per address (0: no cap).
    pub fn new(cap: usize) -> Arc<PeerCounts> {
        Arc::new(PeerCounts {
            cap,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one more connection from `addr`, or returns how many it holds
    /// when that would pass the cap.
    pub fn enter(self: &Arc<Self>, addr: IpAddr) -> Result<PeerHold, usize> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(addr).or_insert(0);
        if self.cap > 0 && *n >= self.cap {
            return Err(*n);
        }
        *n += 1;
        Ok(PeerHold {
            peers: Arc::clone(self),
            addr,
        })
    }

    /// The cap (0: none).
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl Drop for PeerHold {
    fn drop(&mut self) {
        let mut counts = self.peers.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_capped_on_its_own_and_released_on_drop() {
        let peers = PeerCounts::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = peers.enter(a).unwrap();
        let _a2 = peers.enter(a).unwrap();
        assert_eq!(peers.enter(a).err(), Some(2));
        let _b1 = peers.enter(b).expect("another address has its own count");
        drop(a1);
        assert!(peers.enter(a).is_ok());
    }

    #[test]
    fn zero_is_no_cap() {
        let peers = PeerCounts::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let holds: Vec<_> = (0..1000).map(|_| peers.enter(a).unwrap()).collect();
        assert_eq!(holds.len(), 1000);
    }
}
