//! Live capture from a network interface through libpcap: opens the
//! interface (privilege, interface and filter errors told apart), runs one
//! capture thread that turns each frame into a record with the same converter
//! as capture files ([`super::frame::decode`]), hands records over through a
//! bounded buffer (counting what does not fit as dropped, never growing), keeps
//! libpcap's own drop counters, and optionally writes every frame to rotating
//! pcap files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use pcap_file::DataLink;
use serde::Serialize;

use crate::protocol::Packet;

/// libpcap's read timeout (kernel block retirement; reads never block here).
const READ_TIMEOUT_MS: i32 = 100;
/// The pause when the ring is empty: a burst waits at most this long in the
/// kernel's buffer (32 MiB: far more than 2 ms of any link).
const IDLE_NAP: Duration = Duration::from_millis(2);
/// How often libpcap's drop counters are read (and new drops warned about).
const STATS_EVERY: Duration = Duration::from_secs(1);
/// The kernel buffer libpcap asks for: big enough for bursts of small frames.
const KERNEL_BUFFER_BYTES: i32 = 32 << 20;
/// The largest snap length captured in immediate mode. Immediate mode makes
/// libpcap use a ring of fixed slots sized for the snap length (or the MTU):
/// at 65,535 bytes (whole frames for a capture file, on loopback or with
/// offloads) 32 MiB holds only 256 frames, and a burst of a few thousand
/// overflows it. Past this length the ring packs frames by their real size
/// (TPACKET_V3 blocks, ~30,000 frames of 1 KB), at the price of up to
/// READ_TIMEOUT_MS before a quiet link's frames are read.
const IMMEDIATE_SNAPLEN_MAX: i32 = 2_048;

/// Records buffered for the sender by default.
pub const DEFAULT_BUFFER: u64 = 100_000;
/// Snap length without a capture file: enough for every header a record reads.
pub const HEADERS_SNAPLEN: i32 = 256;
/// Snap length with a capture file: whole frames, for Wireshark.
pub const FULL_SNAPLEN: i32 = 65_535;
/// Size in MB (10^6 bytes) at which a capture file rotates by default.
pub const DEFAULT_ROTATE_MB: u64 = 100;

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The interface (`--list-interfaces` names them; `any` for all).
    pub interface: String,
    /// A BPF filter (tcpdump syntax), already combined with any exclusion.
    pub filter: Option<String>,
    /// Bytes kept of each frame (the record needs the headers only).
    pub snaplen: i32,
    /// Put the interface in promiscuous mode.
    pub promisc: bool,
    /// Records buffered for the sender at most; more are counted as dropped.
    pub buffer: usize,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Write every captured frame here, rotating at `rotate_bytes`.
    pub capture_file: Option<PathBuf>,
    /// Size at which the capture file rotates.
    pub rotate_bytes: u64,
}

impl LiveOptions {
    /// Headers only, no filter, no file, until stopped.
    pub fn on(interface: &str) -> LiveOptions {
        LiveOptions {
            interface: interface.to_string(),
            filter: None,
            snaplen: HEADERS_SNAPLEN,
            promisc: false,
            buffer: DEFAULT_BUFFER as usize,
            count: None,
            duration: None,
            capture_file: None,
            rotate_bytes: DEFAULT_ROTATE_MB * 1_000_000,
        }
    }
}

/// Why a capture could not start or went on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The process may not capture (not root, no CAP_NET_RAW).
    #[error(
        "no permission to capture on {interface} ({message}): run as root, or allow this \
         binary to capture once with: sudo setcap cap_net_raw,cap_net_admin=eip {exe}"
    )]
    Denied {
        /// The interface.
        interface: String,
        /// libpcap's message.
        message: String,
        /// This program's path, for the setcap line.
        exe: String,
    },
    /// No interface has that name.
    #[error(
        "no interface named {interface:?}{message}; `netsentinel client --list-interfaces` \
         shows the ones that can be captured"
    )]
    NoSuchInterface {
        /// The name given.
        interface: String,
        /// libpcap's message, when it had one (with its separator).
        message: String,
    },
    /// The BPF filter does not compile.
    #[error("the capture filter {filter:?} does not compile: {message} (tcpdump's filter syntax: `man pcap-filter`)")]
    BadFilter {
        /// The filter as compiled (with the exclusion of the server's own connection).
        filter: String,
        /// libpcap's message.
        message: String,
    },
    /// The capture file cannot be written.
    #[error("cannot write the capture file {path}: {message}")]
    CaptureFile {
        /// The file.
        path: PathBuf,
        /// The reason.
        message: String,
    },
    /// libpcap could not list the interfaces.
    #[error("cannot list the interfaces: {0}")]
    List(String),
    /// Any other libpcap failure (interface down, driver error).
    #[error("cannot capture on {interface}: {message}")]
    Pcap {
        /// The interface.
        interface: String,
        /// libpcap's message.
        message: String,
    },
}

