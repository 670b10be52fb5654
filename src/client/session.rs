//! A sender's connection to the server: pipelined sending with a bounded
//! window of packets in flight, a reader thread that takes the verdicts, and
//! reconnection with backoff that resends every packet without a verdict
//! (same `seq`, so the server stores each once).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::generate::Truth;
use super::report::Tally;
use super::tls::Failure;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the session gave up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The first connection found nothing listening for the whole first budget.
    #[error(
        "nothing listens on {addr} ({last}) — is `netsentinel server` running? \
         (tried for {secs} s; --wait keeps trying for {wait} s)"
    )]
    NothingListens {
        /// host:port.
        addr: String,
        /// The last error.
        last: String,
        /// Seconds spent trying.
        secs: u64,
        /// Seconds `--wait` tries for.
        wait: u64,
    },
    /// The server stayed full: no slot (or no place in line) for this sender.
    #[error("the server at {addr} stayed full: {error}")]
    StayedFull {
        /// host:port.
        addr: String,
        /// The server's last refusal.
        error: String,
    },
    /// The TLS handshake failed (certificate not trusted, wrong name, not a
    /// TLS server): trying again would not help.
    #[error("TLS with {addr} failed: {error}")]
    Tls {
        /// host:port.
        addr: String,
        /// rustls's words.
        error: String,
    },
    /// The server closed every connection before its welcome, without a word
    /// (e.g. a TLS server spoken to in plain TCP).
    #[error(
        "the server at {addr} closed the connection before its welcome; if it runs with \
         TLS (server.tls_cert), connect with --tls-ca FILE or --tls"
    )]
    NoWelcome {
        /// host:port.
        addr: String,
    },
    /// Ctrl-C or SIGTERM while connecting or reconnecting.
    #[error("stopped while connecting to {addr}")]
    Stopped {
        /// host:port.
        addr: String,
    },
    /// The server could not be reached for the whole reconnect budget.
    #[error(
        "cannot reach the server at {addr} ({last}); is `netsentinel server` running there? \
             (gave up after {secs} s)"
    )]
    Unreachable {
        /// host:port.
        addr: String,
        /// The last error.
        last: String,
        /// Seconds spent trying.
        secs: u64,
    },
    /// The server refused the hello itself (the name is in use, or a token is
    /// missing or wrong): trying again would not help.
    #[error("the server at {addr} refused this sender: {error}")]
    Refused {
        /// host:port.
        addr: String,
        /// The server's words.
        error: String,
    },
}

/// A packet sent and not yet answered.
struct InFlight {
    line: Arc<[u8]>,
    first_sent: Instant,
    truth: Option<Truth>,
}

/// Packets answered without a score whose truth is kept for a late verdict, at most.
const MAX_AWAITING_LATE: usize = 100_000;

