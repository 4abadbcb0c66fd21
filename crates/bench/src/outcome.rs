//! What one request did: the operation, and how it ended, read from the
//! GraphQL error code the way a client program reads it (docs/API.md, "Error codes").

use std::fmt;

/// The kinds of request the scenarios send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Reserve,
    /// The project page of `mixed` (counters and available plots in one request).
    Read,
    Release,
    Convert,
    /// A project's four counters alone (`reads`).
    Counts,
    /// A page of a project's plots alone (`reads`).
    Page,
    /// `joinQueue`: a place in a plot's line, or the plot at once when it is free.
    Join,
    /// `leaveQueue`.
    Leave,
    /// A read of a line: a plot's waiting entries, or an agent's own entries.
    Line,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Reserve,
        Op::Read,
        Op::Release,
        Op::Convert,
        Op::Counts,
        Op::Page,
        Op::Join,
        Op::Leave,
        Op::Line,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Reserve => "reserve",
            Op::Read => "read",
            Op::Release => "release",
            Op::Convert => "convert",
            Op::Counts => "counts",
            Op::Page => "page",
            Op::Join => "join",
            Op::Leave => "leave",
            Op::Line => "line",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The operation did what it was asked (reserved, read, released, converted).
    Ok,
    /// `PROPERTY_UNAVAILABLE`: someone else holds the plot, or it is sold.
    Unavailable,
    /// `RESERVATION_LIMIT_REACHED`.
    Limit,
    /// `BUSY`: a lock wait timed out; safe to retry.
    Busy,
    /// `RESERVATION_NOT_ACTIVE`: the hold ended before this request.
    NotActive,
    /// `ALREADY_QUEUED`: the agent holds the plot or waits for it already.
    AlreadyQueued,
    /// `QUEUE_FULL`: as many wait for the plot as may.
    QueueFull,
    /// Any other GraphQL error code (`INTERNAL`, `SERVICE_UNAVAILABLE`, ...).
    Error,
    /// No GraphQL answer at all: a transport error, a timeout, a non-200 status.
    Transport,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::Unavailable,
        Outcome::Limit,
        Outcome::Busy,
        Outcome::NotActive,
        Outcome::AlreadyQueued,
        Outcome::QueueFull,
        Outcome::Error,
        Outcome::Transport,
    ];

    /// The outcome of a GraphQL error code.
    pub fn from_code(code: &str) -> Outcome {
        match code {
            "PROPERTY_UNAVAILABLE" => Outcome::Unavailable,
            "RESERVATION_LIMIT_REACHED" => Outcome::Limit,
            "BUSY" => Outcome::Busy,
            "RESERVATION_NOT_ACTIVE" => Outcome::NotActive,
            "ALREADY_QUEUED" => Outcome::AlreadyQueued,
            "QUEUE_FULL" => Outcome::QueueFull,
            _ => Outcome::Error,
        }
    }

    /// Whether this outcome means something is wrong with the system (as
    /// opposed to an answer the rules give under contention).
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Error | Outcome::Transport)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unavailable => "unavailable",
            Outcome::Limit => "limit",
            Outcome::Busy => "busy",
            Outcome::NotActive => "not_active",
            Outcome::AlreadyQueued => "already_queued",
            Outcome::QueueFull => "queue_full",
            Outcome::Error => "error",
            Outcome::Transport => "transport",
        }
    }
}

/// The name a report gives an (operation, outcome) pair: "reserved" rather
/// than "reserve ok".
pub fn label(op: Op, outcome: Outcome) -> String {
    match (op, outcome) {
        (Op::Reserve, Outcome::Ok) => "reserved".to_owned(),
        (Op::Read, Outcome::Ok) => "read".to_owned(),
        (Op::Release, Outcome::Ok) => "released".to_owned(),
        (Op::Convert, Outcome::Ok) => "converted".to_owned(),
        (Op::Counts, Outcome::Ok) => "counts read".to_owned(),
        (Op::Page, Outcome::Ok) => "page read".to_owned(),
        (Op::Join, Outcome::Ok) => "joined".to_owned(),
        (Op::Leave, Outcome::Ok) => "left".to_owned(),
        (Op::Line, Outcome::Ok) => "line read".to_owned(),
        (op, outcome) => format!("{} {}", op.as_str(), outcome.as_str()),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_the_outcomes_a_client_counts() {
        assert_eq!(
            Outcome::from_code("PROPERTY_UNAVAILABLE"),
            Outcome::Unavailable
        );
        assert_eq!(
            Outcome::from_code("RESERVATION_LIMIT_REACHED"),
            Outcome::Limit
        );
        assert_eq!(Outcome::from_code("BUSY"), Outcome::Busy);
        assert_eq!(
            Outcome::from_code("RESERVATION_NOT_ACTIVE"),
            Outcome::NotActive
        );
        assert_eq!(Outcome::from_code("ALREADY_QUEUED"), Outcome::AlreadyQueued);
        assert_eq!(Outcome::from_code("QUEUE_FULL"), Outcome::QueueFull);
        assert_eq!(Outcome::from_code("INTERNAL"), Outcome::Error);
        assert!(Outcome::Error.is_failure() && !Outcome::Busy.is_failure());
        assert_eq!(label(Op::Reserve, Outcome::Ok), "reserved");
        assert_eq!(label(Op::Reserve, Outcome::Busy), "reserve busy");
    }
}
