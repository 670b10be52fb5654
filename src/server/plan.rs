//! Exactly-once planning, pure: given a batch in arrival order and each
//! sender's committed high-water mark (the highest `seq` stored), decide every
//! line's fate before anything is written.
//!
//! - a packet without `seq`, or with a `seq` above everything seen from its
//!   sender (committed or earlier in this batch), is **new**: stored now;
//! - a `seq` already new earlier in this batch is a **resend within the batch**:
//!   answered with that row's verdict;
//! - a `seq` at or below the committed mark is a **resend of a stored packet**:
//!   answered with the stored verdict (looked up by the worker);
//! - any other `seq` (below this batch's top, above the mark, never stored:
//!   a gap filled late) is **refused**: seqs must increase per sender;
//! - a `seq` more than `max_jump` above everything seen from its sender is
//!   **refused** too (`server.max_seq_jump`): one forged seq near 2^63 would
//!   otherwise make the name unusable for ever.
//!
//! Nothing here touches the database or a socket.

use std::collections::HashMap;

use super::queue::JobKind;

/// What happens to one line of the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Stored now as the i-th new row (an index into [`Plan::fresh`]).
    New(usize),
    /// A resend of the i-th new row of this same batch.
    SameBatch(usize),
    /// A resend of the packet with this seq, stored by an earlier batch.
    Stored(i64),
    /// Answered with this error; not stored.
    Refused {
        /// The line's seq, if readable.
        seq: Option<u64>,
        /// What was wrong.
        error: String,
        /// The connection closes after it.
        closing: bool,
    },
}

/// Every line's fate, and what the worker must read and write for them.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// One fate per line, in batch order.
    pub fates: Vec<Fate>,
    /// Batch indices of the packets to store, in order.
    pub fresh: Vec<usize>,
    /// Per sender, the seqs whose stored verdicts are needed.
    pub lookups: HashMap<&'a str, Vec<i64>>,
    /// Per sender, the highest seq this batch stores: the new marks once committed.
    pub new_marks: HashMap<&'a str, i64>,
}

/// The senders in `batch` that carry seqs and have no mark in `marks` yet:
/// their marks must be read before planning.
pub fn unknown_senders<'a>(
    batch: impl IntoIterator<Item = (&'a str, &'a JobKind)>,
    marks: &HashMap<String, i64>,
) -> Vec<&'a str> {
    let mut unknown: Vec<&str> = Vec::new();
    for (client, kind) in batch {
        let with_seq = matches!(kind, JobKind::Packet(p) if p.seq.is_some());
        if with_seq && !marks.contains_key(client) && !unknown.contains(&client) {
            unknown.push(client);
        }
    }
    unknown
}

/// Plans `batch` (each line with its sender) against the committed `marks`;
/// a sender missing from `marks` has stored nothing. A seq more than
/// `max_jump` above the sender's highest (0: no limit) is refused.
pub fn plan<'a>(
    batch: impl IntoIterator<Item = (&'a str, &'a JobKind)>,
    marks: &HashMap<String, i64>,
    max_jump: u64,
) -> Plan<'a> {
    let mut plan = Plan::default();
    let mut in_batch: HashMap<(&str, i64), usize> = HashMap::new();
    for (at, (client, kind)) in batch.into_iter().enumerate() {
        let fate = match kind {
            JobKind::Reject {
                seq,
                error,
                closing,
            } => Fate::Refused {
                seq: *seq,
                error: error.clone(),
                closing: *closing,
            },
            JobKind::Packet(p) => match p.seq {
                None => plan.store(at),
                Some(seq) => {
                    let seq = seq as i64;
                    let committed = marks.get(client).copied().unwrap_or(-1);
                    let top = plan
                        .new_marks
                        .get(client)
                        .copied()
                        .unwrap_or(-1)
                        .max(committed);
                    let jump = (seq as i128) - (top.max(0) as i128);
                    if seq > top && max_jump > 0 && jump > max_jump as i128 {
                        Fate::Refused {
                            seq: p.seq,
                            error: format!(
                                "seq {seq} jumps {jump} above {}, the highest seq received from \
                                 sender {client:?}; at most {max_jump} is allowed \
                                 (server.max_seq_jump); not stored",
                                top.max(0)
                            ),
                            closing: false,
                        }
                    } else if seq > top {
                        plan.new_marks.insert(client, seq);
                        let fate = plan.store(at);
                        in_batch.insert((client, seq), plan.fresh.len() - 1);
                        fate
                    } else if let Some(&i) = in_batch.get(&(client, seq)) {
                        Fate::SameBatch(i)
                    } else if seq <= committed {
                        plan.lookups.entry(client).or_default().push(seq);
                        Fate::Stored(seq)
                    } else {
                        Fate::Refused {
                            seq: p.seq,
                            error: format!(
                                "seq {seq} is not above {top}, the highest seq already received \
                                 from sender {client:?}; seq must increase per sender"
                            ),
                            closing: false,
                        }
                    }
                }
            },
        };
        plan.fates.push(fate);
    }
    plan
}

