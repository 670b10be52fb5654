//! Shutdown as a feature: one flag every thread checks, set by SIGINT/SIGTERM
//! (or by a test), wake-ups for threads blocked where a flag is not seen, and
//! the one signal handler every subcommand installs (the first signal stops
//! gracefully, a second exits at once with status 130).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Waker = Box<dyn Fn() + Send>;

/// A cloneable handle on the server's shutdown state.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// A fresh, untriggered handle.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// True once shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Begins shutdown (once) and runs every registered waker.
    pub fn trigger(&self) {
        if self.inner.flag.swap(true, Ordering::SeqCst) {
            return;
        }
        let wakers = match self.inner.wakers.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        for wake in wakers.iter() {
            wake();
        }
    }

    /// Registers something to run when shutdown begins (e.g. unblock `accept`).
    pub fn on_trigger(&self, wake: impl Fn() + Send + 'static) {
        match self.inner.wakers.lock() {
            Ok(mut w) => w.push(Box::new(wake)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(wake)),
        }
    }
}

/// Exit status after a second signal: 128 + SIGINT, as shells report it.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

/// Runs `first` on the first SIGINT or SIGTERM, after logging `what` it starts
/// (e.g. "shutting down: drain the queue, commit, answer"); a second signal
/// exits the process at once with [`SECOND_SIGNAL_EXIT`], for when stopping
/// gracefully takes too long. The handler runs on a thread of its own.
pub fn on_signals(what: &'static str, first: impl Fn() + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for (count, signal) in signals.forever().enumerate() {
                if count > 0 {
                    log::warn!("second signal {signal}: exiting now without finishing");
                    std::process::exit(SECOND_SIGNAL_EXIT);
                }
                log::info!("signal {signal}: {what}; send it again to exit at once");
                first();
            }
        })?;
    Ok(())
}

/// Turns the first SIGINT or SIGTERM into `shutdown.trigger()` (see [`on_signals`]).
pub fn trigger_on_signals(shutdown: Shutdown) -> std::io::Result<()> {
    on_signals(
        "shutting down (stop accepting, drain the queue, commit, answer)",
        move || shutdown.trigger(),
    )
}
