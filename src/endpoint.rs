//! `Endpoint`: binds a QUIC socket under a node id, dials peers by id, ticket or address,
//! and accepts their connections.

use std::sync::Arc;
use std::time::Duration;

use iroh::address_lookup::{DnsAddressLookup, PkarrPublisher, PkarrResolver};
use iroh::endpoint::{presets, IdleTimeout, QuicTransportConfig, VarInt};
use iroh::{EndpointAddr, RelayConfig, RelayMap, RelayMode, SecretKey, Watcher};
use iroh_relay::tls::CaTlsConfig;
use iroh_relay::RelayQuicConfig;
use napi::bindgen_prelude::{Either, Function, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::connection::Connection;
use crate::connection_state::ConnOwner;
use crate::error::{CodedError, ErrorCode, IrohError, IrohResult};
use crate::js_callback::{notify, weak_callback, WeakCallback};
use crate::mailbox::Watch;
use crate::pending::{blocking, guarded, spawn, token_of, CancelToken};
use crate::relay_check::{self, RelayStatus, Reports};
use crate::relay_server::RelayInfo;
use crate::topic::{Gate, GateHook, Topics, GOSSIP_ALPN, REPAIR_ALPN};
use alkdev_iroh_core::certificates;
use alkdev_iroh_core::flow::CONNECTION_RECEIVE_WINDOW;
use alkdev_iroh_core::identity;
use alkdev_iroh_core::relay_fault;

/// Bytes a peer may send on one stream beyond what was read.
pub const STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// How long `online()` waits for a home relay unless told otherwise.
const DEFAULT_ONLINE_TIMEOUT_MS: u32 = 15_000;

/// Connections that finished their handshake and wait for `accept()`.
const ACCEPT_QUEUE: usize = 64;

/// How long `close()` waits at most for tasks that hold a handle to notice the close.
const RELEASE_WAIT: Duration = Duration::from_secs(5);
/// How long `close()` waits at most for iroh's own tasks to let go of the socket (they take
/// milliseconds); also the cost if another process takes the port the moment it is free.
const PORT_WAIT: Duration = Duration::from_secs(1);

/// Options for `Endpoint.create`.
#[napi(object)]
pub struct EndpointOptions {
    /// ALPN protocols this endpoint accepts connections for. Empty: it only dials out.
    pub alpns: Option<Vec<String>>,
    /// The secret key (64 hex or 52 base32 characters). Random when neither this nor
    /// `secretKeyPath` is given.
    pub secret_key: Option<String>,
    /// A file holding the secret key; created with mode 0600 when missing, so the node
    /// id survives restarts.
    pub secret_key_path: Option<String>,
    /// `'default'` (n0's public relays), `'disabled'`, or your own relays: each a URL, or
    /// `{ url, quicPort }` when its QUIC address discovery is not on the default port 7842
    /// (`relayServer.relay` has this shape).
    #[napi(ts_type = "'default' | 'disabled' | { relays: Array<string | RelayInfo> }")]
    pub relay_mode: Option<Either<String, RelayList>>,
    /// CA certificates (PEM) to trust for relays, besides the usual public roots: for a
    /// relay with a private CA, such as the one `startRelayServer()` generates.
    pub relay_ca_certificates: Option<Vec<String>>,
    /// Connect only through relays: no UDP socket of its own, so no direct paths. For
    /// networks that let nothing but HTTPS out, and to test relay paths. Needs relays, and
    /// takes no `bindAddr`.
    pub relay_only: Option<bool>,
    /// Bind the UDP socket to this address, e.g. `127.0.0.1:0` or `0.0.0.0:4433`.
    pub bind_addr: Option<String>,
    /// `'n0'`: publish and resolve addresses through n0's DNS/pkarr servers, so peers can
    /// dial by node id alone. Defaults to `'n0'` with the default relays, else `'none'`.
    #[napi(ts_type = "'n0' | 'none'")]
    pub address_lookup: Option<String>,
    /// Close a connection after this long without hearing from the peer (ms).
    pub idle_timeout_ms: Option<u32>,
    /// Send keep-alives this often (ms) so that an idle connection stays open; must be
    /// below `idleTimeoutMs`.
    pub keep_alive_ms: Option<u32>,
}

#[napi(object)]
pub struct RelayList {
    pub relays: Vec<Either<String, RelayInfo>>,
}

/// An endpoint's address as other peers can dial it.
#[napi(object)]
pub struct EndpointAddrInfo {
    pub node_id: String,
    pub relay_url: Option<String>,
    pub direct_addresses: Vec<String>,
}

enum Relays {
    Default,
    Disabled,
    Custom(Vec<RelayConfig>),
}

/// The options after validation, independent of napi.
struct Config {
    alpns: Vec<Vec<u8>>,
    secret_key: SecretKey,
    relays: Relays,
    bind_addr: Option<std::net::SocketAddr>,
    relay_only: bool,
    relay_roots: Vec<CertificateDer<'static>>,
    n0_lookup: bool,
    idle_timeout: Option<Duration>,
    keep_alive: Option<Duration>,
}

impl Config {
    /// Runs on a tokio worker: reading or creating the key file is blocking I/O.
    fn from_options(o: EndpointOptions) -> IrohResult<Self> {
        let alpns = o.alpns.unwrap_or_default().iter().map(|a| identity::validate_alpn(a)).collect::<IrohResult<Vec<_>>>()?;
        let secret_key = match (&o.secret_key, &o.secret_key_path) {
            (Some(_), Some(_)) => return Err(IrohError::invalid_argument("pass either secretKey or secretKeyPath, not both")),
            (Some(k), None) => identity::parse_secret_key(k)?,
            (None, Some(p)) => identity::load_or_create_secret_key(std::path::Path::new(p))?,
            (None, None) => identity::generate_secret_key(),
        };
        let relays = match o.relay_mode {
            None => Relays::Default,
            Some(Either::A(s)) => match s.as_str() {
                "default" => Relays::Default,
                "disabled" => Relays::Disabled,
                other => {
                    return Err(IrohError::invalid_argument(format!(
                        "relayMode must be 'default', 'disabled' or {{ relays: [...] }}, got {other:?}"
                    )))
                }
            },
            Some(Either::B(list)) => {
                if list.relays.is_empty() {
                    return Err(IrohError::invalid_argument("relayMode.relays is empty: use 'disabled' to run without relays"));
                }
                Relays::Custom(list.relays.iter().map(relay_config).collect::<IrohResult<_>>()?)
            }
        };
        let n0_lookup = match o.address_lookup.as_deref() {
            None => matches!(relays, Relays::Default),
            Some("n0") => true,
            Some("none") => false,
            Some(other) => {
                return Err(IrohError::invalid_argument(format!("addressLookup must be 'n0' or 'none', got {other:?}")))
            }
        };
        let bind_addr = o.bind_addr.as_deref().map(identity::parse_socket_addr).transpose()?;
        let relay_only = o.relay_only.unwrap_or(false);
        if relay_only && matches!(relays, Relays::Disabled) {
            return Err(IrohError::invalid_argument("relayOnly needs relays: relayMode is 'disabled'"));
        }
        if relay_only && bind_addr.is_some() {
            return Err(IrohError::invalid_argument("relayOnly binds no socket: drop bindAddr"));
        }
        let relay_roots = o
            .relay_ca_certificates
            .unwrap_or_default()
            .iter()
            .map(|pem| certificates::parse_certificates(pem))
            .collect::<IrohResult<Vec<_>>>()?
            .concat();
        let idle_timeout = o.idle_timeout_ms.map(|ms| Duration::from_millis(ms as u64));
        let keep_alive = o.keep_alive_ms.map(|ms| Duration::from_millis(ms as u64));
        if let (Some(idle), Some(keep)) = (idle_timeout, keep_alive) {
            if keep >= idle {
                return Err(IrohError::invalid_argument(
                    "keepAliveMs must be shorter than idleTimeoutMs, or the connection times out while idle",
                ));
            }
        }
        Ok(Self { alpns, secret_key, relays, bind_addr, relay_only, relay_roots, n0_lookup, idle_timeout, keep_alive })
    }

    /// The relays as configured, in order.
    fn relay_urls(&self) -> Vec<iroh::RelayUrl> {
        match &self.relays {
            Relays::Custom(relays) => relays.iter().map(|r| r.url.clone()).collect(),
            Relays::Default => RelayMode::Default.relay_map().urls(),
            Relays::Disabled => Vec::new(),
        }
    }

    async fn bind(self, gate: Arc<Gate>) -> IrohResult<iroh::Endpoint> {
        let mut builder =
            iroh::Endpoint::builder(presets::Minimal).secret_key(self.secret_key).alpns(self.alpns).hooks(GateHook(gate));
        builder = builder.relay_mode(match self.relays {
            Relays::Default => RelayMode::Default,
            Relays::Disabled => RelayMode::Disabled,
            Relays::Custom(relays) => RelayMode::Custom(relays.into_iter().collect::<RelayMap>()),
        });
        if !self.relay_roots.is_empty() {
            builder = builder.ca_tls_config(CaTlsConfig::embedded().with_extra_roots(self.relay_roots));
        }
        if self.n0_lookup {
            builder = builder
                .address_lookup(PkarrPublisher::n0_dns())
                .address_lookup(PkarrResolver::n0_dns())
                .address_lookup(DnsAddressLookup::n0_dns());
        }
        if self.relay_only {
            builder = builder.clear_ip_transports();
        }
        if let Some(addr) = self.bind_addr {
            builder = builder
                .clear_ip_transports()
                .bind_addr(addr)
                .map_err(|e| IrohError::new(ErrorCode::InvalidAddr, format!("cannot bind to {addr}: {e}")))?;
        }
        // Finite windows: the connection-level one lets an event pump pause its peer
        // (see pump/reader.rs), and a per-stream window below ~1,000 full packets keeps
        // noq 1.4's receive assembler under its 1,024-span limit for slow readers.
        let mut transport = QuicTransportConfig::builder()
            .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
            .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW));
        if let Some(idle) = self.idle_timeout {
            let idle = IdleTimeout::try_from(idle).map_err(|_| IrohError::invalid_argument("idleTimeoutMs is too large"))?;
            transport = transport.max_idle_timeout(Some(idle));
        }
        if let Some(keep) = self.keep_alive {
            transport = transport.keep_alive_interval(keep);
        }
        builder = builder.transport_config(transport.build());
        builder.bind().await.map_err(|e| IrohError::new(ErrorCode::Bind, format!("cannot bind the endpoint: {e}")))
    }
}