impl Plan<'_> {
    fn store(&mut self, at: usize) -> Fate {
        self.fresh.push(at);
        Fate::New(self.fresh.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Packet;

    fn packet(seq: Option<u64>) -> JobKind {
        JobKind::Packet(Packet {
            seq,
            source_ip: [10, 0, 0, 1].into(),
            dest_ip: [10, 0, 0, 2].into(),
            packet_size: 100,
            protocol: "TCP".into(),
            src_port: None,
            dst_port: None,
            timestamp: None,
            tcp_flags: None,
            icmp_type: None,
        })
    }

    fn marks(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(c, m)| (c.to_string(), *m)).collect()
    }

    fn run<'a>(lines: &'a [(&'a str, JobKind)], m: &HashMap<String, i64>) -> Plan<'a> {
        plan(lines.iter().map(|(c, k)| (*c, k)), m, 1_000_000)
    }

    #[test]
    fn a_seq_far_beyond_the_mark_is_refused_and_moves_nothing() {
        let lines = [
            ("a", packet(Some(i64::MAX as u64))),
            ("a", packet(Some(1_000_011))),
            ("a", packet(Some(11))),
            ("b", packet(Some(1_000_000))),
            ("c", packet(Some(1_000_001))),
        ];
        let p = run(&lines, &marks(&[("a", 10)]));
        assert!(
            matches!(&p.fates[0], Fate::Refused { error, .. } if error.contains("server.max_seq_jump"))
        );
        assert!(
            matches!(&p.fates[1], Fate::Refused { .. }),
            "{:?}",
            p.fates[1]
        );
        assert_eq!(p.fates[2], Fate::New(0), "the honest next seq is stored");
        assert_eq!(
            p.fates[3],
            Fate::New(1),
            "a new sender may start up to the limit"
        );
        assert!(matches!(&p.fates[4], Fate::Refused { .. }));
        assert_eq!(p.new_marks, HashMap::from([("a", 11), ("b", 1_000_000)]));
        let unlimited = plan(lines.iter().map(|(c, k)| (*c, k)), &marks(&[("a", 10)]), 0);
        assert_eq!(unlimited.fates[0], Fate::New(0), "0 turns the limit off");
    }

    #[test]
    fn a_fresh_sender_stores_everything_in_order() {
        let lines = [
            ("a", packet(Some(1))),
            ("a", packet(Some(2))),
            ("a", packet(None)),
        ];
        let p = run(&lines, &marks(&[]));
        assert_eq!(p.fates, [Fate::New(0), Fate::New(1), Fate::New(2)]);
        assert_eq!(p.fresh, [0, 1, 2]);
        assert_eq!(p.new_marks, HashMap::from([("a", 2)]));
        assert!(p.lookups.is_empty());
    }

    #[test]
    fn a_resend_at_or_below_the_mark_is_looked_up_not_stored() {
        let lines = [
            ("a", packet(Some(5))),
            ("a", packet(Some(10))),
            ("a", packet(Some(11))),
        ];
        let p = run(&lines, &marks(&[("a", 10)]));
        assert_eq!(p.fates, [Fate::Stored(5), Fate::Stored(10), Fate::New(0)]);
        assert_eq!(p.lookups, HashMap::from([("a", vec![5, 10])]));
        assert_eq!(p.new_marks, HashMap::from([("a", 11)]));
    }

    #[test]
    fn a_gap_filled_late_is_refused_and_names_the_sender() {
        // 1 and 3 arrive, then 2: stored seqs must keep increasing.
        let lines = [
            ("a", packet(Some(1))),
            ("a", packet(Some(3))),
            ("a", packet(Some(2))),
        ];
        let p = run(&lines, &marks(&[]));
        assert_eq!(p.fates[..2], [Fate::New(0), Fate::New(1)]);
        match &p.fates[2] {
            Fate::Refused {
                seq,
                error,
                closing,
            } => {
                assert_eq!(*seq, Some(2));
                assert!(
                    error.contains("not above 3") && error.contains("\"a\""),
                    "{error}"
                );
                assert!(!closing);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.fresh, [0, 1]);
    }

    #[test]
    fn a_duplicate_inside_one_batch_points_at_its_first_copy() {
        let lines = [
            ("a", packet(Some(7))),
            ("a", packet(Some(8))),
            ("a", packet(Some(7))),
        ];
        let p = run(&lines, &marks(&[("a", 3)]));
        assert_eq!(p.fates, [Fate::New(0), Fate::New(1), Fate::SameBatch(0)]);
        assert_eq!(p.fresh, [0, 1]);
    }

    #[test]
    fn two_senders_keep_separate_marks() {
        let lines = [
            ("a", packet(Some(1))),
            ("b", packet(Some(1))),
            ("b", packet(Some(1))),
            ("a", packet(Some(2))),
            ("b", packet(Some(50))),
        ];
        let p = run(&lines, &marks(&[("b", 40)]));
        assert_eq!(
            p.fates,
            [
                Fate::New(0),
                Fate::Stored(1),
                Fate::Stored(1),
                Fate::New(1),
                Fate::New(2)
            ]
        );
        assert_eq!(p.fresh, [0, 3, 4]);
        assert_eq!(p.new_marks, HashMap::from([("a", 2), ("b", 50)]));
        assert_eq!(p.lookups, HashMap::from([("b", vec![1, 1])]));
    }

    #[test]
    fn rejected_lines_keep_their_place_and_error() {
        let bad = JobKind::Reject {
            seq: Some(4),
            error: "bad".into(),
            closing: true,
        };
        let lines = [("a", packet(Some(1))), ("a", bad)];
        let p = run(&lines, &marks(&[]));
        assert_eq!(
            p.fates[1],
            Fate::Refused {
                seq: Some(4),
                error: "bad".into(),
                closing: true
            }
        );
        assert_eq!(p.fresh, [0]);
    }

    #[test]
    fn only_senders_with_seqs_and_no_mark_are_unknown() {
        let lines = [
            ("a", packet(Some(1))),
            ("b", packet(None)),
            ("c", packet(Some(1))),
            ("a", packet(Some(2))),
        ];
        let m = marks(&[("c", 0)]);
        assert_eq!(
            unknown_senders(lines.iter().map(|(c, k)| (*c, k)), &m),
            ["a"]
        );
    }
}
