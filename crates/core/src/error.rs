//! The one error type of the addon. Every failure that reaches JavaScript is an
//! `IrohError`; its `code()` becomes the JS error's stable `code` property. How it
//! becomes a JS error is the binding's business (`src/error.rs` at the root): no napi here.

use std::fmt;

/// Stable error codes: the one list of them. The string form is part of the public API:
/// never rename one. `index.d.ts` and the README list the same codes (a test compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidNodeId,
    InvalidTicket,
    InvalidSecretKey,
    InvalidAddr,
    InvalidRelayUrl,
    InvalidCertificate,
    InvalidAlpn,
    InvalidArgument,
    KeyFile,
    Bind,
    Connect,
    ConnectTimeout,
    Timeout,
    Aborted,
    NoRelay,
    ConnectionClosed,
    EndpointClosed,
    StreamClosed,
    StreamReset,
    StreamStopped,
    UnexpectedEnd,
    TooLarge,
    Datagram,
    FrameTooLarge,
    Protocol,
    BufferFull,
    /// Raised by the JS hub and spoke: a hub refused or revoked this spoke.
    Refused,
    /// Raised by the JS loader when no native addon loads (so never by this crate).
    NativeBinding,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidNodeId => "ERR_IROH_INVALID_NODE_ID",
            InvalidTicket => "ERR_IROH_INVALID_TICKET",
            InvalidSecretKey => "ERR_IROH_INVALID_SECRET_KEY",
            InvalidAddr => "ERR_IROH_INVALID_ADDR",
            InvalidRelayUrl => "ERR_IROH_INVALID_RELAY_URL",
            InvalidCertificate => "ERR_IROH_INVALID_CERTIFICATE",
            InvalidAlpn => "ERR_IROH_INVALID_ALPN",
            InvalidArgument => "ERR_IROH_INVALID_ARGUMENT",
            KeyFile => "ERR_IROH_KEY_FILE",
            Bind => "ERR_IROH_BIND",
            Connect => "ERR_IROH_CONNECT",
            ConnectTimeout => "ERR_IROH_CONNECT_TIMEOUT",
            Timeout => "ERR_IROH_TIMEOUT",
            Aborted => "ERR_IROH_ABORTED",
            NoRelay => "ERR_IROH_NO_RELAY",
            ConnectionClosed => "ERR_IROH_CONNECTION_CLOSED",
            EndpointClosed => "ERR_IROH_ENDPOINT_CLOSED",
            StreamClosed => "ERR_IROH_STREAM_CLOSED",
            StreamReset => "ERR_IROH_STREAM_RESET",
            StreamStopped => "ERR_IROH_STREAM_STOPPED",
            UnexpectedEnd => "ERR_IROH_UNEXPECTED_END",
            TooLarge => "ERR_IROH_TOO_LARGE",
            Datagram => "ERR_IROH_DATAGRAM",
            FrameTooLarge => "ERR_IROH_FRAME_TOO_LARGE",
            Protocol => "ERR_IROH_PROTOCOL",
            BufferFull => "ERR_IROH_BUFFER_FULL",
            Refused => "ERR_IROH_REFUSED",
            NativeBinding => "ERR_IROH_NATIVE_BINDING",
            Internal => "ERR_IROH_INTERNAL",
        }
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrohError {
    pub code: ErrorCode,
    pub message: String,
}

impl IrohError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    pub fn endpoint_closed() -> Self {
        Self::new(ErrorCode::EndpointClosed, "the endpoint is closed")
    }

    pub fn aborted() -> Self {
        Self::new(ErrorCode::Aborted, "the operation was aborted")
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl fmt::Display for IrohError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IrohError {}

pub type IrohResult<T> = Result<T, IrohError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_prefixed_and_distinct() {
        use ErrorCode::*;
        let all = [
            InvalidNodeId,
            InvalidTicket,
            InvalidSecretKey,
            InvalidAddr,
            InvalidRelayUrl,
            InvalidCertificate,
            InvalidAlpn,
            InvalidArgument,
            KeyFile,
            Bind,
            Connect,
            ConnectTimeout,
            Timeout,
            Aborted,
            NoRelay,
            ConnectionClosed,
            EndpointClosed,
            StreamClosed,
            StreamReset,
            StreamStopped,
            UnexpectedEnd,
            TooLarge,
            Datagram,
            FrameTooLarge,
            Protocol,
            BufferFull,
            Refused,
            NativeBinding,
            Internal,
        ];
        let mut seen = std::collections::HashSet::new();
        for c in all {
            assert!(c.as_str().starts_with("ERR_IROH_"));
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
        }
    }
}