#[derive(Default)]
struct State {
    inflight: BTreeMap<u64, InFlight>,
    /// The truth of packets answered without a score, by seq, for their late verdict.
    awaiting_late: std::collections::HashMap<u64, Option<Truth>>,
    tally: Tally,
    /// Connection generation; a reader that ends marks its generation dead.
    generation: u64,
    dead: Option<u64>,
    /// The server refused the hello (a closing error on line 1).
    refused: Option<String>,
    /// The first seq the server allows this run (from the first welcome).
    next_seq: Option<u64>,
    /// The server's last refusal of a whole connection (busy, waited too long).
    last_refusal: Option<String>,
    /// Generation of the last welcome received.
    welcomed: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    verbose: bool,
    /// Called for every flagged packet when verbose (progress-bar aware printing).
    printer: Box<dyn Fn(String) + Send + Sync>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Releases `st` until the state changes or `timeout` passes.
    fn wait_for_change(&self, st: MutexGuard<'_, State>, timeout: Duration) {
        let _ = self
            .changed
            .wait_timeout(st, timeout)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// The sender side.
pub struct Session {
    addr: String,
    name: String,
    /// The sender's token, sent in every hello.
    token: Option<String>,
    /// TLS to the server, when asked for.
    tls: Option<super::tls::TlsClient>,
    window: usize,
    /// How long the first connection (and getting a slot) may take.
    first_budget: Duration,
    /// How long a reconnection may take.
    give_up: Duration,
    shared: Arc<Shared>,
    stream: Option<TcpStream>,
    reader: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Session {
    /// Connects (retrying with backoff for up to `first_budget`), says hello
    /// and waits for the welcome; later reconnections retry for `give_up`.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        addr: &str,
        name: &str,
        token: Option<&str>,
        tls: Option<super::tls::TlsClient>,
        window: usize,
        first_budget: Duration,
        give_up: Duration,
        verbose: bool,
        printer: Box<dyn Fn(String) + Send + Sync>,
        stop: Arc<AtomicBool>,
    ) -> Result<Session, SessionError> {
        let mut s = Session {
            addr: addr.to_string(),
            name: name.to_string(),
            token: token.map(str::to_string),
            tls,
            window: window.max(1),
            first_budget,
            give_up,
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                verbose,
                printer,
            }),
            stream: None,
            reader: None,
            stop,
        };
        s.reconnect()?;
        s.await_welcome()?;
        Ok(s)
    }