/// Topic connections are routed off the accept loop once a topic is joined.
type TopicRoute = Arc<std::sync::Mutex<Option<Arc<Topics>>>>;

pub(crate) struct Shared {
    /// The endpoint until `close()` is done with it: every clone keeps its socket open, so
    /// JS objects must not hold one until they are collected.
    ep: std::sync::Mutex<Option<iroh::Endpoint>>,
    id: iroh::EndpointId,
    /// Its close token (fires on `close()`, so that pending calls settle at once), its
    /// connections and the tasks that hold handles.
    owner: ConnOwner,
    /// Each relay's last state; `None` when relays are disabled.
    relays: Option<Reports>,
    incoming: Mutex<Option<mpsc::Receiver<iroh::endpoint::Connection>>>,
    /// Fires once `close()` has let go of everything, for a second `close()` to wait on.
    released: CancellationToken,
    /// Who may open topic connections (the handshake hook reads it).
    gate: Arc<Gate>,
    /// The gossip and joined topics, once a topic is joined.
    topics: TopicRoute,
    /// The ALPNs the user asked for; topic ALPNs are added after them.
    user_alpns: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    fn handle(&self) -> IrohResult<iroh::Endpoint> {
        self.ep.lock().unwrap_or_else(|e| e.into_inner()).clone().ok_or_else(IrohError::endpoint_closed)
    }

