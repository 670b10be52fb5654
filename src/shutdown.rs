//! The shutdown signal: one flag every thread checks, set by SIGINT/SIGTERM
//! (or by a test), plus wake-ups for threads blocked where a flag is not seen.

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

/// Turns the first SIGINT or SIGTERM into a graceful shutdown; a second one
/// exits at once (status 130), for when draining takes too long.
pub fn install_signal_handlers(shutdown: Shutdown) -> std::io::Result<()> {
    on_signals(move |signal, count| {
        if count > 1 {
            log::warn!("second signal {signal}: exiting now without draining");
            std::process::exit(130);
        }
        log::info!(
            "signal {signal}: shutting down (stop accepting, drain the queue, commit, answer); \
             send it again to exit at once"
        );
        shutdown.trigger();
    })
}

/// Calls `action(signal, how_many_so_far)` on a thread of its own for every
/// SIGINT or SIGTERM.
pub fn on_signals(action: impl Fn(i32, usize) + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for (count, signal) in signals.forever().enumerate() {
                action(signal, count + 1);
            }
        })?;
    Ok(())
}
