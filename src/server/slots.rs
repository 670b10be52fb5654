//! The counting semaphore that lets at most `max_clients` connections be
//! served at once. Waiters are served strictly first come, first served: each
//! takes a ticket and goes when it is at the head of the line and a slot is free.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

/// How often a waiter re-checks the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// The slots.
pub struct Slots {
    capacity: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    free: usize,
    line: VecDeque<u64>,
    next_ticket: u64,
}

/// A slot held by a served connection; returned when dropped.
pub struct Permit {
    slots: Arc<Slots>,
}

/// A place in line.
pub struct Ticket {
    slots: Arc<Slots>,
    id: u64,
    /// 1-based position in line when the ticket was taken.
    pub position: usize,
}

/// What `enter` found.
pub enum Entry {
    /// A slot was free and nobody was waiting.
    Served(Permit),
    /// In line.
    Waiting(Ticket),
    /// The line is full.
    Full,
}

/// Why a waiter did not get a slot.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// It waited the whole timeout.
    TimedOut,
    /// The server is shutting down.
    ShuttingDown,
    /// The waiting connection went away (its place was given back at once).
    Gone,
}

impl Slots {
    /// `capacity` slots, all free.
    pub fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            capacity,
            state: Mutex::new(State {
                free: capacity,
                line: VecDeque::new(),
                next_ticket: 0,
            }),
            freed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few integers updated atomically under the lock; a
        // panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot if one is free and nobody waits, else a place in line
    /// unless `max_waiting` already wait.
    pub fn enter(self: &Arc<Self>, max_waiting: usize) -> Entry {
        let mut s = self.lock();
        if s.free > 0 && s.line.is_empty() {
            s.free -= 1;
            return Entry::Served(Permit {
                slots: Arc::clone(self),
            });
        }
        if s.line.len() >= max_waiting {
            return Entry::Full;
        }
        let id = s.next_ticket;
        s.next_ticket += 1;
        s.line.push_back(id);
        Entry::Waiting(Ticket {
            slots: Arc::clone(self),
            id,
            position: s.line.len(),
        })
    }

    /// Connections being served now.
    pub fn served(&self) -> usize {
        self.capacity - self.lock().free
    }

    /// Connections waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().line.len()
    }

    /// Wakes every waiter so it sees the shutdown flag.
    pub fn wake_all(&self) {
        self.freed.notify_all();
    }
}

impl Ticket {
    /// Waits for a slot until `timeout` passes or shutdown begins.
    pub fn wait(self, timeout: Duration, shutdown: &Shutdown) -> Result<Permit, WaitError> {
        self.wait_while(timeout, shutdown, &mut || false)
    }

    /// [`Ticket::wait`], also giving the place back as soon as `gone()` says
    /// the waiting connection went away (asked every 100 ms at least).
    pub fn wait_while(
        self,
        timeout: Duration,
        shutdown: &Shutdown,
        gone: &mut dyn FnMut() -> bool,
    ) -> Result<Permit, WaitError> {
        let deadline = Instant::now() + timeout;
        let slots = Arc::clone(&self.slots);
        let mut s = slots.lock();
        loop {
            if s.free > 0 && s.line.front() == Some(&self.id) {
                s.line.pop_front();
                s.free -= 1;
                // The next in line may be able to go too.
                slots.freed.notify_all();
                return Ok(Permit {
                    slots: Arc::clone(&slots),
                });
            }
            let now = Instant::now();
            let failure = if shutdown.is_triggered() {
                Some(WaitError::ShuttingDown)
            } else if now >= deadline {
                Some(WaitError::TimedOut)
            } else if gone() {
                Some(WaitError::Gone)
            } else {
                None
            };
            if let Some(e) = failure {
                s.line.retain(|&t| t != self.id);
                slots.freed.notify_all();
                return Err(e);
            }
            let wait = (deadline - now).min(SHUTDOWN_POLL);
            s = slots
                .freed
                .wait_timeout(s, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slots.lock().free += 1;
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_capacity_and_waiters_go_in_arrival_order() {
        let slots = Slots::new(2);
        let shutdown = Shutdown::new();
        let a = match slots.enter(10) {
            Entry::Served(p) => p,
            _ => panic!("first is served"),
        };
        let _b = match slots.enter(10) {
            Entry::Served(p) => p,
            _ => panic!("second is served"),
        };
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..4 {
            let ticket = match slots.enter(10) {
                Entry::Waiting(t) => t,
                _ => panic!("third and later wait"),
            };
            assert_eq!(ticket.position, i + 1);
            let (order, shutdown) = (Arc::clone(&order), shutdown.clone());
            handles.push(std::thread::spawn(move || {
                let permit = ticket.wait(Duration::from_secs(10), &shutdown).unwrap();
                order.lock().unwrap().push(i);
                std::thread::sleep(Duration::from_millis(20));
                drop(permit);
            }));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(slots.served(), 2);
        assert_eq!(slots.waiting(), 4);
        drop(a);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(slots.served(), 1);
    }

    #[test]
    fn concurrency_is_bounded_under_contention() {
        let slots = Slots::new(3);
        let shutdown = Shutdown::new();
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (slots, shutdown, now, peak) = (
                    Arc::clone(&slots),
                    shutdown.clone(),
                    Arc::clone(&now),
                    Arc::clone(&peak),
                );
                std::thread::spawn(move || {
                    let permit = match slots.enter(100) {
                        Entry::Served(p) => p,
                        Entry::Waiting(t) => t.wait(Duration::from_secs(10), &shutdown).unwrap(),
                        Entry::Full => panic!("line has room"),
                    };
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn waiting_times_out_leaves_the_line_and_full_line_refuses() {
        let slots = Slots::new(1);
        let shutdown = Shutdown::new();
        let _held = slots.enter(1);
        let t = match slots.enter(1) {
            Entry::Waiting(t) => t,
            _ => panic!(),
        };
        assert!(matches!(slots.enter(1), Entry::Full));
        assert_eq!(
            t.wait(Duration::from_millis(30), &shutdown).err(),
            Some(WaitError::TimedOut)
        );
        assert_eq!(slots.waiting(), 0);
        let t = match slots.enter(1) {
            Entry::Waiting(t) => t,
            _ => panic!(),
        };
        shutdown.trigger();
        assert_eq!(
            t.wait(Duration::from_secs(5), &shutdown).err(),
            Some(WaitError::ShuttingDown)
        );
    }

    #[test]
    fn a_waiter_that_goes_away_gives_its_place_back_at_once() {
        let slots = Slots::new(1);
        let shutdown = Shutdown::new();
        let _held = slots.enter(2);
        let first = match slots.enter(2) {
            Entry::Waiting(t) => t,
            _ => panic!(),
        };
        let start = Instant::now();
        let mut polls = 0;
        let result = first.wait_while(Duration::from_secs(30), &shutdown, &mut || {
            polls += 1;
            polls > 2
        });
        assert_eq!(result.err(), Some(WaitError::Gone));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(slots.waiting(), 0, "the place was given back");
    }
}
