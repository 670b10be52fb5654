//! One served connection, on its own thread: reads lines, parses them, pushes
//! them into the FIFO, and writes back the verdicts the worker sends, in order.
//!
//! The socket is read with a short timeout so the same thread also writes
//! verdicts as they arrive; no second thread per connection is needed. Limits:
//! a line over [`MAX_LINE_BYTES`], invalid UTF-8 or a silence longer than
//! `server.idle_timeout_s` ends the connection with a final error line, after
//! every earlier line has been answered.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown as SocketShutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use crate::protocol::{self, ErrorLine, Line, MAX_LINE_BYTES};

use super::queue::{ConnLink, Job, JobKind, Reply};
use crate::shutdown::Shutdown;

/// How long a read waits before the thread checks for verdicts to write.
const POLL: Duration = Duration::from_millis(2);
/// A client that takes longer than this to accept written bytes is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection keeps draining the client's input.
const LINGER: Duration = Duration::from_secs(2);
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
}

/// Serves `stream` until the client hangs up, breaks a limit, or shutdown.
pub fn serve(stream: TcpStream, peer: SocketAddr, id: u64, ctx: &ConnContext) {
    let mut conn = match Connection::new(stream, peer, id, ctx) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("connection {id} from {peer}: cannot set up socket: {e}");
            return;
        }
    };
    let reason = conn.run();
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
fn lingering_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(SocketShutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
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
    stream: TcpStream,
    ctx: &'a ConnContext,
    id: u64,
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
        stream: TcpStream,
        peer: SocketAddr,
        id: u64,
        ctx: &'a ConnContext,
    ) -> std::io::Result<Connection<'a>> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(Connection {
            stream,
            ctx,
            id,
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
                        self.lines += 1;
                        if let Err(e) = self.handle_line(&rest) {
                            return e;
                        }
                    }
                    self.done_reading = true;
                }
                Ok(n) => {
                    self.last_input = Instant::now();
                    if let Err(e) = self.take_input(&chunk[..n]) {
                        return e;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.outstanding == 0 && self.last_input.elapsed() > self.ctx.idle_timeout {
                        let msg = format!(
                            "idle for more than {} s; closing (server.idle_timeout_s)",
                            self.ctx.idle_timeout.as_secs()
                        );
                        self.write_final(&msg);
                        return "idle timeout".into();
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return format!("read error: {e}"),
            }
        }
    }

    /// Splits input into lines and handles each complete one.
    fn take_input(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(bytes);
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
        match protocol::parse_line(text) {
            Ok(Line::Blank) => Ok(()),
            Ok(Line::Hello(name)) if self.link.is_none() && self.lines == 1 => {
                log::info!("connection {} is sender {name:?}", self.id);
                self.client = Arc::from(name);
                self.out
                    .extend_from_slice(protocol::welcome(self.ctx.max_clients).as_bytes());
                self.out.push(b'\n');
                Ok(())
            }
            Ok(Line::Hello(_)) => self.send(JobKind::Reject {
                seq: None,
                error: "hello must be the first line of a connection".into(),
                closing: false,
            }),
            Ok(Line::Packet(p)) => self.send(JobKind::Packet(p)),
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

    /// Ends reading with a final error line, answered after the lines before it.
    fn fatal(&mut self, seq: Option<u64>, error: String) -> Result<(), String> {
        log::warn!(
            "connection {} line {}: {error}; closing",
            self.id,
            self.lines
        );
        self.done_reading = true;
        self.pending.clear();
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
            let result = self.stream.write_all(&self.out);
            self.out.clear();
            result.map_err(|e| format!("write error: {e}"))?;
        }
        Ok(())
    }

    /// Writes a last error line directly (no verdict is owed after it).
    fn write_final(&mut self, error: &str) {
        protocol::write_line(
            &mut self.out,
            &ErrorLine {
                line: self.lines,
                seq: None,
                error: error.to_string(),
                closing: true,
            },
        );
        let _ = self.stream.write_all(&self.out);
        self.out.clear();
    }
}
