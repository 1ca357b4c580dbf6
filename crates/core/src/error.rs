//! The one error type of the addon. Every failure that reaches JavaScript is an
//! `IrohError`; its `code()` becomes the JS error's stable `code` property. How it
//! becomes a JS error is the binding's business (`src/error.rs` at the root): no napi here.

use std::fmt;

/// Declares an enum whose variants each name their code string (`Variant => "CODE",`),
/// with `as_str` and `ALL` made from the same table: a code cannot be added to the enum
/// and left out of `ALL` or of `as_str`.
macro_rules! error_codes {
    ($(#[$meta:meta])* pub enum $enum:ident { $($(#[$doc:meta])* $name:ident => $code:literal,)* }) => {
        $(#[$meta])*
        pub enum $enum {
            $($(#[$doc])* $name,)*
        }

        impl $enum {
            /// Every code, in the order declared.
            pub const ALL: &'static [$enum] = &[$($enum::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($enum::$name => $code,)*
                }
            }
        }
    };
}

error_codes! {
    /// Stable error codes: the one list of them. The string form is part of the public API:
    /// never rename one. `index.d.ts` and the README list the same codes (a test compares).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ErrorCode {
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
        /// A relay's certificate is not trusted: its CA belongs in `relayCaCertificates`.
        RelayUntrusted => "ERR_IROH_RELAY_UNTRUSTED",
        /// Nothing listens on a relay's port.
        RelayRefused => "ERR_IROH_RELAY_REFUSED",
        /// A relay's host name does not resolve.
        RelayUnresolved => "ERR_IROH_RELAY_UNRESOLVED",
        /// A relay URL's server answered, but not as an iroh relay of a version we speak.
        NotARelay => "ERR_IROH_NOT_A_RELAY",
        /// A relay denied this endpoint access.
        RelayDenied => "ERR_IROH_RELAY_DENIED",
        /// A relay did not answer (yet): what retrying may fix. In `relayStatus()` only;
        /// `online()` reports it as `ERR_IROH_TIMEOUT`.
        RelayUnreachable => "ERR_IROH_RELAY_UNREACHABLE",
        /// Raised by the JS hub and spoke: a hub refused or revoked this spoke.
        Refused => "ERR_IROH_REFUSED",
        /// Raised by the JS loader when no native addon loads (so never by this crate).
        NativeBinding => "ERR_IROH_NATIVE_BINDING",
        /// Raised by the browser build for what a page cannot do (bindAddr, secretKeyPath,
        /// a relay server, raw streams): never by the native addon.
        Unsupported => "ERR_IROH_UNSUPPORTED",
        Internal => "ERR_IROH_INTERNAL",
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
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(c.as_str().starts_with("ERR_IROH_"));
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
        }
    }
}