impl LiveError {
    /// True when the command line is at fault (exit 2); otherwise the
    /// machine is (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LiveError::NoSuchInterface { .. }
                | LiveError::BadFilter { .. }
                | LiveError::CaptureFile { .. }
        )
    }
}

/// The capture's counters, as the report and the progress line show them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CaptureCounts {
    /// Frames libpcap handed over (after the filter).
    pub captured: u64,
    /// Of those, frames without an IP packet or ARP message (no record).
    pub not_records: u64,
    /// Records that did not fit the client's buffer (the sender was slower).
    pub dropped_by_client: u64,
    /// Frames the kernel dropped because libpcap's buffer was full (`ps_drop`).
    pub dropped_by_kernel: u64,
    /// Frames the interface or its driver dropped (`ps_ifdrop`).
    pub dropped_by_interface: u64,
    /// Capture files written (with --capture-file; rotation adds one each time).
    pub files_written: u64,
}

#[derive(Default)]
struct Counters {
    captured: AtomicU64,
    not_records: AtomicU64,
    dropped_by_client: AtomicU64,
    dropped_by_kernel: AtomicU64,
    dropped_by_interface: AtomicU64,
    files_written: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CaptureCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CaptureCounts {
            captured: get(&self.captured),
            not_records: get(&self.not_records),
            dropped_by_client: get(&self.dropped_by_client),
            dropped_by_kernel: get(&self.dropped_by_kernel),
            dropped_by_interface: get(&self.dropped_by_interface),
            files_written: get(&self.files_written),
        }
    }
}

/// What [`LiveCapture::next`] yields.
pub enum LiveNext {
    /// A record to send.
    Record(Box<Packet>),
    /// Nothing arrived within the wait.
    Idle,
    /// The capture ended (count, duration, stop, or a failure) and every
    /// buffered record was taken.
    Done,
}

/// A running capture: its thread, its buffer and its counters.
pub struct LiveCapture {
    rx: Receiver<Box<Packet>>,
    counters: Arc<Counters>,
    failure: Arc<Mutex<Option<LiveError>>>,
    thread: Option<JoinHandle<()>>,
    interface: String,
}

impl LiveCapture {
    /// Opens the interface, compiles the filter and opens the capture file
    /// (every error is returned here, before anything is sent), then starts
    /// capturing until `stop` is set or the count or duration is reached.
    pub fn start(opts: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveCapture, LiveError> {
        let mut cap = open(opts)?;
        if let Some(filter) = opts.filter.as_ref().filter(|f| !f.trim().is_empty()) {
            cap.filter(filter, true).map_err(|e| LiveError::BadFilter {
                filter: filter.clone(),
                message: pcap_message(&e),
            })?;
        }
        let link = DataLink::from(cap.get_datalink().0 as u32);
        let counters = Arc::new(Counters::default());
        let saver = match &opts.capture_file {
            Some(path) => {
                let saver = Saver::open(&cap, path, opts.rotate_bytes)?;
                counters.files_written.store(1, Ordering::Relaxed);
                Some(saver)
            }
            None => None,
        };
        let (tx, rx) = crossbeam_channel::bounded(opts.buffer.max(1));
        let failure = Arc::new(Mutex::new(None));
        let reader = Reader {
            cap,
            link,
            tx,
            saver,
            counters: Arc::clone(&counters),
            failure: Arc::clone(&failure),
            stop,
            count: opts.count,
            until: opts.duration.map(|d| Instant::now() + d),
            interface: opts.interface.clone(),
            warned_client_drops: 0,
        };
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || reader.run())
            .map_err(|e| LiveError::Pcap {
                interface: opts.interface.clone(),
                message: format!("cannot start the capture thread: {e}"),
            })?;
        log::info!(
            "capturing on {} (link type {:?}, snaplen {}, filter {})",
            opts.interface,
            link,
            opts.snaplen,
            opts.filter
                .as_deref()
                .filter(|f| !f.is_empty())
                .unwrap_or("none")
        );
        Ok(LiveCapture {
            rx,
            counters,
            failure,
            thread: Some(thread),
            interface: opts.interface.clone(),
        })
    }

