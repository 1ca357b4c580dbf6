//! Why an endpoint's relays are not working, per relay: found in iroh's errors and by
//! trying the relay ourselves, kept in a watch that `online()`, `relayStatus()` and
//! `watchRelays()` read. The watch and its classification carry no napi types; the
//! last items adapt them for JS.
//!
//! iroh reports the home relay's state (`home_relay_status`), but it picks a home relay
//! only after one answered its probes: with a relay whose certificate is untrusted or
//! whose port is closed it reports nothing at all. So while no home relay is connected,
//! each configured relay is dialled here as iroh would dial it (same key, roots and DNS),
//! and the failure is classified from its concrete error type.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use alkdev_iroh_core::certificates::IssuerNote;
use alkdev_iroh_core::error::IrohError;
use alkdev_iroh_core::relay_fault::{self, RelayFault};
use iroh::{RelayUrl, Watcher};
use iroh_relay::client::{ClientBuilder, ConnectError, DialError};
use iroh_relay::protos::handshake;
use iroh_relay::tls::CaTlsConfig;

use crate::mailbox::{Address, Watch};
use napi_derive::napi;
use rustls_pki_types::CertificateDer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a relay may take to connect before it is tried here as well.
const PROBE_AFTER: Duration = Duration::from_millis(300);
/// Between tries while no home relay is connected.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// One try's limit; a relay slower than this counts as not answering (yet).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One configured relay as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    pub url: RelayUrl,
    /// Connected as the home relay.
    pub connected: bool,
    /// Why it is not usable, when that is known.
    pub fault: Option<RelayFault>,
}

pub type Reports = watch::Receiver<Vec<RelayReport>>;

/// Watches the relays of `ep` until `closed` fires, publishing a report per relay.
/// The future holds `ep`: run it under the endpoint's task tracker (`tasks`), which its
/// probes join too, so that `close()` waits until they have let go.
pub fn watch_relays(
    ep: iroh::Endpoint,
    urls: Vec<RelayUrl>,
    roots: Vec<CertificateDer<'static>>,
    closed: CancellationToken,
    tasks: TaskTracker,
) -> (Reports, impl std::future::Future<Output = ()> + Send + 'static) {
    let initial: Vec<RelayReport> =
        urls.iter().map(|url| RelayReport { url: url.clone(), connected: false, fault: None }).collect();
    let (tx, rx) = watch::channel(initial);
    let task = async move {
        use tokio_stream::StreamExt;
        let mut home = ep.home_relay_status().stream();
        let mut probe_at = tokio::time::Instant::now() + PROBE_AFTER;
        loop {
            let home_connected = tx.borrow().iter().any(|r| r.connected);
            tokio::select! {
                _ = closed.cancelled() => return,
                next = home.next() => {
                    let Some(statuses) = next else { return };
                    tx.send_if_modified(|reports| apply_home(reports, &statuses));
                }
                found = probe_all(&ep, &urls, &roots, &tasks), if !home_connected && tokio::time::Instant::now() >= probe_at => {
                    tx.send_if_modified(|reports| apply_probes(reports, found));
                    probe_at = tokio::time::Instant::now() + PROBE_EVERY;
                }
                _ = tokio::time::sleep_until(probe_at), if !home_connected && tokio::time::Instant::now() < probe_at => {}
            }
        }
    };
    (rx, task)
}

/// iroh's word on the home relay: it replaces what a probe found.
pub fn apply_home(reports: &mut [RelayReport], statuses: &[iroh::endpoint::RelayStatus]) -> bool {
    let mut changed = false;
    for status in statuses {
        let Some(report) = reports.iter_mut().find(|r| &r.url == status.url()) else { continue };
        let fault = if status.is_connected() {
            None
        } else if let Some(reason) = status.auth_denied_reason() {
            Some(RelayFault::Denied { reason: reason.to_string() })
        } else {
            status.last_error().map(|e| classify(e, None)).or_else(|| report.fault.clone())
        };
        let next = RelayReport { url: report.url.clone(), connected: status.is_connected(), fault };
        if *report != next {
            *report = next;
            changed = true;
        }
    }
    changed
}

/// What the probes found, for relays iroh has not connected.
fn apply_probes(reports: &mut [RelayReport], found: Vec<(RelayUrl, Option<RelayFault>)>) -> bool {
    let mut changed = false;
    for (url, fault) in found {
        if let Some(report) = reports.iter_mut().find(|r| r.url == url && !r.connected) {
            if report.fault != fault {
                report.fault = fault;
                changed = true;
            }
        }
    }
    changed
}

