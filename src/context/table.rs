//! A bounded table of stream states: at most `capacity` entries, the least
//! recently seen evicted first (an exact LRU: a hash map to slots and a
//! doubly-linked list through them). Each slot holds its key, its hash, the
//! packet time it was last seen and its place in the list side by side (one
//! cache line), and `stride` floats of statistics in one flat array, so
//! nothing is allocated once the table is full.
//!
//! The map is keyed by the key's 64-bit hash (a bucket of 16 bytes, not a
//! copy of a 40-byte key), and the slot's own key is checked on every hit:
//! two keys of one hash (about one chance in 10^10 for a full table) share
//! a slot, the newer one replacing the older as if it had been evicted. The
//! hasher is keyed per process (ahash): an attacker choosing addresses
//! cannot aim them at one bucket, nor make two of them collide.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Entries the hash map has room for from the start (it grows beyond, up to
/// the capacity): no rehashing while the first thousands of streams arrive.
const PREALLOCATED: usize = 1 << 14;

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
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// One slot: its key, the key's hash, when it was last seen, its neighbours
/// in the recency list.
#[derive(Clone, Copy)]
struct Entry<K> {
    key: K,
    hash: u64,
    last: f64,
    prev: u32,
    next: u32,
}

/// A bounded LRU table keyed by `K`.
pub struct Table<K> {
    map: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    hasher: ahash::RandomState,
    entries: Vec<Entry<K>>,
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
            map: HashMap::with_capacity_and_hasher(capacity.min(PREALLOCATED), Default::default()),
            hasher: ahash::RandomState::new(),
            entries: Vec::new(),
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
        let hash = self.hasher.hash_one(key);
        if let Some(&slot) = self.map.get(&hash) {
            let e = &mut self.entries[slot as usize];
            let since = if e.key == key {
                let since = (t - e.last).max(0.0);
                e.last = e.last.max(t);
                Some(since)
            } else {
                // Another key of the same hash: it makes way.
                e.key = key;
                e.last = t;
                self.evictions += 1;
                self.restart(slot);
                None
            };
            self.move_to_front(slot);
            return Touched { slot, since };
        }
        let entry = Entry {
            key,
            hash,
            last: t,
            prev: NONE,
            next: NONE,
        };
        let slot = if self.entries.len() < self.capacity {
            self.entries.push(entry);
            self.stats.resize(self.stats.len() + self.stride, 0.0);
            (self.entries.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.entries[victim as usize].hash);
            self.evictions += 1;
            self.entries[victim as usize] = entry;
            self.restart(victim);
            victim
        };
        self.map.insert(hash, slot);
        self.push_front(slot);
        Touched { slot, since: None }
    }

    /// The slot of `key` and when it was last seen, without touching it.
    pub fn peek(&self, key: &K) -> Option<(u32, f64)> {
        let slot = *self.map.get(&self.hasher.hash_one(key))?;
        let e = &self.entries[slot as usize];
        (e.key == *key).then_some((slot, e.last))
    }

    /// Starts the entry in `slot` afresh: statistics zero.
    pub fn restart(&mut self, slot: u32) {
        let i = slot as usize;
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
        self.entries.len()
    }

    /// True when the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Bytes the table holds now (its arrays and the hash map's buckets).
    pub fn bytes(&self) -> usize {
        let per_bucket = std::mem::size_of::<(u64, u32)>() + 1;
        self.map.capacity() * per_bucket
            + self.entries.capacity() * std::mem::size_of::<Entry<K>>()
            + self.stats.capacity() * 4
    }

    fn unlink(&mut self, slot: u32) {
        let e = self.entries[slot as usize];
        let (p, n) = (e.prev, e.next);
        if p == NONE {
            self.head = n;
        } else {
            self.entries[p as usize].next = n;
        }
        if n == NONE {
            self.tail = p;
        } else {
            self.entries[n as usize].prev = p;
        }
    }

    fn push_front(&mut self, slot: u32) {
        let head = self.head;
        let e = &mut self.entries[slot as usize];
        e.prev = NONE;
        e.next = head;
        if head != NONE {
            self.entries[head as usize].prev = slot;
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