    /// The next record, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> LiveNext {
        match self.rx.recv_timeout(wait) {
            Ok(p) => LiveNext::Record(p),
            Err(RecvTimeoutError::Timeout) => LiveNext::Idle,
            Err(RecvTimeoutError::Disconnected) => LiveNext::Done,
        }
    }

    /// The counters so far.
    pub fn counts(&self) -> CaptureCounts {
        self.counters.snapshot()
    }

    /// Waits for the capture thread (after [`LiveNext::Done`]) and returns the
    /// final counters, or the failure that ended the capture early.
    pub fn finish(mut self) -> (CaptureCounts, Option<LiveError>) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the capture thread on {} panicked", self.interface);
            }
        }
        let failure = self.failure.lock().map(|mut f| f.take()).unwrap_or(None);
        (self.counters.snapshot(), failure)
    }
}

/// Opens `opts.interface` for capture, telling the user's mistakes (no such
/// interface) from the machine's refusals (no privilege).
fn open(opts: &LiveOptions) -> Result<pcap::Capture<pcap::Active>, LiveError> {
    let known = devices()
        .map(|list| list.iter().any(|d| d.name == opts.interface))
        .unwrap_or(true);
    if !known {
        return Err(LiveError::NoSuchInterface {
            interface: opts.interface.clone(),
            message: String::new(),
        });
    }
    let inactive =
        pcap::Capture::from_device(opts.interface.as_str()).map_err(|e| LiveError::Pcap {
            interface: opts.interface.clone(),
            message: pcap_message(&e),
        })?;
    inactive
        .promisc(opts.promisc)
        .snaplen(opts.snaplen)
        .timeout(READ_TIMEOUT_MS)
        .immediate_mode(opts.snaplen <= IMMEDIATE_SNAPLEN_MAX)
        .buffer_size(KERNEL_BUFFER_BYTES)
        .open()
        .map_err(|e| classify_open_error(&opts.interface, &e))?
        // Non-blocking: libpcap on Linux waits for ever on a quiet interface
        // whatever the timeout, and then Ctrl-C or --duration could not end
        // the capture; the thread naps IDLE_NAP when the ring is empty.
        .setnonblock()
        .map_err(|e| LiveError::Pcap {
            interface: opts.interface.clone(),
            message: pcap_message(&e),
        })
}

/// libpcap's activation errors: privilege, a missing device, or other.
fn classify_open_error(interface: &str, e: &pcap::Error) -> LiveError {
    let message = pcap_message(e);
    let lower = message.to_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        LiveError::Denied {
            interface: interface.to_string(),
            message,
            exe: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "netsentinel".into()),
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        LiveError::NoSuchInterface {
            interface: interface.to_string(),
            message: format!(" ({message})"),
        }
    } else {
        LiveError::Pcap {
            interface: interface.to_string(),
            message,
        }
    }
}

fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) if !m.is_empty() => m.clone(),
        other => other.to_string(),
    }
}

/// The capture thread's state.
struct Reader {
    cap: pcap::Capture<pcap::Active>,
    link: DataLink,
    tx: Sender<Box<Packet>>,
    saver: Option<Saver>,
    counters: Arc<Counters>,
    failure: Arc<Mutex<Option<LiveError>>>,
    stop: Arc<AtomicBool>,
    count: Option<u64>,
    until: Option<Instant>,
    interface: String,
    /// Client drops already warned about.
    warned_client_drops: u64,
}