    /// The endpoint's topics, made on the first join: then it accepts the topic ALPNs too.
    pub(crate) fn topics(&self) -> IrohResult<(iroh::Endpoint, Arc<Topics>)> {
        let ep = self.handle()?;
        let made = {
            let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            match topics.as_ref() {
                Some(t) => return Ok((ep, t.clone())),
                None => {
                    let t = Topics::new(&ep, self.gate.clone(), &self.owner)?;
                    *topics = Some(t.clone());
                    t
                }
            }
        };
        self.apply_alpns(&ep);
        // A pending `accept()` holds the lock while it waits: then the loop runs already.
        if let Ok(mut incoming) = self.incoming.try_lock() {
            if incoming.is_none() {
                *incoming = Some(start_accept_loop(&ep, &self.owner, &self.topics));
            }
        }
        Ok((ep, made))
    }

    /// The user's ALPNs, then the topic ones if a topic was joined.
    fn apply_alpns(&self, ep: &iroh::Endpoint) {
        let mut alpns = self.user_alpns.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if self.topics.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            alpns.push(GOSSIP_ALPN.to_vec());
            alpns.push(REPAIR_ALPN.to_vec());
        }
        ep.set_alpns(alpns);
    }

    /// Closes the endpoint, then lets go of it, its connections and their streams, and
    /// waits for the tasks holding a handle, so that the socket is closed on return.
    async fn release(&self) {
        let taken = self.ep.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(ep) = taken else {
            return self.released.cancelled().await;
        };
        let bound = ep.bound_sockets();
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(topics) = topics {
            topics.shutdown().await;
        }
        // Later ones are let go as they are made.
        let conns = self.owner.conns.drain();
        for conn in &conns {
            conn.endpoint_closing();
        }
        ep.close().await;
        // Connections that finished their handshake but were never accepted.
        self.incoming.lock().await.take();
        for conn in conns {
            conn.release().await;
        }
        drop(ep);
        self.owner.tasks.close();
        // They end as soon as they see the close; the bound is against a bug hanging close().
        if tokio::time::timeout(RELEASE_WAIT, self.owner.tasks.wait()).await.is_err() {
            tracing::warn!("{} tasks still hold the closed endpoint after {RELEASE_WAIT:?}", self.owner.tasks.len());
        }
        // Our handles are gone; iroh's own background tasks may hold the socket a moment longer.
        if !crate::release::until_ports_free(&bound, PORT_WAIT).await {
            tracing::warn!("the closed endpoint's ports {bound:?} are still taken after {PORT_WAIT:?}");
        }
        self.released.cancel();
    }
}