async fn probe_all(
    ep: &iroh::Endpoint,
    urls: &[RelayUrl],
    roots: &[CertificateDer<'static>],
    tasks: &TaskTracker,
) -> Vec<(RelayUrl, Option<RelayFault>)> {
    // Side by side; dropping the set (a home relay connected meanwhile) aborts the rest.
    let mut tries = tokio::task::JoinSet::new();
    for url in urls {
        let (ep, url, roots) = (ep.clone(), url.clone(), roots.to_vec());
        tries.spawn(tasks.track_future(async move {
            let fault = probe(&ep, &url, &roots).await.err();
            (url, fault)
        }));
    }
    tries.join_all().await
}

/// Dials the relay at `url` as iroh would, and lets go at once.
async fn probe(ep: &iroh::Endpoint, url: &RelayUrl, roots: &[CertificateDer<'static>]) -> Result<(), RelayFault> {
    let unusable = |detail: String| RelayFault::Unreachable { detail };
    let provider = iroh_relay::tls::default_provider();
    let inner = CaTlsConfig::embedded()
        .with_extra_roots(roots.iter().cloned())
        .server_cert_verifier(provider.clone())
        .map_err(|e| unusable(format!("cannot build the TLS verifier: {e}")))?;
    let note = Arc::new(IssuerNote::new(inner));
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(note.clone())
        .with_no_client_auth();
    let dns = ep.dns_resolver().map_err(|e| unusable(format!("no DNS resolver: {e}")))?.clone();
    let client = ClientBuilder::new(url.clone(), ep.secret_key().clone(), dns).tls_client_config(tls);
    match tokio::time::timeout(PROBE_TIMEOUT, client.connect()).await {
        Ok(Ok(_client)) => Ok(()),
        Ok(Err(e)) => Err(classify(&e, note.refused_issuer())),
        Err(_) => Err(unusable(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))),
    }
}

/// The fault in an error from iroh's relay client, told by the public types in its
/// chain (never by its text): iroh-relay's `ConnectError`, `std::io::Error` kinds and
/// rustls's errors. What cannot be told apart counts as not reachable yet, with the
/// chain's text as detail.
pub fn classify(err: &(dyn StdError + 'static), issuer: Option<String>) -> RelayFault {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(fault) = e.downcast_ref::<ConnectError>().and_then(|c| from_connect(c, &issuer)) {
            return fault;
        }
        if let Some(fault) = e.downcast_ref::<DialError>().and_then(from_dial) {
            return fault;
        }
        if let Some(fault) = e.downcast_ref::<std::io::Error>().and_then(|io| from_io(io, &issuer)) {
            return fault;
        }
        if let Some(fault) = e.downcast_ref::<rustls::Error>().and_then(|t| from_tls(t, &issuer)) {
            return fault;
        }
        next = e.source();
    }
    RelayFault::Unreachable { detail: chain_text(err) }
}

fn from_connect(c: &ConnectError, issuer: &Option<String>) -> Option<RelayFault> {
    let not_a_relay = || Some(RelayFault::NotARelay { detail: c.to_string() });
    match c {
        ConnectError::Dial { source, .. } => from_dial(source),
        ConnectError::Tls { source, .. } => from_io(source, issuer),
        ConnectError::Handshake { source: handshake::Error::ServerDeniedAuth { reason, .. }, .. } => {
            Some(RelayFault::Denied { reason: reason.clone() })
        }
        ConnectError::BadVersionHeader { .. }
        | ConnectError::UnexpectedUpgradeStatus { .. }
        | ConnectError::Upgrade { .. }
        | ConnectError::Handshake { .. }
        | ConnectError::InvalidRelayUrl { .. }
        | ConnectError::InvalidWebsocketUrl { .. }
        | ConnectError::InvalidTlsServername { .. } => not_a_relay(),
        // The WebSocket upgrade failed: on a connection that broke, retrying may help;
        // anything else means the server does not speak the relay protocol.
        ConnectError::Websocket { source, .. } => {
            let mut next: Option<&(dyn StdError + 'static)> = Some(source as &(dyn StdError + 'static));
            while let Some(e) = next {
                if e.is::<std::io::Error>() {
                    return None;
                }
                next = e.source();
            }
            not_a_relay()
        }
        _ => None,
    }
}

