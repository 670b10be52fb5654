//! A bounded table of stream states: at most `capacity` entries, the least
//! recently seen evicted first (an exact LRU: a hash map to slots and a
//! doubly-linked list through them). Each slot holds its key, the packet time
//! it was last seen and `stride` floats of statistics, all in flat arrays, so
//! an entry costs a few dozen bytes plus its statistics and nothing is
//! allocated once the table is full.
//!
//! The hasher is keyed per process (ahash): an attacker choosing addresses
//! cannot aim them at one bucket.

use std::collections::HashMap;
use std::hash::Hash;

/// No slot: the end of the recency list.
const NONE: u32 = u32::MAX;

/// What [`Table::touch`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touched {
    /// The entry's slot (index into [`Table::stats_mut`]).
    pub slot: u32,
    /// Seconds since the entry was last seen; `None` for an entry just made
    /// (new, or its slot reused after an eviction).
    pub since: Option<f64>,
    /// Seconds since the entry was made (0 for a new one).
    pub age: f64,
}

/// A bounded LRU table keyed by `K`.
pub struct Table<K> {
    map: HashMap<K, u32, ahash::RandomState>,
    keys: Vec<K>,
    last: Vec<f64>,
    first: Vec<f64>,
    prev: Vec<u32>,
    next: Vec<u32>,
    stats: Vec<f32>,
    stride: usize,
    capacity: usize,
    head: u32,
    tail: u32,
    evictions: u64,
}

impl<K: Hash + Eq + Copy> Table<K> {
    /// An empty table of at most `capacity` (≥ 1) entries of `stride` floats each.
    pub fn new(capacity: usize, stride: usize) -> Table<K> {
        Table {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            keys: Vec::new(),
            last: Vec::new(),
            first: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            stats: Vec::new(),
            stride,
            capacity: capacity.max(1),
            head: NONE,
            tail: NONE,
            evictions: 0,
        }
    }

    /// Finds or makes the entry of `key`, marks it seen at `t` (most recent)
    /// and says how long ago it was seen before. A new entry's statistics are
    /// zero; when the table is full the least recently seen entry makes room.
    pub fn touch(&mut self, key: K, t: f64) -> Touched {
        if let Some(&slot) = self.map.get(&key) {
            let i = slot as usize;
            let since = (t - self.last[i]).max(0.0);
            self.last[i] = self.last[i].max(t);
            self.move_to_front(slot);
            return Touched {
                slot,
                since: Some(since),
                age: (t - self.first[i]).max(0.0),
            };
        }
        let slot = if self.keys.len() < self.capacity {
            self.keys.push(key);
            self.last.push(t);
            self.first.push(t);
            self.prev.push(NONE);
            self.next.push(NONE);
            self.stats.resize(self.stats.len() + self.stride, 0.0);
            (self.keys.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.keys[victim as usize]);
            self.evictions += 1;
            let i = victim as usize;
            self.keys[i] = key;
            self.last[i] = t;
            self.first[i] = t;
            self.stats[i * self.stride..(i + 1) * self.stride].fill(0.0);
            victim
        };
        self.map.insert(key, slot);
        self.push_front(slot);
        Touched {
            slot,
            since: None,
            age: 0.0,
        }
    }

    /// Starts the entry in `slot` afresh at `t`: statistics zero, age 0.
    pub fn restart(&mut self, slot: u32, t: f64) {
        let i = slot as usize;
        self.first[i] = t;
        self.stats[i * self.stride..(i + 1) * self.stride].fill(0.0);
    }

    /// The statistics of `slot`, to read.
    pub fn stats(&self, slot: u32) -> &[f32] {
        let at = slot as usize * self.stride;
        &self.stats[at..at + self.stride]
    }

    /// The statistics of `slot`.
    pub fn stats_mut(&mut self, slot: u32) -> &mut [f32] {
        let at = slot as usize * self.stride;
        &mut self.stats[at..at + self.stride]
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entries evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Bytes the table holds now (its arrays and the hash map's buckets).
    pub fn bytes(&self) -> usize {
        let per_bucket = std::mem::size_of::<(K, u32)>() + 1;
        self.map.capacity() * per_bucket
            + self.keys.capacity() * std::mem::size_of::<K>()
            + (self.last.capacity() + self.first.capacity()) * 8
            + (self.prev.capacity() + self.next.capacity()) * 4
            + self.stats.capacity() * 4
    }

    fn unlink(&mut self, slot: u32) {
        let (p, n) = (self.prev[slot as usize], self.next[slot as usize]);
        if p == NONE {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NONE {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
    }

    fn push_front(&mut self, slot: u32) {
        self.prev[slot as usize] = NONE;
        self.next[slot as usize] = self.head;
        if self.head != NONE {
            self.prev[self.head as usize] = slot;
        }
        self.head = slot;
        if self.tail == NONE {
            self.tail = slot;
        }
    }

    fn move_to_front(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_seen_entry_is_evicted_and_comes_back_fresh() {
        let mut t: Table<u32> = Table::new(3, 2);
        for k in 1..=3 {
            let s = t.touch(k, k as f64);
            assert_eq!(s.since, None);
            t.stats_mut(s.slot)[0] = k as f32;
        }
        // 1 is seen again, so 2 is now the oldest.
        assert_eq!(t.touch(1, 10.0).since, Some(9.0));
        let s4 = t.touch(4, 11.0);
        assert_eq!(s4.since, None);
        assert_eq!(
            t.stats_mut(s4.slot),
            &[0.0, 0.0],
            "a reused slot starts at zero"
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.evictions(), 1);
        assert_eq!(t.touch(2, 12.0).since, None, "2 was evicted");
        assert_eq!(t.touch(1, 13.0).since, Some(3.0), "1 stayed");
        assert_eq!(t.touch(3, 14.0).since, None, "3 made room for 2");
    }

    #[test]
    fn time_going_backwards_counts_as_no_time() {
        let mut t: Table<u8> = Table::new(2, 0);
        t.touch(1, 100.0);
        assert_eq!(t.touch(1, 90.0).since, Some(0.0));
        assert_eq!(t.touch(1, 101.0).since, Some(1.0));
    }

    #[test]
    fn a_million_entries_stay_bounded() {
        let mut t: Table<u64> = Table::new(1000, 4);
        for k in 0..1_000_000u64 {
            t.touch(k, k as f64);
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.evictions(), 999_000);
        assert!(t.bytes() < 1000 * 200, "{} bytes", t.bytes());
    }
}
