//! The transfer-initiation state machine as a pure transition table: Formance v1's twelve
//! statuses, the events that move between them, and the error that names the current status
//! when an event is not allowed. No database, no actix: storage applies it inside the
//! transaction that holds the initiation's row, so a transition is a compare-and-set.

use std::fmt;

/// A transfer initiation's status (Formance's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created with `validated: false`: waits for `POST /status` VALIDATED or REJECTED.
    WaitingForValidation,
    /// Approved (or created validated): its send is scheduled.
    Validated,
    /// Its send runs in the connector.
    Processing,
    /// The connector created the payment.
    Processed,
    /// The send failed (or its outcome is unknown after a crash); may be retried.
    Failed,
    /// Refused by an operator; never sent.
    Rejected,
    /// A retry was asked: a new attempt is scheduled.
    AskRetried,
    /// A reversal was asked: it is scheduled.
    AskReversed,
    /// A reversal runs in the connector.
    ReverseProcessing,
    /// The last reversal failed; what was sent still stands.
    ReverseFailed,
    /// Part of the amount was reversed.
    PartiallyReversed,
    /// The whole amount was reversed.
    Reversed,
}

/// Every status, in Formance's order.
pub const ALL: [Status; 12] = [
    Status::WaitingForValidation,
    Status::Processing,
    Status::Processed,
    Status::Failed,
    Status::Rejected,
    Status::Validated,
    Status::AskRetried,
    Status::AskReversed,
    Status::ReverseProcessing,
    Status::ReverseFailed,
    Status::PartiallyReversed,
    Status::Reversed,
];

impl Status {
    /// The name stored and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::WaitingForValidation => "WAITING_FOR_VALIDATION",
            Status::Validated => "VALIDATED",
            Status::Processing => "PROCESSING",
            Status::Processed => "PROCESSED",
            Status::Failed => "FAILED",
            Status::Rejected => "REJECTED",
            Status::AskRetried => "ASK_RETRIED",
            Status::AskReversed => "ASK_REVERSED",
            Status::ReverseProcessing => "REVERSE_PROCESSING",
            Status::ReverseFailed => "REVERSE_FAILED",
            Status::PartiallyReversed => "PARTIALLY_REVERSED",
            Status::Reversed => "REVERSED",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can happen to an initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// `POST /status` VALIDATED.
    Approve,
    /// `POST /status` REJECTED.
    Reject,
    /// `POST /retry`.
    Retry,
    /// `POST /reverse` (full or partial: the amount decides at the end).
    Reverse,
    /// `DELETE`.
    Delete,
    /// The send task starts calling the connector.
    Send,
    /// The connector created the payment.
    Succeeded,
    /// The send failed (the connector's error, an unsupported asset, a missing capability).
    Failed,
    /// The send was interrupted by a crash or shutdown: it may or may not have happened.
    OutcomeUnknown,
    /// The reversal task starts calling the connector.
    SendReversal,
    /// The reversal succeeded and nothing is left to reverse.
    ReversedFully,
    /// The reversal succeeded and part of the amount is left.
    ReversedPartially,
    /// The reversal failed, or was interrupted (outcome unknown).
    ReversalFailed,
    /// The request that asked for a send or reversal could not schedule its task: legal only
    /// where nothing can have been sent yet (VALIDATED, ASK_RETRIED, ASK_REVERSED), so a run
    /// that did start is never failed by the API behind its back.
    NotSent,
}

impl Event {
    /// What the event is called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Event::Approve => "validate",
            Event::Reject => "reject",
            Event::Retry => "retry",
            Event::Reverse => "reverse",
            Event::Delete => "delete",
            Event::Send => "send",
            Event::Succeeded => "mark processed",
            Event::Failed | Event::OutcomeUnknown => "mark failed",
            Event::SendReversal => "send the reversal of",
            Event::ReversedFully | Event::ReversedPartially => "mark reversed",
            Event::ReversalFailed => "mark the reversal failed of",
            Event::NotSent => "mark unsent",
        }
    }

    /// Which statuses allow it, as the API tells a client who tried from another one.
    fn allowed_from(self) -> &'static str {
        match self {
            Event::Approve | Event::Reject => "only WAITING_FOR_VALIDATION",
            Event::Retry => "only FAILED",
            Event::Reverse => "only PROCESSED, PARTIALLY_REVERSED or REVERSE_FAILED",
            Event::Delete => "only WAITING_FOR_VALIDATION or REJECTED (never sent)",
            Event::Send | Event::Failed | Event::OutcomeUnknown => {
                "only VALIDATED, ASK_RETRIED or PROCESSING"
            }
            Event::Succeeded => "only PROCESSING",
            Event::SendReversal => "only ASK_REVERSED or REVERSE_PROCESSING",
            Event::ReversedFully | Event::ReversedPartially => "only REVERSE_PROCESSING",
            Event::ReversalFailed => "only ASK_REVERSED or REVERSE_PROCESSING",
            Event::NotSent => "only VALIDATED, ASK_RETRIED or ASK_REVERSED (nothing sent yet)",
        }
    }
}

/// Where an event leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The initiation takes this status (a history row is written).
    To(Status),
    /// The initiation is deleted.
    Deleted,
}

/// An event that the current status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} transfer initiation: its status is {current} ({})", event.describe(), event.allowed_from())]
pub struct IllegalTransition {
    /// The status the initiation has.
    pub current: Status,
    /// What was asked.
    pub event: Event,
}