fn from_dial(d: &DialError) -> Option<RelayFault> {
    match d {
        DialError::Dns { .. } => Some(RelayFault::Unresolved { detail: chain_text(d) }),
        DialError::Io { source, .. } => from_io(source, &None),
        _ => None,
    }
}

fn from_io(io: &std::io::Error, issuer: &Option<String>) -> Option<RelayFault> {
    if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return from_tls(tls, issuer);
    }
    (io.kind() == std::io::ErrorKind::ConnectionRefused).then_some(RelayFault::Refused)
}

fn from_tls(t: &rustls::Error, issuer: &Option<String>) -> Option<RelayFault> {
    match t {
        rustls::Error::InvalidCertificate(why) => {
            // `NotValidForNameContext { .. }` and the like: the name is enough.
            let name = format!("{why:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or_default().trim_end_matches("Context").to_string();
            Some(RelayFault::Untrusted { why: name, issuer: issuer.clone() })
        }
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            Some(RelayFault::NotARelay { detail: format!("it does not speak TLS: {t}") })
        }
        _ => None,
    }
}

/// Waits until every relay has failed in a way waiting will not mend, then says how.
pub async fn all_failed(reports: &mut Reports) -> IrohError {
    loop {
        {
            let now = reports.borrow_and_update();
            let finals: Option<Vec<_>> =
                now.iter().map(|r| r.fault.as_ref().filter(|f| f.is_final()).map(|f| (r.url.as_str(), f))).collect();
            if let Some(error) = finals.and_then(relay_fault::all_failed) {
                return error;
            }
        }
        if reports.changed().await.is_err() {
            // Closed: the endpoint's close settles the caller.
            std::future::pending::<()>().await;
        }
    }
}

/// A relay as `relayStatus()` gives it.
#[napi(object)]
pub struct RelayStatus {
    pub url: String,
    /// Connected as this endpoint's home relay.
    pub connected: bool,
    /// Why the relay cannot be used, when that is known; `null` while it is fine or untried.
    pub error: Option<RelayProblem>,
}

/// Why a relay cannot be used.
#[napi(object)]
pub struct RelayProblem {
    #[napi(
        ts_type = "'ERR_IROH_RELAY_UNTRUSTED' | 'ERR_IROH_RELAY_REFUSED' | 'ERR_IROH_RELAY_UNRESOLVED' | 'ERR_IROH_NOT_A_RELAY' | 'ERR_IROH_RELAY_DENIED' | 'ERR_IROH_RELAY_UNREACHABLE'"
    )]
    pub code: String,
    /// What went wrong, naming the relay's URL.
    pub message: String,
}

pub fn statuses(reports: &[RelayReport]) -> Vec<RelayStatus> {
    reports
        .iter()
        .map(|r| RelayStatus {
            url: r.url.to_string(),
            connected: r.connected,
            error: r
                .fault
                .as_ref()
                .map(|f| RelayProblem { code: f.code().as_str().to_string(), message: f.describe(r.url.as_str()) }),
        })
        .collect()
}

/// Posts the statuses to `listener` now and on each change, then an empty list when the
/// endpoint has closed (or at once, when there is nothing to watch).
pub fn watch_statuses(reports: Option<Reports>, listener: Address) -> Watch {
    let stop = CancellationToken::new();
    let Some(mut reports) = reports else {
        listener.post(Vec::<RelayStatus>::new());
        return Watch { stop };
    };
    let stopped = stop.clone();
    napi::bindgen_prelude::spawn(async move {
        loop {
            listener.post(statuses(&reports.borrow_and_update()));
            tokio::select! {
                _ = stopped.cancelled() => return,
                changed = reports.changed() => if changed.is_err() { break },
            }
        }
        listener.post(Vec::<RelayStatus>::new());
    });
    Watch { stop }
}

/// An error and its sources on one line.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_socket_and_a_bad_certificate_are_found_deep_in_a_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("relay connection failed")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused, None), RelayFault::Refused);
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let untrusted = Outer(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert_eq!(
            classify(&untrusted, Some("CN=x".into())),
            RelayFault::Untrusted { why: "UnknownIssuer".into(), issuer: Some("CN=x".into()) }
        );
        let reset = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(
            matches!(classify(&reset, None), RelayFault::Unreachable { detail } if detail.starts_with("relay connection failed"))
        );
    }
}
