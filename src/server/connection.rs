//! One served connection, on its own thread: reads lines, parses them, pushes
//! them into the FIFO, and writes back the verdicts the worker sends, in order.
//!
//! The socket is read with a short timeout so the same thread also writes
//! verdicts as they arrive; no second thread per connection is needed. Limits
//! (issue #10: a slot is for a sender that sends): a line over
//! [`MAX_LINE_BYTES`] or not UTF-8, no first line within
//! `server.hello_timeout_s`, a line not finished within
//! `server.line_timeout_s`, no complete non-blank line for
//! `server.idle_timeout_s` (or for `server.idle_grace_s` while others wait
//! for a slot), or a hello under a name that is already connected, each end
//! the connection with a final error line saying why, after every earlier
//! line has been answered.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use crate::protocol::{self, ErrorLine, Line, MAX_LINE_BYTES};

use super::names::{LiveNames, NameHold};
use super::queue::{ConnLink, Job, JobKind, Reply};
use super::slots::Slots;
use super::wire::Wire;
use crate::shutdown::Shutdown;
use crate::store::{queries, senders, StoreError};

/// How long a read waits before the thread checks for verdicts to write.
const POLL: Duration = Duration::from_millis(2);
/// A client that takes longer than this to accept written bytes is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection keeps draining the client's input.
const LINGER: Duration = Duration::from_secs(2);
/// How long a hello waits for its name's earlier connection to finish
/// answering before it is refused as taken.
const NAME_PATIENCE: Duration = Duration::from_secs(1);
/// Tries of each question a hello asks the database (who may send, the
/// sender's mark) before the sender is told to try again: a pooled
/// connection whose backend was just terminated (a restart, a failover,
/// `pg_terminate_backend`) fails once and the pool replaces it.
const DATABASE_ATTEMPTS: u32 = 3;
/// The pause before the second try, doubled before the third.
const DATABASE_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// What the connection needs from the server.
pub struct ConnContext {
    /// The FIFO to the worker.
    pub jobs: Sender<Job>,
    /// Shutdown flag.
    pub shutdown: Shutdown,
    /// `server.max_clients`, for the welcome line.
    pub max_clients: usize,
    /// `server.idle_timeout_s`.
    pub idle_timeout: Duration,
    /// `server.hello_timeout_s`.
    pub hello_timeout: Duration,
    /// `server.line_timeout_s`.
    pub line_timeout: Duration,
    /// `server.idle_grace_s`.
    pub idle_grace: Duration,
    /// The slots, to see whether anyone waits.
    pub slots: Arc<Slots>,
    /// The sender names connected now.
    pub names: Arc<LiveNames>,
    /// The database, to read a sender's mark for its welcome.
    pub pool: crate::store::Pool,
}

/// Serves `stream` until the client hangs up, breaks a limit, or shutdown.
pub fn serve(stream: Wire, peer: SocketAddr, id: u64, ctx: &ConnContext) {
    let mut conn = match Connection::new(stream, peer, id, ctx) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("connection {id} from {peer}: cannot set up socket: {e}");
            return;
        }
    };
    let reason = conn.run();
    // Every line is answered (or the peer is gone): the name is free again.
    conn.name_hold = None;
    log::info!(
        "connection {id} from {peer} ({}) closed: {reason}; {} lines read",
        conn.client,
        conn.lines
    );
    lingering_close(&mut conn.stream);
}

/// Closes our side, then reads and discards what the client still sends for
/// a moment, so the kernel does not answer unread input with a reset that
/// could destroy our last lines before the client reads them.
fn lingering_close(stream: &mut Wire) {
    stream.close_write();
    let _ = stream
        .socket()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

struct Connection<'a> {
    stream: Wire,
    ctx: &'a ConnContext,
    id: u64,
    peer: SocketAddr,
    /// The sender name this connection holds (from its hello until it stops reading).
    name_hold: Option<NameHold>,
    started: Instant,
    /// When the line now in `pending` began to arrive.
    line_started: Option<Instant>,
    /// A complete non-blank line has arrived.
    got_line: bool,
    /// The sender passed the registered-senders check (hello or anonymous).
    admitted: bool,
    client: Arc<str>,
    link: Option<(Arc<ConnLink>, Receiver<Vec<Reply>>)>,
    /// Bytes read but not yet split into lines.
    pending: Vec<u8>,
    /// Bytes to write.
    out: Vec<u8>,
    lines: u64,
    /// Jobs sent whose reply has not been written yet.
    outstanding: usize,
    last_input: Instant,
    /// Reading has stopped (end of input, shutdown, or a fatal line).
    done_reading: bool,
}

