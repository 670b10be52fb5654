//! Incidents: from flagged packets to a short list a person acts on.
//!
//! With `detector.contamination` = 0.1 a tenth of ordinary traffic is flagged
//! by construction, so single red rows are not worth a look. The worker feeds
//! every committed packet with its verdict to a [`Grouper`] (packet time, in
//! arrival order), which keeps, per host, how many *strong* anomalies (score
//! at least `incidents.strong_score`) it took part in lately and what share of
//! its recent packets they are. An incident opens for a host when both pass
//! their bars (or one packet scores `incidents.open_score`); from then on every
//! flagged packet to or from that host joins it until none came for
//! `incidents.gap_s`. See [`grouper`] for the rules and why.
//!
//! The incident's words come from the model's explanation (#9) of its
//! highest-scoring packet: [`explain`]. What a person says is normal is a
//! suppression rule: [`rules`].

pub mod explain;
pub mod grouper;
pub mod rules;

pub use grouper::{Grouper, Incident, Opening, Role, Seen};