impl Reader {
    fn run(mut self) {
        let mut next_stats = Instant::now() + STATS_EVERY;
        let mut captured = 0u64;
        let mut data = Vec::with_capacity(2048);
        let reason = loop {
            if self.stop.load(Ordering::SeqCst) {
                break "stopped";
            }
            if self.count.is_some_and(|n| captured >= n) {
                break "count reached";
            }
            let now = Instant::now();
            if self.until.is_some_and(|t| now >= t) {
                break "duration reached";
            }
            if now >= next_stats {
                self.read_stats();
                next_stats = now + STATS_EVERY;
            }
            match self.cap.next_packet() {
                Ok(frame) => {
                    captured += 1;
                    let header = *frame.header;
                    data.clear();
                    data.extend_from_slice(frame.data);
                    if let Err(e) = self.take(&header, &data) {
                        self.fail(e);
                        break "the capture file failed";
                    }
                }
                Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_NAP),
                Err(e) => {
                    let message = pcap_message(&e);
                    self.fail(LiveError::Pcap {
                        interface: self.interface.clone(),
                        message,
                    });
                    break "libpcap failed";
                }
            }
        };
        self.read_stats();
        if let Some(saver) = self.saver.as_mut() {
            saver.flush();
        }
        let c = self.counters.snapshot();
        log::info!(
            "capture on {} ended ({reason}): {} frames captured, {} dropped by the client, \
             {} by the kernel, {} by the interface",
            self.interface,
            c.captured,
            c.dropped_by_client,
            c.dropped_by_kernel,
            c.dropped_by_interface
        );
    }

    /// Counts, saves, converts and buffers one frame.
    fn take(&mut self, header: &pcap::PacketHeader, data: &[u8]) -> Result<(), LiveError> {
        self.counters.captured.fetch_add(1, Ordering::Relaxed);
        if let Some(saver) = self.saver.as_mut() {
            saver.write(&self.cap, header, data, &self.counters)?;
        }
        let time = Duration::new(
            header.ts.tv_sec.max(0) as u64,
            (header.ts.tv_usec.clamp(0, 999_999) as u32) * 1000,
        );
        let Some(packet) = super::frame::decode(self.link, data, time) else {
            self.counters.not_records.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Box::new(packet)) {
            // Counted here, warned about with the count by read_stats.
            self.counters
                .dropped_by_client
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads libpcap's counters and warns about new drops, the client's too.
    fn read_stats(&mut self) {
        let by_client = self.counters.dropped_by_client.load(Ordering::Relaxed);
        if by_client > self.warned_client_drops {
            self.warned_client_drops = by_client;
            log::warn!(
                "{}: {by_client} records dropped by the client so far: its buffer of {} records \
                 is full because the server is slower than the interface (--capture-buffer, a \
                 narrower --filter)",
                self.interface,
                self.tx.capacity().unwrap_or(0)
            );
        }
        let Ok(stats) = self.cap.stats() else { return };
        let kernel = u64::from(stats.dropped);
        let interface = u64::from(stats.if_dropped);
        let before = self
            .counters
            .dropped_by_kernel
            .swap(kernel, Ordering::Relaxed);
        let before_if = self
            .counters
            .dropped_by_interface
            .swap(interface, Ordering::Relaxed);
        if kernel > before || interface > before_if {
            log::warn!(
                "{}: {} frames dropped by the kernel and {} by the interface so far (libpcap could \
                 not keep up; a narrower --filter or a smaller --snaplen helps)",
                self.interface,
                kernel,
                interface
            );
        }
    }

    fn fail(&self, e: LiveError) {
        log::error!("{e}");
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(e);
        }
    }
}

/// Writes captured frames to `FILE`, then `FILE.1`, `FILE.2`, … each time the
/// current one reaches the rotation size.
struct Saver {
    base: PathBuf,
    file: pcap::Savefile,
    path: PathBuf,
    bytes: u64,
    rotate_bytes: u64,
    index: u64,
}

/// A pcap file header's bytes; each record adds 16 bytes and its data.
const PCAP_HEADER_BYTES: u64 = 24;
const PCAP_RECORD_HEADER_BYTES: u64 = 16;

