//! Packet captures: reading pcap and pcapng files ([`mod@file`]), turning a
//! link-layer frame into a packet record ([`frame`], the one converter), and
//! the label files that say which frames are attacks ([`labels`]), and live
//! capture from an interface through libpcap ([`live`]).

pub mod file;
pub mod frame;
pub mod labels;
pub mod live;

pub use file::{parse_capture, read_capture, Capture, Frame, PcapFileError};
pub use labels::{frame_truth, read_labels, LabelForm, LabelMismatch};
