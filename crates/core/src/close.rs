//! The application close codes the event pump puts on the wire, and which failure closes
//! with which. The one list of them: the binding exports it to JS (`PumpCloseCode`).

use crate::codec::FrameError;
use crate::error::{ErrorCode, IrohError};

/// Why the pump closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// `close()` without a code.
    Normal = 0,
    /// A frame longer than `maxFrameBytes`.
    FrameTooLarge = 4001,
    /// A frame that is not an event (or that a custom `parse` rejected).
    MalformedFrame = 4002,
    /// A stream that ended, or stalled, inside a frame.
    TruncatedFrame = 4003,
    /// The stream failed (reset by the peer, or the peer stopped reading it).
    StreamError = 4004,
}

impl CloseCode {
    pub const ALL: [CloseCode; 5] = [
        CloseCode::Normal,
        CloseCode::FrameTooLarge,
        CloseCode::MalformedFrame,
        CloseCode::TruncatedFrame,
        CloseCode::StreamError,
    ];

    /// The code on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// The close code and the error a frame error closes the connection with.
pub fn frame_failure(e: FrameError) -> (CloseCode, IrohError) {
    let (close, code) = match e {
        FrameError::TooLarge { .. } => (CloseCode::FrameTooLarge, ErrorCode::FrameTooLarge),
        FrameError::Truncated { .. } => (CloseCode::TruncatedFrame, ErrorCode::Protocol),
        FrameError::Malformed(_) => (CloseCode::MalformedFrame, ErrorCode::Protocol),
    };
    (close, IrohError::new(code, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_the_private_range() {
        let mut seen = std::collections::HashSet::new();
        for c in CloseCode::ALL {
            assert!(seen.insert(c.code()), "duplicate {}", c.code());
            assert!(c == CloseCode::Normal || (4000..4100).contains(&c.code()), "{c:?}");
        }
    }

    #[test]
    fn frame_errors_close_with_their_code() {
        let (close, err) = frame_failure(FrameError::TooLarge { len: 10, max: 5 });
        assert_eq!((close.code(), err.code), (4001, ErrorCode::FrameTooLarge));
        let (close, err) = frame_failure(FrameError::Truncated { have: 1, want: 4 });
        assert_eq!((close.code(), err.code), (4003, ErrorCode::Protocol));
        let (close, err) = frame_failure(FrameError::Malformed("no type".into()));
        assert_eq!((close.code(), err.code), (4002, ErrorCode::Protocol));
        assert!(err.message.contains("no type"), "{}", err.message);
    }
}