/// A QUIC endpoint identified by its node id (an ed25519 public key).
#[napi]
pub struct Endpoint {
    shared: Arc<Shared>,
}

#[napi]
impl Endpoint {
    /// Binds a new endpoint.
    #[napi(catch_unwind, ts_return_type = "Promise<Endpoint>")]
    pub fn create<'env>(env: &'env Env, options: Option<EndpointOptions>) -> napi::Result<PromiseRaw<'env, Endpoint>> {
        let options = options.unwrap_or(EndpointOptions {
            alpns: None,
            secret_key: None,
            secret_key_path: None,
            relay_mode: None,
            relay_ca_certificates: None,
            relay_only: None,
            bind_addr: None,
            address_lookup: None,
            idle_timeout_ms: None,
            keep_alive_ms: None,
        });
        spawn(env, async move {
            let config = blocking(move || Config::from_options(options)).await?;
            let has_relays = !matches!(config.relays, Relays::Disabled);
            let accepts = !config.alpns.is_empty();
            let user_alpns = config.alpns.clone();
            let (relay_urls, relay_roots) = (config.relay_urls(), config.relay_roots.clone());
            let gate = Arc::new(Gate::default());
            let ep = config.bind(gate.clone()).await?;
            let owner = ConnOwner::new();
            let relays = has_relays.then(|| {
                let (reports, watch) =
                    relay_check::watch_relays(ep.clone(), relay_urls, relay_roots, owner.closed.clone(), owner.tasks.clone());
                napi::bindgen_prelude::spawn(owner.tasks.track_future(watch));
                reports
            });
            let topics = TopicRoute::default();
            // Run handshakes from the start, so that peers with a wrong ALPN are refused
            // promptly and good ones wait, bounded, for `accept()`.
            let incoming = accepts.then(|| start_accept_loop(&ep, &owner, &topics));
            Ok(Endpoint {
                shared: Arc::new(Shared {
                    id: ep.id(),
                    ep: std::sync::Mutex::new(Some(ep)),
                    owner,
                    relays,
                    incoming: Mutex::new(incoming),
                    released: CancellationToken::new(),
                    gate,
                    topics,
                    user_alpns: std::sync::Mutex::new(user_alpns),
                }),
            })
        })
    }

    /// This endpoint's node id: the hex form of its public key.
    #[napi(catch_unwind)]
    pub fn node_id(&self) -> String {
        self.shared.id.to_string()
    }

    /// The addresses peers can use to reach this endpoint right now (none once closed).
    #[napi(catch_unwind)]
    pub fn addr(&self) -> EndpointAddrInfo {
        let addr = self.current_addr();
        let (relay_url, direct_addresses) = identity::addr_parts(&addr);
        EndpointAddrInfo { node_id: addr.id.to_string(), relay_url, direct_addresses }
    }

    /// An endpoint ticket (a string starting with `endpoint`) carrying the node id and
    /// current addresses, readable by other iroh tools.
    #[napi(catch_unwind)]
    pub fn ticket(&self) -> String {
        identity::make_ticket(&self.current_addr())
    }

    /// Resolves once a home relay is connected. Rejects as soon as every relay has failed
    /// in a way waiting will not mend, with that relay's code (`ERR_IROH_RELAY_UNTRUSTED`,
    /// `_REFUSED`, `_UNRESOLVED`, `_DENIED`, `ERR_IROH_NOT_A_RELAY`); with
    /// `ERR_IROH_TIMEOUT` when none answers within `timeoutMs` (default 15 s); and with
    /// `ERR_IROH_NO_RELAY` at once when relays are disabled.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn online<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<u32>,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        let ms = timeout_ms.unwrap_or(DEFAULT_ONLINE_TIMEOUT_MS);
        spawn(
            env,
            self.shared.owner.tasks.track_future(async move {
                if shared.owner.closed.is_cancelled() {
                    return Err(IrohError::endpoint_closed());
                }
                let Some(mut reports) = shared.relays.clone() else {
                    return Err(IrohError::new(
                        ErrorCode::NoRelay,
                        "relays are disabled on this endpoint, so it never goes online through one",
                    ));
                };
                let ep = shared.handle()?;
                let wait = async move {
                    let seen = reports.clone();
                    tokio::select! {
                        biased;
                        _ = ep.online() => Ok(()),
                        failed = relay_check::all_failed(&mut reports) => Err(failed),
                        _ = tokio::time::sleep(Duration::from_millis(u64::from(ms))) => {
                            let seen = seen.borrow();
                            Err(relay_fault::timed_out(ms, seen.iter().filter_map(|r| Some((r.url.as_str(), r.fault.as_ref()?)))))
                        }
                    }
                };
                guarded(wait, cancel, &shared.owner.closed, || Err(IrohError::endpoint_closed())).await
            }),
        )
    }

    /// Dials a peer. `target` is a node id, a ticket or an `addr()`-shaped object. Reports
    /// through `done` rather than a Promise: a dial in progress keeps the process alive only
    /// as long as its owner wants (the JS layer holds a handle for that, and `unref()`).
    #[napi(catch_unwind)]
    pub fn connect(
        &self,
        target: Either<String, EndpointAddrInfo>,
        alpn: String,
        timeout_ms: Option<u32>,
        additional_alpns: Option<Vec<String>>,
        cancel: Option<&CancelToken>,
        #[napi(ts_arg_type = "(settled: ConnectionSettled) => void")] done: Function<ConnectionSettled, ()>,
    ) -> Result<(), CodedError> {
        self.settle_connection(cancel, done, move |shared, cancel| async move {
            let addr: EndpointAddr = match &target {
                Either::A(s) => identity::parse_target(s)?,
                Either::B(a) => identity::addr_from_parts(&a.node_id, a.relay_url.as_deref(), &a.direct_addresses)?,
            };
            let alpn = identity::validate_alpn(&alpn)?;
            // Offered too; the accepting side picks the first of its own list it shares.
            let additional = additional_alpns
                .unwrap_or_default()
                .iter()
                .map(|a| identity::validate_alpn(a))
                .collect::<IrohResult<Vec<_>>>()?;
            if shared.owner.closed.is_cancelled() {
                return Err(IrohError::endpoint_closed());
            }
            let remote = addr.id;
            let ep = shared.handle()?;
            let dial = async move {
                let connecting = async {
                    let options = iroh::endpoint::ConnectOptions::new().with_additional_alpns(additional);
                    match ep.connect_with_opts(addr, &alpn, options).await {
                        Ok(connecting) => connecting.await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                let result = match timeout_ms {
                    Some(ms) => tokio::time::timeout(Duration::from_millis(ms as u64), connecting).await.map_err(|_| {
                        IrohError::new(
                            ErrorCode::ConnectTimeout,
                            format!("no connection to {} within {ms} ms", remote.fmt_short()),
                        )
                    })?,
                    None => connecting.await,
                };
                result.map_err(|e| {
                    if ep.is_closed() {
                        IrohError::endpoint_closed()
                    } else {
                        IrohError::new(ErrorCode::Connect, format!("cannot connect to {}: {e}", remote.fmt_short()))
                    }
                })
            };
            let conn = guarded(dial, cancel, &shared.owner.closed, || Err(IrohError::endpoint_closed())).await?;
            Ok(Some(Connection::new(conn, &shared.owner)))
        })
    }

    /// The next incoming connection, or `null` once the endpoint is closed. Reports through
    /// `done`, as `connect` does: the endpoint's own handle keeps the process alive.
    #[napi(catch_unwind)]
    pub fn accept(
        &self,
        cancel: Option<&CancelToken>,
        #[napi(ts_arg_type = "(settled: ConnectionSettled) => void")] done: Function<ConnectionSettled, ()>,
    ) -> Result<(), CodedError> {
        self.settle_connection(cancel, done, move |shared, cancel| async move {
            let next = async {
                let mut incoming = shared.incoming.lock().await;
                if incoming.is_none() {
                    let Ok(ep) = shared.handle() else { return Ok(None) };
                    *incoming = Some(start_accept_loop(&ep, &shared.owner, &shared.topics));
                }
                match incoming.as_mut() {
                    Some(rx) => Ok(rx.recv().await),
                    None => Ok(None),
                }
            };
            let conn = guarded(next, cancel, &shared.owner.closed, || Ok(None)).await?;
            Ok(conn.map(|c| Connection::new(c, &shared.owner)))
        })
    }

    /// Closes every connection and the socket, and lets go of all native state: once this
    /// resolves, the port is free, whatever JS still holds. Pending calls settle.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        shared.owner.closed.cancel();
        spawn(env, async move {
            shared.release().await;
            Ok(())
        })
    }

    /// Replaces the ALPNs this endpoint accepts, most preferred first: a peer that offers
    /// several gets the first of these that it offers.
    #[napi(catch_unwind)]
    pub fn set_alpns(&self, alpns: Vec<String>) -> Result<(), CodedError> {
        let alpns = alpns.iter().map(|a| identity::validate_alpn(a)).collect::<IrohResult<Vec<_>>>()?;
        let ep = self.shared.handle()?;
        *self.shared.user_alpns.lock().unwrap_or_else(|e| e.into_inner()) = alpns;
        self.shared.apply_alpns(&ep);
        Ok(())
    }

    /// Each configured relay as last seen: connected as home relay or not, and why it
    /// cannot be used when that is known. Empty when relays are disabled or once closed.
    #[napi(catch_unwind)]
    pub fn relay_status(&self) -> Vec<RelayStatus> {
        match &self.shared.relays {
            Some(reports) if !self.shared.owner.closed.is_cancelled() => {
                let mut now = reports.borrow().clone();
                // iroh's own word as of now: the watch may not have taken it in yet.
                if let Ok(ep) = self.shared.handle() {
                    relay_check::apply_home(&mut now, &ep.home_relay_status().get());
                }
                relay_check::statuses(&now)
            }
            _ => Vec::new(),
        }
    }

    /// Posts `relayStatus()` to the mailbox address `to` now and on every change; an
    /// empty list once the endpoint closes, which ends the watch.
    #[napi(catch_unwind)]
    pub fn watch_relays(
        &self,
        // The mailbox address of the JS side's listener (lib/mailbox.js).
        #[napi(ts_arg_type = "number")] to: u32,
    ) -> Result<Watch, CodedError> {
        let listener = crate::mailbox::Address::new(to)?;
        let reports = self.shared.relays.clone().filter(|_| !self.shared.owner.closed.is_cancelled());
        Ok(relay_check::watch_statuses(reports, listener))
    }

    #[napi(catch_unwind)]
    pub fn is_closed(&self) -> bool {
        self.shared.owner.closed.is_cancelled() || self.shared.handle().map_or(true, |ep| ep.is_closed())
    }
}

