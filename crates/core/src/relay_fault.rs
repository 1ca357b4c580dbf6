//! Why a relay could not be used, told apart so that a user can act on it: a certificate
//! this endpoint does not trust, a port where nothing listens, a name that does not
//! resolve, a server that is not an iroh relay, a relay that denies access. The binding
//! finds the fault in iroh's errors (`src/relay_check.rs`); this module names, codes and
//! words it.

use crate::error::{ErrorCode, IrohError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayFault {
    /// The relay's certificate did not verify. `why` is rustls's name for it
    /// (`UnknownIssuer`, `NotValidForName`, `Expired`, ...); `issuer` is the distinguished
    /// name of the CA its certificate names, when the certificate could be read.
    Untrusted { why: String, issuer: Option<String> },
    /// Nothing listens on the relay's port.
    Refused,
    /// The relay's host name did not resolve.
    Unresolved { detail: String },
    /// Something answered, but not as an iroh relay of a version this endpoint speaks.
    NotARelay { detail: String },
    /// The relay turned this endpoint's credentials away.
    Denied { reason: String },
    /// What retrying may fix: no answer in time, a reset, a network that is down.
    Unreachable { detail: String },
}

impl RelayFault {
    pub fn code(&self) -> ErrorCode {
        match self {
            RelayFault::Untrusted { .. } => ErrorCode::RelayUntrusted,
            RelayFault::Refused => ErrorCode::RelayRefused,
            RelayFault::Unresolved { .. } => ErrorCode::RelayUnresolved,
            RelayFault::NotARelay { .. } => ErrorCode::NotARelay,
            RelayFault::Denied { .. } => ErrorCode::RelayDenied,
            RelayFault::Unreachable { .. } => ErrorCode::RelayUnreachable,
        }
    }

    /// Whether waiting will not help: the relay will fail the same way on the next try
    /// until someone changes the configuration or starts the relay.
    pub fn is_final(&self) -> bool {
        !matches!(self, RelayFault::Unreachable { .. })
    }

    /// What went wrong with the relay at `url`, and what to do about it when that is known.
    pub fn describe(&self, url: &str) -> String {
        match self {
            // BadSignature: a CA of the same name is trusted, but not the one that signed.
            RelayFault::Untrusted { why, issuer } if why == "UnknownIssuer" || why == "BadSignature" => {
                let signer = match issuer {
                    Some(name) => format!("signed by {name:?}, a CA"),
                    None => "signed by a CA".to_string(),
                };
                format!(
                    "relay {url}: its certificate is not trusted ({why}): it is {signer} this endpoint does not \
                     trust; pass that CA's certificate (PEM) in relayCaCertificates (a relay from startRelayServer() \
                     gives it as caCertificatePem)"
                )
            }
            RelayFault::Untrusted { why, .. } => {
                format!(
                    "relay {url}: its certificate is not accepted ({why}): check the URL's host name and the relay's certificate"
                )
            }
            RelayFault::Refused => {
                format!("relay {url}: connection refused: nothing listens on that port (is the relay running, and is the port in the URL right?)")
            }
            RelayFault::Unresolved { detail } => format!("relay {url}: its host name does not resolve ({detail})"),
            RelayFault::NotARelay { detail } => {
                format!("relay {url}: the server answered, but not as an iroh relay this endpoint can speak to ({detail})")
            }
            RelayFault::Denied { reason } => format!("relay {url}: the relay denied this endpoint access ({reason})"),
            RelayFault::Unreachable { detail } => format!("relay {url}: not reachable yet ({detail})"),
        }
    }
}

/// The error for relays that all failed: the first one's code (the order the user
/// configured them in), every relay's reason in the message.
pub fn all_failed<'a>(faults: impl IntoIterator<Item = (&'a str, &'a RelayFault)>) -> Option<IrohError> {
    let mut code = None;
    let mut lines = Vec::new();
    for (url, fault) in faults {
        code.get_or_insert(fault.code());
        lines.push(fault.describe(url));
    }
    Some(IrohError::new(code?, lines.join("; ")))
}

/// The error when no relay answered in time: a plain timeout, with what was seen of each
/// relay so far.
pub fn timed_out<'a>(ms: u32, faults: impl IntoIterator<Item = (&'a str, &'a RelayFault)>) -> IrohError {
    let seen: Vec<String> = faults.into_iter().map(|(url, fault)| fault.describe(url)).collect();
    let mut message = format!("no relay was reachable within {ms} ms");
    if !seen.is_empty() {
        message.push_str(": ");
        message.push_str(&seen.join("; "));
    }
    IrohError::new(ErrorCode::Timeout, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://127.0.0.1:4433/";

    #[test]
    fn an_unknown_issuer_names_the_ca_and_the_option_that_fixes_it() {
        let fault = RelayFault::Untrusted { why: "UnknownIssuer".into(), issuer: Some("CN=test CA".into()) };
        let text = fault.describe(URL);
        assert!(text.contains(URL) && text.contains("CN=test CA") && text.contains("relayCaCertificates"), "{text}");
        assert_eq!(fault.code(), ErrorCode::RelayUntrusted);
        assert!(fault.is_final());
    }

    #[test]
    fn only_unreachable_is_worth_waiting_for() {
        let faults = [
            RelayFault::Untrusted { why: "Expired".into(), issuer: None },
            RelayFault::Refused,
            RelayFault::Unresolved { detail: "no record".into() },
            RelayFault::NotARelay { detail: "status 404".into() },
            RelayFault::Denied { reason: "not on the list".into() },
        ];
        let mut codes = std::collections::HashSet::new();
        for f in &faults {
            assert!(f.is_final(), "{f:?}");
            assert!(codes.insert(f.code().as_str()), "two faults share {:?}", f.code());
            assert!(f.describe(URL).starts_with(&format!("relay {URL}: ")));
        }
        assert!(!RelayFault::Unreachable { detail: "timed out".into() }.is_final());
    }

    #[test]
    fn all_failed_takes_the_first_relays_code_and_every_reason() {
        let a = RelayFault::Refused;
        let b = RelayFault::Unresolved { detail: "nxdomain".into() };
        let err = all_failed([("https://a.test/", &a), ("https://b.test/", &b)]).unwrap();
        assert_eq!(err.code, ErrorCode::RelayRefused);
        assert!(err.message.contains("https://a.test/") && err.message.contains("https://b.test/"), "{}", err.message);
        assert!(all_failed(std::iter::empty()).is_none());
    }

    #[test]
    fn a_timeout_stays_a_timeout_and_says_what_was_seen() {
        let seen = RelayFault::Unreachable { detail: "no answer".into() };
        let err = timed_out(8000, [(URL, &seen)]);
        assert_eq!(err.code, ErrorCode::Timeout);
        assert!(err.message.starts_with("no relay was reachable within 8000 ms: ") && err.message.contains("no answer"));
        assert_eq!(timed_out(15, std::iter::empty()).message, "no relay was reachable within 15 ms");
    }
}