impl Saver {
    fn open(
        cap: &pcap::Capture<pcap::Active>,
        base: &Path,
        rotate_bytes: u64,
    ) -> Result<Saver, LiveError> {
        let file = savefile(cap, base)?;
        Ok(Saver {
            base: base.to_path_buf(),
            file,
            path: base.to_path_buf(),
            bytes: PCAP_HEADER_BYTES,
            rotate_bytes: rotate_bytes.max(PCAP_HEADER_BYTES + 1),
            index: 0,
        })
    }

    fn write(
        &mut self,
        cap: &pcap::Capture<pcap::Active>,
        header: &pcap::PacketHeader,
        data: &[u8],
        counters: &Counters,
    ) -> Result<(), LiveError> {
        let size = PCAP_RECORD_HEADER_BYTES + data.len() as u64;
        if self.bytes > PCAP_HEADER_BYTES && self.bytes + size > self.rotate_bytes {
            self.flush();
            counters.files_written.fetch_add(1, Ordering::Relaxed);
            self.index += 1;
            self.path = rotated(&self.base, self.index);
            self.file = savefile(cap, &self.path)?;
            self.bytes = PCAP_HEADER_BYTES;
            log::info!("capture file rotated: now writing {}", self.path.display());
        }
        self.file.write(&pcap::Packet::new(header, data));
        self.bytes += size;
        Ok(())
    }

    fn flush(&mut self) {
        if let Err(e) = self.file.flush() {
            log::warn!("cannot flush {}: {}", self.path.display(), pcap_message(&e));
        }
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.flush();
    }
}

fn savefile(cap: &pcap::Capture<pcap::Active>, path: &Path) -> Result<pcap::Savefile, LiveError> {
    cap.savefile(path).map_err(|e| LiveError::CaptureFile {
        path: path.to_path_buf(),
        message: pcap_message(&e),
    })
}

/// `dir/name.pcap` → `dir/name.N.pcap` (`dir/name` → `dir/name.N`).
fn rotated(base: &Path, index: u64) -> PathBuf {
    match (base.file_stem(), base.extension()) {
        (Some(stem), Some(ext)) => base.with_file_name(format!(
            "{}.{index}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{}.{index}", base.display())),
    }
}

fn devices() -> Result<Vec<pcap::Device>, LiveError> {
    pcap::Device::list().map_err(|e| LiveError::List(pcap_message(&e)))
}

/// The names of the interfaces libpcap can capture, best first.
pub fn interface_names() -> Result<Vec<String>, LiveError> {
    Ok(devices()?.into_iter().map(|d| d.name).collect())
}

/// One line per interface libpcap can capture: name, addresses, description.
pub fn list_interfaces() -> Result<Vec<String>, LiveError> {
    Ok(devices()?
        .iter()
        .map(|d| {
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
            let mut line = d.name.clone();
            if !addrs.is_empty() {
                line.push_str(&format!("  {}", addrs.join(", ")));
            }
            if let Some(desc) = &d.desc {
                line.push_str(&format!("  ({desc})"));
            }
            if !d.flags.is_up() {
                line.push_str("  [down]");
            }
            line
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_keep_the_extension() {
        assert_eq!(
            rotated(Path::new("/tmp/x/cap.pcap"), 2),
            PathBuf::from("/tmp/x/cap.2.pcap")
        );
        assert_eq!(rotated(Path::new("cap"), 1), PathBuf::from("cap.1"));
    }

    #[test]
    fn open_errors_are_told_apart() {
        let denied = classify_open_error(
            "eth0",
            &pcap::Error::PcapError(
                "eth0: You don't have permission to perform this capture on that device \
                 (socket: Operation not permitted)"
                    .into(),
            ),
        );
        assert!(matches!(denied, LiveError::Denied { .. }));
        assert!(!denied.is_usage());
        assert!(denied
            .to_string()
            .contains("setcap cap_net_raw,cap_net_admin=eip"));
        let missing = classify_open_error(
            "nope0",
            &pcap::Error::PcapError("No such device exists".into()),
        );
        assert!(missing.is_usage());
        assert!(missing.to_string().contains("nope0"));
    }
}
