//! The one error type of the addon. Every failure that reaches JavaScript is an
//! `IrohError`; its `code()` becomes the JS error's stable `code` property.

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

/// napi needs to build an error from its own status when a conversion fails
/// (for example a JS argument of the wrong type).
impl From<napi::Status> for ErrorCode {
    fn from(status: napi::Status) -> Self {
        match status {
            napi::Status::InvalidArg
            | napi::Status::ObjectExpected
            | napi::Status::StringExpected
            | napi::Status::NumberExpected
            | napi::Status::BooleanExpected
            | napi::Status::ArrayExpected
            | napi::Status::FunctionExpected
            | napi::Status::BigintExpected => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        }
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

/// The error of synchronous `#[napi]` functions: napi turns the code into `err.code`.
/// (Spelled `Result<T, CodedError>` at use sites: napi recognises `Result` by name.)
pub type CodedError = napi::Error<ErrorCode>;

impl From<IrohError> for napi::Error<ErrorCode> {
    fn from(e: IrohError) -> Self {
        napi::Error::new(e.code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_prefixed_and_distinct() {
        use ErrorCode::*;
        let all = [
            InvalidNodeId, InvalidTicket, InvalidSecretKey, InvalidAddr, InvalidRelayUrl, InvalidCertificate,
            InvalidAlpn, InvalidArgument, KeyFile, Bind, Connect, ConnectTimeout, Timeout,
            Aborted, NoRelay, ConnectionClosed, EndpointClosed, StreamClosed, StreamReset,
            StreamStopped, UnexpectedEnd, TooLarge, Datagram, FrameTooLarge, Protocol,
            BufferFull, Refused, NativeBinding, Internal,
        ];
        let mut seen = std::collections::HashSet::new();
        for c in all {
            assert!(c.as_str().starts_with("ERR_IROH_"));
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
        }
    }

    /// A panic in an exported function without `catch_unwind` aborts the whole Node process
    /// (Rust cannot unwind into C). With it, napi turns the panic into a thrown error.
    #[test]
    fn every_exported_function_contains_panics() {
        // Every module, so that a new one cannot be missed.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(&src).expect("src/ is readable") {
            let path = entry.expect("src/ entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source is readable");
                sources.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), text));
            }
        }
        let mut exported = 0;
        for (file, text) in &sources {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (i, line) in lines.iter().enumerate() {
                if !(line.starts_with("#[napi]") || line.starts_with("#[napi(")) || line.starts_with("#[napi(object") {
                    continue;
                }
                let item = lines[i + 1..].iter().find(|l| !l.starts_with("#[") && !l.starts_with("///"));
                if item.is_some_and(|l| l.contains("fn ")) {
                    exported += 1;
                    assert!(line.contains("catch_unwind"), "{file}:{}: {line} lacks catch_unwind", i + 1);
                }
            }
        }
        assert!(exported > 40, "found only {exported} exported functions: is the scan still right?");
    }

    #[test]
    fn napi_argument_statuses_map_to_invalid_argument() {
        assert_eq!(ErrorCode::from(napi::Status::StringExpected), ErrorCode::InvalidArgument);
        assert_eq!(ErrorCode::from(napi::Status::GenericFailure), ErrorCode::Internal);
    }
}