    /// Waits for the server's welcome (which names the first seq to use),
    /// reconnecting when the connection ends before it (e.g. it waited too
    /// long for a slot). Returns early when `stop` is set.
    fn await_welcome(&mut self) -> Result<(), SessionError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let st = self.shared.lock();
            if st.welcomed == st.generation {
                return Ok(());
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(SessionError::Stopped {
                    addr: self.addr.clone(),
                });
            }
            if st.dead != Some(st.generation) && st.refused.is_none() {
                self.shared.wait_for_change(st, Duration::from_millis(50));
                continue;
            }
            // Refused whole (line full, waited too long): try again a
            // little, then say so rather than wait for ever.
            let refusal = st
                .refused
                .is_none()
                .then(|| st.last_refusal.clone())
                .flatten();
            let refused = st.refused.is_some();
            drop(st);
            if refusal.is_none() && !refused && started.elapsed() >= self.first_budget {
                // Closed before any welcome, again and again, without a word.
                return Err(SessionError::NoWelcome {
                    addr: self.addr.clone(),
                });
            }
            if let Some(error) = refusal {
                if started.elapsed() >= self.first_budget {
                    return Err(SessionError::StayedFull {
                        addr: self.addr.clone(),
                        error,
                    });
                }
                log::warn!("server refused the connection ({error}); retrying");
                self.pause(backoff)?;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            self.reconnect()?;
        }
    }

    /// The first seq this run may use: one above the highest the server has
    /// stored for this name (1 for a new name), from the welcome.
    pub fn next_seq(&self) -> u64 {
        self.shared.lock().next_seq.unwrap_or(1)
    }

    /// Sends one packet line under `seq`, waiting while the window is full.
    pub fn send(
        &mut self,
        seq: u64,
        line: Vec<u8>,
        truth: Option<Truth>,
    ) -> Result<(), SessionError> {
        let line: Arc<[u8]> = Arc::from(line);
        loop {
            let mut st = self.shared.lock();
            if st.dead == Some(st.generation) {
                drop(st);
                self.reconnect()?;
                continue;
            }
            if st.inflight.len() >= self.window {
                self.shared.wait_for_change(st, Duration::from_millis(50));
                continue;
            }
            st.tally.sent(truth);
            st.inflight.insert(
                seq,
                InFlight {
                    line: Arc::clone(&line),
                    first_sent: Instant::now(),
                    truth,
                },
            );
            break;
        }
        let written = match self.stream.as_mut() {
            Some(stream) => stream.write_all(&line).is_ok(),
            None => false,
        };
        if !written {
            // The reader will notice too; reconnecting resends this packet.
            self.reconnect()?;
        }
        Ok(())
    }

    /// Waits until every packet sent has its verdict, reconnecting as needed,
    /// for at most `timeout`. Returns how many are still unanswered.
    pub fn drain(&mut self, timeout: Duration) -> Result<usize, SessionError> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.shared.lock();
            if st.inflight.is_empty() || Instant::now() >= deadline {
                return Ok(st.inflight.len());
            }
            if st.dead == Some(st.generation) {
                drop(st);
                self.reconnect()?;
                continue;
            }
            self.shared.wait_for_change(st, Duration::from_millis(100));
        }
    }

    /// A copy of the counts so far.
    pub fn tally(&self) -> Tally {
        self.shared.lock().tally.clone()
    }

    /// Packets sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().inflight.len()
    }

    /// Closes the connection.
    pub fn close(mut self) -> Tally {
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.tally()
    }

    /// (Re)connects with backoff, says hello, starts a reader and resends
    /// every packet still in flight, in seq order.
    fn reconnect(&mut self) -> Result<(), SessionError> {
        {
            let mut st = self.shared.lock();
            if let Some(error) = st.refused.clone() {
                // Before any welcome the refusal is final (the name is taken
                // or the token wrong). After one, it is our own earlier
                // connection the server has not seen end yet: retry.
                if st.welcomed == 0 {
                    return Err(SessionError::Refused {
                        addr: self.addr.clone(),
                        error,
                    });
                }
                log::warn!("server refused the reconnection ({error}); retrying");
                st.refused = None;
            }
        }
        if let Some(old) = self.stream.take() {
            let _ = old.shutdown(std::net::Shutdown::Both);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let first_attempt = self.shared.lock().welcomed == 0;
        let budget = if first_attempt {
            self.first_budget
        } else {
            self.give_up
        };
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err(SessionError::Stopped {
                    addr: self.addr.clone(),
                });
            }
            match self.open() {
                Ok(()) => break,
                Err(Failure::Final(error)) => {
                    return Err(SessionError::Tls {
                        addr: self.addr.clone(),
                        error,
                    });
                }
                Err(Failure::Passing(e)) => {
                    if started.elapsed() >= budget {
                        let secs = started.elapsed().as_secs();
                        return Err(if first_attempt {
                            SessionError::NothingListens {
                                addr: self.addr.clone(),
                                last: e,
                                secs,
                                wait: super::RECONNECT_BUDGET.as_secs(),
                            }
                        } else {
                            SessionError::Unreachable {
                                addr: self.addr.clone(),
                                last: e,
                                secs,
                            }
                        });
                    }
                    log::warn!(
                        "cannot connect to {} ({e}); retrying in {} ms",
                        self.addr,
                        backoff.as_millis()
                    );
                    self.pause(backoff.min(budget.saturating_sub(started.elapsed())))?;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        Ok(())
    }

    /// Sleeps `wait`, waking every 50 ms to see whether the user stopped.
    fn pause(&self, wait: Duration) -> Result<(), SessionError> {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.stop.load(Ordering::SeqCst) {
                return Err(SessionError::Stopped {
                    addr: self.addr.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), Failure> {
        let mut stream = connect_within(&self.addr, Duration::from_secs(1))?;
        if let Some(tls) = &self.tls {
            stream = tls.wrap(&self.addr, stream, Duration::from_secs(5))?;
        }
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut hello = serde_json::json!({ "hello": self.name });
        if let Some(token) = &self.token {
            hello["token"] = serde_json::json!(token);
        }
        let hello = format!("{hello}\n");
        stream
            .write_all(hello.as_bytes())
            .map_err(|e| e.to_string())?;
        let generation = {
            let mut st = self.shared.lock();
            st.generation += 1;
            if st.generation > 1 {
                st.tally.reconnects += 1;
            }
            st.generation
        };
        let reader_stream = stream.try_clone().map_err(|e| e.to_string())?;
        let shared = Arc::clone(&self.shared);
        self.reader = Some(
            std::thread::Builder::new()
                .name("verdicts".into())
                .spawn(move || read_verdicts(reader_stream, shared, generation))
                .map_err(|e| e.to_string())?,
        );
        // Resend what has no verdict yet.
        let pending: Vec<Arc<[u8]>> = self
            .shared
            .lock()
            .inflight
            .values()
            .map(|p| Arc::clone(&p.line))
            .collect();
        if !pending.is_empty() {
            log::info!(
                "connected to {}; resending {} packets without a verdict",
                self.addr,
                pending.len()
            );
            self.shared.lock().tally.resent += pending.len() as u64;
        }
        for line in pending {
            stream.write_all(&line).map_err(|e| e.to_string())?;
        }
        self.stream = Some(stream);
        Ok(())
    }
}

/// Connects to `addr` (host:port, resolved), each address tried for at most
/// `timeout`, so Ctrl-C is seen soon even when packets to the server vanish.
fn connect_within(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    use std::net::ToSocketAddrs;
    let mut last = format!("{addr} resolves to no address");
    for a in addr.to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The reader thread of one connection generation.
fn read_verdicts(stream: TcpStream, shared: Arc<Shared>, generation: u64) {
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            log::warn!("server sent a line that is not JSON: {}", line.trim_end());
            continue;
        };
        if let Some(pos) = v.get("queued") {
            log::info!("server is full: waiting for a slot, position {pos}");
            continue;
        }
        if v.get("welcome").is_some() {
            log::debug!("server says {}", line.trim_end());
            let mut st = shared.lock();
            if st.next_seq.is_none() {
                st.next_seq = v.get("next_seq").and_then(Value::as_u64);
            }
            st.welcomed = generation;
            shared.changed.notify_all();
            continue;
        }
        let seq = v.get("seq").and_then(Value::as_u64);
        let mut st = shared.lock();
        if let Some(error) = v.get("error").and_then(Value::as_str) {
            if v.get("closing").and_then(Value::as_bool) == Some(true) {
                if v.get("line").and_then(Value::as_u64) == Some(1) {
                    // The hello itself was refused: final, not a reason to retry.
                    st.refused = Some(error.to_string());
                } else if v.get("line").and_then(Value::as_u64) == Some(0) {
                    // The whole connection was refused (busy, waited too long).
                    log::warn!("server closes the connection: {error}");
                    st.last_refusal = Some(error.to_string());
                } else {
                    log::warn!("server closes the connection: {error}");
                }
            } else {
                log::warn!("server refused line {}: {error}", v["line"]);
            }
            if let Some(seq) = seq {
                if st.inflight.remove(&seq).is_some() {
                    st.tally.rejected += 1;
                }
            }
            shared.changed.notify_all();
            continue;
        }
        let Some(seq) = seq else { continue };
        let anomaly = v.get("anomaly").and_then(Value::as_bool).unwrap_or(false);
        let score = v.get("score").and_then(Value::as_f64);
        if v.get("late").and_then(Value::as_bool) == Some(true) {
            if let Some(truth) = st.awaiting_late.remove(&seq) {
                st.tally.record_late(anomaly, truth);
            }
            continue;
        }
        let Some(sent) = st.inflight.remove(&seq) else {
            continue;
        };
        if score.is_none() && st.awaiting_late.len() < MAX_AWAITING_LATE {
            st.awaiting_late.insert(seq, sent.truth);
        }
        if v.get("duplicate").and_then(Value::as_bool) == Some(true) {
            st.tally.duplicates += 1;
        }
        st.tally
            .record(sent.first_sent.elapsed(), anomaly, score, sent.truth);
        if shared.verbose && anomaly {
            (shared.printer)(format!(
                "flagged seq {seq} id {} score {:.3}: {}",
                v["id"],
                score.unwrap_or(f64::NAN),
                String::from_utf8_lossy(&sent.line).trim_end()
            ));
        }
        shared.changed.notify_all();
    }
    let mut st = shared.lock();
    if st.generation == generation {
        st.dead = Some(generation);
    }
    shared.changed.notify_all();
}