impl<'a> Connection<'a> {
    fn new(
        stream: Wire,
        peer: SocketAddr,
        id: u64,
        ctx: &'a ConnContext,
    ) -> std::io::Result<Connection<'a>> {
        let socket = stream.socket();
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(POLL))?;
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(Connection {
            stream,
            ctx,
            id,
            peer,
            name_hold: None,
            started: Instant::now(),
            line_started: None,
            got_line: false,
            admitted: false,
            client: Arc::from(format!("anonymous@{peer}")),
            link: None,
            pending: Vec::with_capacity(READ_CHUNK),
            out: Vec::with_capacity(READ_CHUNK),
            lines: 0,
            outstanding: 0,
            last_input: Instant::now(),
            done_reading: false,
        })
    }

    /// The main loop; returns why the connection ended.
    fn run(&mut self) -> String {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            if let Err(e) = self.flush_replies(false) {
                return e;
            }
            if self.done_reading {
                if self.outstanding == 0 {
                    return "all lines answered".into();
                }
                if let Err(e) = self.flush_replies(true) {
                    return e;
                }
                continue;
            }
            if self.ctx.shutdown.is_triggered() {
                self.done_reading = true;
                continue;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    // End of input: a last line without its newline still counts.
                    if !self.pending.is_empty() {
                        let rest = std::mem::take(&mut self.pending);
                        self.line_started = None;
                        self.lines += 1;
                        if let Err(e) = self.handle_line(&rest) {
                            return e;
                        }
                    }
                    self.done_reading = true;
                }
                Ok(n) => {
                    if let Err(e) = self.take_input(&chunk[..n]) {
                        return e;
                    }
                    if let Err(e) = self.check_deadlines() {
                        return e;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if let Err(e) = self.check_deadlines() {
                        return e;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return format!("read error: {e}"),
            }
        }
    }

    /// Ends the connection that holds its slot without sending: a first line
    /// or a started line overdue (answered in turn, like any fatal line), or
    /// no complete line for the idle timeout, or for the grace while others
    /// wait (told directly: no verdict is owed then). `Err` ends the loop.
    fn check_deadlines(&mut self) -> Result<(), String> {
        if self.done_reading {
            return Ok(());
        }
        let ctx = self.ctx;
        if self
            .line_started
            .is_some_and(|t| t.elapsed() > ctx.line_timeout)
        {
            let msg = format!(
                "a line took more than {} s from its first byte to its newline (server.line_timeout_s)",
                ctx.line_timeout.as_secs()
            );
            return self.fatal(None, msg);
        }
        if !self.got_line && self.started.elapsed() > ctx.hello_timeout {
            let msg = format!(
                "no complete line within {} s of connecting (server.hello_timeout_s); send the hello first",
                ctx.hello_timeout.as_secs()
            );
            return self.fatal(None, msg);
        }
        if self.outstanding > 0 {
            return Ok(());
        }
        let idle = self.last_input.elapsed();
        if idle > ctx.idle_timeout {
            let msg = format!(
                "idle for more than {} s; closing (server.idle_timeout_s)",
                ctx.idle_timeout.as_secs()
            );
            self.write_final(&msg);
            return Err("idle timeout".into());
        }
        if idle > ctx.idle_grace {
            let waiting = ctx.slots.waiting();
            if waiting > 0 {
                let msg = format!(
                    "idle for {} s while {waiting} connection(s) wait for a slot; closing \
                     (server.idle_grace_s); reconnect when you have packets to send",
                    idle.as_secs()
                );
                self.write_final(&msg);
                return Err(format!("idle while {waiting} waited for a slot"));
            }
        }
        Ok(())
    }

    /// Splits input into lines and handles each complete one.
    fn take_input(&mut self, bytes: &[u8]) -> Result<(), String> {
        let had_partial = !self.pending.is_empty();
        self.pending.extend_from_slice(bytes);
        let completed = bytes.contains(&b'\n');
        if self.pending.is_empty() {
            self.line_started = None;
        } else if completed || !had_partial || self.line_started.is_none() {
            // Bytes after this chunk's last newline begin a new line now.
            self.line_started = Some(Instant::now());
        }
        if bytes.last() == Some(&b'\n') {
            self.line_started = None;
        }
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            self.lines += 1;
            if end - start > MAX_LINE_BYTES {
                return self.fatal(None, format!("line is longer than {MAX_LINE_BYTES} bytes"));
            }
            let line = std::mem::take(&mut self.pending);
            let result = self.handle_line(&line[start..end]);
            self.pending = line;
            result?;
            if self.done_reading {
                self.pending.clear();
                return Ok(());
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            self.lines += 1;
            return self.fatal(None, format!("line is longer than {MAX_LINE_BYTES} bytes"));
        }
        Ok(())
    }

    fn handle_line(&mut self, raw: &[u8]) -> Result<(), String> {
        let Ok(text) = std::str::from_utf8(raw) else {
            return self.fatal(None, "line is not valid UTF-8".into());
        };
        let parsed = protocol::parse_line(text);
        if !matches!(parsed, Ok(Line::Blank)) {
            // Only complete non-blank lines count as activity.
            self.got_line = true;
            self.last_input = Instant::now();
        }
        match parsed {
            Ok(Line::Blank) => Ok(()),
            Ok(Line::Hello(hello)) if self.link.is_none() && self.lines == 1 => self.hello(hello),
            Ok(Line::Hello(_)) => self.send(JobKind::Reject {
                seq: None,
                error: "hello must be the first line of a connection".into(),
                closing: false,
            }),
            Ok(Line::Packet(p)) => {
                if !self.admitted {
                    self.admit_anonymous()?;
                    if self.done_reading {
                        return Ok(());
                    }
                }
                self.send(JobKind::Packet(p))
            }
            Err(e) => {
                log::debug!("connection {} line {}: {}", self.id, self.lines, e.message);
                self.send(JobKind::Reject {
                    seq: e.seq,
                    error: e.message,
                    closing: false,
                })
            }
        }
    }

    /// The hello: the name's token (when senders are registered), the name
    /// free (one live connection per name), then the welcome with its next seq.
    fn hello(&mut self, hello: protocol::Hello) -> Result<(), String> {
        let name: Arc<str> = Arc::from(hello.name.as_str());
        let token = hello.token.as_deref();
        match self.ask_database(|c| senders::admit(c, Some(&name), token)) {
            Ok(admission) => {
                if let Some(why) = admission.refusal(&name) {
                    log::warn!("connection {} from {}: {why}", self.id, self.peer);
                    return self.fatal(None, why);
                }
            }
            Err(e) => return self.database_down(&name, &e.to_string()),
        }
        match self
            .ctx
            .names
            .claim_within(&name, self.id, self.peer, NAME_PATIENCE)
        {
            Ok(hold) => self.name_hold = Some(hold),
            Err(other) => {
                let msg =
                    format!("sender {name:?} is already connected from {other}; pick another name");
                return self.fatal(None, msg);
            }
        }
        // The name is ours, so its mark cannot move under us: every earlier
        // connection under it has had all its lines answered.
        let next_seq = match self.ask_database(|c| queries::sender_mark(c, &name)) {
            Ok(m) => m.map_or(1, |m| m.max(0) as u64 + 1),
            Err(e) => return self.database_down(&name, &e.to_string()),
        };
        self.admitted = true;
        log::info!(
            "connection {} is sender {name:?}, next seq {next_seq}",
            self.id
        );
        self.client = name;
        self.out
            .extend_from_slice(protocol::welcome(self.ctx.max_clients, next_seq).as_bytes());
        self.out.push(b'\n');
        Ok(())
    }

    /// A packet before any hello: allowed only while no sender is registered.
    fn admit_anonymous(&mut self) -> Result<(), String> {
        let admission = self.ask_database(|c| senders::admit(c, None, None));
        match admission {
            Ok(senders::Admission::Open) => {
                self.admitted = true;
                Ok(())
            }
            Ok(_) => self.fatal(
                None,
                "this server accepts registered senders only: send {\"hello\": NAME, \"token\": TOKEN} first"
                    .into(),
            ),
            Err(e) => self.database_down(&self.client.clone(), &e.to_string()),
        }
    }

    /// `ask` on a connection from the pool, again on another one when the
    /// query failed for a passing reason (the connection was cut, the server
    /// is shutting down or failing over), up to DATABASE_ATTEMPTS in all. A
    /// pool that gives no connection in time is not asked again: it waited.
    fn ask_database<T>(
        &self,
        mut ask: impl FnMut(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let result = self
                .ctx
                .pool
                .get()
                .map_err(StoreError::from)
                .and_then(|mut c| ask(&mut c));
            match result {
                Err(e @ StoreError::Query(_))
                    if e.is_transient() && attempt < DATABASE_ATTEMPTS =>
                {
                    log::info!(
                        "connection {}: database question failed ({e}); asking again",
                        self.id
                    );
                    std::thread::sleep(DATABASE_RETRY_PAUSE * 2u32.pow(attempt - 1));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The database could not be asked who may send: told on line 0 (a passing
    /// problem, so clients retry) and closed.
    fn database_down(&mut self, name: &str, error: &str) -> Result<(), String> {
        log::warn!(
            "connection {}: cannot check sender {name:?}: {error}",
            self.id
        );
        self.name_hold = None;
        self.write_final_at(
            0,
            &format!("cannot check sender {name:?} in the database ({error}); try again"),
        );
        self.done_reading = true;
        Err("database unavailable at hello".into())
    }

    /// Ends reading with a final error line, answered after the lines before it.
    fn fatal(&mut self, seq: Option<u64>, error: String) -> Result<(), String> {
        log::warn!(
            "connection {} line {}: {error}; closing",
            self.id,
            self.lines
        );
        self.done_reading = true;
        self.pending.clear();
        self.line_started = None;
        self.send(JobKind::Reject {
            seq,
            error: format!("{error}; closing the connection"),
            closing: true,
        })
    }

    /// Pushes a job into the FIFO; while it is full, keeps writing verdicts.
    fn send(&mut self, kind: JobKind) -> Result<(), String> {
        let (link, _) = self
            .link
            .get_or_insert_with(|| ConnLink::new(self.id, Arc::clone(&self.client)));
        let mut job = Job::new(Arc::clone(link), self.lines, kind);
        loop {
            match self.ctx.jobs.send_timeout(job, POLL) {
                Ok(()) => {
                    self.outstanding += 1;
                    return Ok(());
                }
                Err(SendTimeoutError::Timeout(back)) => {
                    job = back;
                    self.flush_replies(false)?;
                }
                Err(SendTimeoutError::Disconnected(_)) => return Err("server stopping".into()),
            }
        }
    }

    /// Writes every verdict that has arrived (waiting briefly for one when `wait`).
    fn flush_replies(&mut self, wait: bool) -> Result<(), String> {
        if let Some((link, rx)) = &self.link {
            if link.is_too_slow() {
                let msg = "too many verdicts left unread; closing (read your verdicts, then reconnect and resend)";
                self.write_final(msg);
                return Err("client stopped reading its verdicts".into());
            }
            let mut first = if wait {
                rx.recv_timeout(Duration::from_millis(50)).ok()
            } else {
                None
            };
            let (mut written, mut answers) = (0, 0);
            while let Some(replies) = first.take().or_else(|| rx.try_recv().ok()) {
                written += replies.len();
                for reply in &replies {
                    answers += usize::from(reply.answers_a_line());
                    match reply {
                        Reply::Verdict(v) | Reply::Late(v) => {
                            protocol::write_line(&mut self.out, v)
                        }
                        Reply::Error(e) => protocol::write_line(&mut self.out, e),
                    }
                }
            }
            self.outstanding -= answers;
            link.written(written);
        }
        if !self.out.is_empty() {
            let out = &self.out;
            let result = self
                .stream
                .write_all(out)
                .and_then(|()| self.stream.flush());
            self.out.clear();
            result.map_err(|e| format!("write error: {e}"))?;
        }
        Ok(())
    }

    /// Writes a last error line directly (no verdict is owed after it).
    fn write_final(&mut self, error: &str) {
        self.write_final_at(self.lines, error);
    }

    /// [`Connection::write_final`] answering line `line` (0: the connection
    /// itself, a passing refusal the client retries).
    fn write_final_at(&mut self, line: u64, error: &str) {
        protocol::write_line(
            &mut self.out,
            &ErrorLine {
                line,
                seq: None,
                error: error.to_string(),
                closing: true,
            },
        );
        let _ = self.stream.write_all(&self.out);
        let _ = self.stream.flush();
        self.out.clear();
    }
}