impl Endpoint {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The address now; just the node id once closed, since it is reachable nowhere.
    fn current_addr(&self) -> EndpointAddr {
        self.shared.handle().map_or_else(|_| EndpointAddr::new(self.shared.id), |ep| ep.addr())
    }

    /// Runs `op` (given the endpoint's state and the caller's cancel token) where the
    /// endpoint's close waits for it, and reports its outcome through the weak callback
    /// `done`.
    fn settle_connection<F, Fut>(
        &self,
        cancel: Option<&CancelToken>,
        done: Function<ConnectionSettled, ()>,
        op: F,
    ) -> Result<(), CodedError>
    where
        F: FnOnce(Arc<Shared>, Option<CancellationToken>) -> Fut,
        Fut: std::future::Future<Output = IrohResult<Option<Connection>>> + Send + 'static,
    {
        let done: WeakCallback<ConnectionSettled> = weak_callback(done)?;
        let fut = self.shared.owner.tasks.track_future(op(self.shared.clone(), token_of(cancel)));
        napi::bindgen_prelude::spawn(async move {
            let settled = match fut.await {
                Ok(connection) => ConnectionSettled { connection, error_code: None, error_message: None },
                Err(e) => {
                    ConnectionSettled { connection: None, error_code: Some(e.code().to_string()), error_message: Some(e.message) }
                }
            };
            notify(&done, settled);
        });
        Ok(())
    }
}