/// The transition table.
pub fn next(current: Status, event: Event) -> Result<Next, IllegalTransition> {
    use Status::*;
    let to = match (event, current) {
        (Event::Approve, WaitingForValidation) => Validated,
        (Event::Reject, WaitingForValidation) => Rejected,
        (Event::Retry, Failed) => AskRetried,
        (Event::Reverse, Processed | PartiallyReversed | ReverseFailed) => AskReversed,
        (Event::Delete, WaitingForValidation | Rejected) => return Ok(Next::Deleted),
        (Event::Send, Validated | AskRetried | Processing) => Processing,
        (Event::Succeeded, Processing) => Processed,
        (Event::Failed | Event::OutcomeUnknown, Validated | AskRetried | Processing) => Failed,
        (Event::SendReversal, AskReversed | ReverseProcessing) => ReverseProcessing,
        (Event::ReversedFully, ReverseProcessing) => Reversed,
        (Event::ReversedPartially, ReverseProcessing) => PartiallyReversed,
        (Event::ReversalFailed, AskReversed | ReverseProcessing) => ReverseFailed,
        (Event::NotSent, Validated | AskRetried) => Failed,
        (Event::NotSent, AskReversed) => ReverseFailed,
        _ => return Err(IllegalTransition { current, event }),
    };
    Ok(Next::To(to))
}

/// The statuses from which `event` is allowed (for statements that apply one event to many
/// rows, such as failing the sends a crash interrupted).
pub fn sources(event: Event) -> Vec<&'static str> {
    ALL.into_iter()
        .filter(|s| next(*s, event).is_ok())
        .map(Status::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    const EVENTS: [Event; 14] = [
        Event::Approve,
        Event::Reject,
        Event::Retry,
        Event::Reverse,
        Event::Delete,
        Event::Send,
        Event::Succeeded,
        Event::Failed,
        Event::OutcomeUnknown,
        Event::SendReversal,
        Event::ReversedFully,
        Event::ReversedPartially,
        Event::ReversalFailed,
        Event::NotSent,
    ];

    /// The whole table, written out: every (status, event) pair not listed is illegal.
    const LEGAL: &[(Status, Event, Next)] = &[
        (WaitingForValidation, Event::Approve, Next::To(Validated)),
        (WaitingForValidation, Event::Reject, Next::To(Rejected)),
        (WaitingForValidation, Event::Delete, Next::Deleted),
        (Rejected, Event::Delete, Next::Deleted),
        (Validated, Event::Send, Next::To(Processing)),
        (AskRetried, Event::Send, Next::To(Processing)),
        (Processing, Event::Send, Next::To(Processing)),
        (Validated, Event::Failed, Next::To(Failed)),
        (AskRetried, Event::Failed, Next::To(Failed)),
        (Processing, Event::Failed, Next::To(Failed)),
        (Validated, Event::OutcomeUnknown, Next::To(Failed)),
        (AskRetried, Event::OutcomeUnknown, Next::To(Failed)),
        (Processing, Event::OutcomeUnknown, Next::To(Failed)),
        (Processing, Event::Succeeded, Next::To(Processed)),
        (Failed, Event::Retry, Next::To(AskRetried)),
        (Processed, Event::Reverse, Next::To(AskReversed)),
        (PartiallyReversed, Event::Reverse, Next::To(AskReversed)),
        (ReverseFailed, Event::Reverse, Next::To(AskReversed)),
        (
            AskReversed,
            Event::SendReversal,
            Next::To(ReverseProcessing),
        ),
        (
            ReverseProcessing,
            Event::SendReversal,
            Next::To(ReverseProcessing),
        ),
        (AskReversed, Event::ReversalFailed, Next::To(ReverseFailed)),
        (Validated, Event::NotSent, Next::To(Failed)),
        (AskRetried, Event::NotSent, Next::To(Failed)),
        (AskReversed, Event::NotSent, Next::To(ReverseFailed)),
        (
            ReverseProcessing,
            Event::ReversalFailed,
            Next::To(ReverseFailed),
        ),
        (ReverseProcessing, Event::ReversedFully, Next::To(Reversed)),
        (
            ReverseProcessing,
            Event::ReversedPartially,
            Next::To(PartiallyReversed),
        ),
    ];

    #[test]
    fn the_table_is_exactly_the_listed_transitions() {
        for status in ALL {
            for event in EVENTS {
                let expected = LEGAL
                    .iter()
                    .find(|(s, e, _)| *s == status && *e == event)
                    .map(|(_, _, n)| *n);
                match (next(status, event), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{status} + {event:?}"),
                    (Err(e), None) => assert_eq!(e.current, status),
                    (got, want) => panic!("{status} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn an_illegal_transition_names_the_current_status() {
        let e = next(Processed, Event::Retry).expect_err("illegal");
        assert_eq!(
            e.to_string(),
            "cannot retry transfer initiation: its status is PROCESSED (only FAILED)"
        );
        let e = next(Validated, Event::Approve).expect_err("illegal");
        assert!(e.to_string().contains("its status is VALIDATED"), "{e}");
    }

    #[test]
    fn retry_only_from_failed_and_one_reversal_at_a_time() {
        for status in ALL {
            assert_eq!(next(status, Event::Retry).is_ok(), status == Failed);
        }
        // Once a reversal is asked, another one is refused until it ends.
        for status in [AskReversed, ReverseProcessing] {
            assert!(next(status, Event::Reverse).is_err());
        }
    }

    #[test]
    fn nothing_sent_can_be_deleted() {
        for status in ALL {
            let deletable = next(status, Event::Delete).is_ok();
            assert_eq!(deletable, matches!(status, WaitingForValidation | Rejected));
        }
    }

    #[test]
    fn names_round_trip_and_sources_follow_the_table() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("processed"), None);
        assert_eq!(
            sources(Event::OutcomeUnknown),
            vec!["PROCESSING", "VALIDATED", "ASK_RETRIED"]
        );
    }
}