/// How a `connect` or `accept` settled: a connection (`null` from an `accept` on a closed
/// endpoint), or the code and message of the error.
#[napi(object, object_from_js = false)]
pub struct ConnectionSettled {
    pub connection: Option<Connection>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Accepts in the background so that a slow handshake never holds up the next one.
fn start_accept_loop(ep: &iroh::Endpoint, owner: &ConnOwner, topics: &TopicRoute) -> mpsc::Receiver<iroh::endpoint::Connection> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    let topics = topics.clone();
    let ep = ep.clone();
    let closed = owner.closed.clone();
    let tasks = owner.tasks.clone();
    tokio::spawn(owner.tasks.track_future(async move {
        loop {
            let incoming = tokio::select! {
                _ = closed.cancelled() => break,
                i = ep.accept() => match i { Some(i) => i, None => break },
            };
            let tx = tx.clone();
            let closed = closed.clone();
            let topics = topics.clone();
            tokio::spawn(tasks.track_future(async move {
                let handshake = async {
                    match incoming.accept() {
                        Ok(accepting) => accepting.await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                let conn = tokio::select! {
                    _ = closed.cancelled() => return,
                    r = handshake => match r {
                        Ok(conn) => conn,
                        Err(e) => return tracing::debug!("incoming handshake failed: {e}"),
                    }
                };
                let route = topics.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let Some(conn) = (match route {
                    Some(topics) => topics.route(conn),
                    None => Some(conn),
                }) else {
                    return;
                };
                tokio::select! {
                    _ = closed.cancelled() => {}
                    _ = tx.send(conn) => {}
                }
            }));
        }
    }));
    rx
}

/// One entry of `relayMode.relays`: a URL (QUIC address discovery on the default port) or
/// `{ url, quicPort }`.
fn relay_config(entry: &Either<String, RelayInfo>) -> IrohResult<RelayConfig> {
    match entry {
        Either::A(url) => Ok(RelayConfig::from(identity::parse_relay_url(url)?)),
        Either::B(info) => {
            let port = u16::try_from(info.quic_port)
                .map_err(|_| IrohError::invalid_argument(format!("quicPort {} is not a port number", info.quic_port)))?;
            Ok(RelayConfig::new(identity::parse_relay_url(&info.url)?, Some(RelayQuicConfig::new(port))))
        }
    }
}
