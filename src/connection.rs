//! `Connection`: one QUIC connection to a peer, with its streams, datagrams, statistics
//! and the reason it closed.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use iroh::endpoint::{ConnectionError, VarInt};
use napi::bindgen_prelude::{Buffer, Function, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TrackedFuture;
use tokio_util::task::TaskTracker;

use crate::error::{CodedError, ErrorCode, IrohError};
use alkdev_iroh_core::paths::{self, PathSnapshot};
use crate::pending::{guarded, notify, spawn, token_of, weak_callback, CancelToken, WeakCallback};
use crate::release::{empty_all, Registry, Slot};
use crate::stream::{RecvStream, SendStream};

/// Why a connection closed.
#[napi(object)]
#[derive(Clone, Debug, PartialEq)]
pub struct CloseInfo {
    /// The application error code passed to `close()`, or the QUIC transport error code.
    pub code: f64,
    pub reason: String,
    /// `local`: this side closed it; `remote`: the peer closed it; `timeout`: the peer went
    /// silent past the idle timeout; `reset`: the peer lost its state (e.g. restarted);
    /// `transport`: a QUIC protocol error.
    #[napi(ts_type = "'local' | 'remote' | 'timeout' | 'reset' | 'transport'")]
    pub kind: String,
}

/// Both halves of a bidirectional stream.
#[napi(object, object_from_js = false)]
pub struct BiStream {
    pub send: SendStream,
    pub recv: RecvStream,
}

#[napi(object)]
#[derive(Clone, Default)]
pub struct UdpCounters {
    pub datagrams: f64,
    pub bytes: f64,
}

/// Counters of a connection since it opened.
#[napi(object)]
#[derive(Clone, Default)]
pub struct ConnectionStats {
    pub udp_tx: UdpCounters,
    pub udp_rx: UdpCounters,
    pub sent_packets: f64,
    pub sent_bytes: f64,
    pub lost_packets: f64,
    pub lost_bytes: f64,
    /// Round trip time of the selected path in milliseconds.
    pub rtt_ms: f64,
}

/// One network path of a connection.
#[napi(object, object_from_js = false)]
pub struct PathInfo {
    /// `direct`: UDP straight to the peer; `relay`: through a relay server.
    #[napi(ts_type = "'direct' | 'relay' | 'other'")]
    pub kind: String,
    /// `ip:port` of the peer for a direct path, the relay's URL for a relay path.
    pub remote_addr: String,
    /// Round trip time on this path, in milliseconds.
    pub rtt_ms: f64,
    /// Whether application data goes this way now.
    pub selected: bool,
}

/// A connection's paths and where its data goes, as `watchPaths` reports them.
#[napi(object, object_from_js = false)]
pub struct PathState {
    #[napi(ts_type = "'direct' | 'relay' | 'mixed' | 'none'")]
    pub path_type: String,
    pub paths: Vec<PathInfo>,
}

impl From<&[PathSnapshot]> for PathState {
    fn from(snapshot: &[PathSnapshot]) -> Self {
        PathState {
            path_type: paths::path_type(snapshot).as_str().to_string(),
            paths: snapshot
                .iter()
                .map(|p| PathInfo { kind: p.kind.as_str().to_string(), remote_addr: p.remote.clone(), rtt_ms: p.rtt_ms, selected: p.selected })
                .collect(),
        }
    }
}

/// Stops a `watchPaths` subscription.
#[napi]
pub struct PathWatcher {
    stop: CancellationToken,
}

#[napi]
impl PathWatcher {
    #[napi(catch_unwind)]
    pub fn stop(&self) {
        self.stop.cancel();
    }
}


/// What an endpoint shares with the connections it makes, so that its `close()` can
/// settle their pending calls and let go of them.
pub(crate) struct ConnOwner {
    /// Fires on the endpoint's `close()`.
    pub closed: CancellationToken,
    /// Futures that hold a clone of the endpoint or of one of its connections (each keeps
    /// the socket open): the endpoint's `close()` waits for them to end.
    pub tasks: TaskTracker,
    pub conns: Registry<ConnShared>,
}

impl ConnOwner {
    pub fn new() -> Self {
        Self { closed: CancellationToken::new(), tasks: TaskTracker::new(), conns: Registry::default() }
    }
}

pub(crate) struct ConnShared {
    /// The connection, until this side closes it or its endpoint closes: every handle to it
    /// keeps the endpoint's socket open, so JS objects must not hold it until collected.
    conn: std::sync::Mutex<Option<iroh::endpoint::Connection>>,
    remote: iroh::EndpointId,
    alpn: String,
    /// Why it closed and its last counters, taken when the connection is let go.
    released: OnceLock<(ConnectionError, ConnectionStats)>,
    /// What this side passed to `close()`: QUIC reports only "locally closed".
    local_close: Mutex<Option<CloseInfo>>,
    /// Fires when this side closes the connection or its endpoint, so that pending calls
    /// settle at once. A child of the endpoint's token.
    pub closing: CancellationToken,
    /// The endpoint's token: tells "the endpoint was closed" apart from other closes.
    endpoint_closed: CancellationToken,
    /// The endpoint's close found this connection open: that close is why it ended, whatever
    /// noq reports (it may say its endpoint driver went away).
    ended_by_endpoint: OnceLock<()>,
    tasks: TaskTracker,
    sends: Registry<Slot<iroh::endpoint::SendStream>>,
    recvs: Registry<Slot<iroh::endpoint::RecvStream>>,
}

impl ConnShared {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<iroh::endpoint::Connection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A clone of the connection for a task (run it under `track`), or why it is gone.
    pub fn handle(&self) -> Result<iroh::endpoint::Connection, ConnectionError> {
        self.slot().clone().ok_or_else(|| self.final_error())
    }

    fn with<R>(&self, f: impl FnOnce(&iroh::endpoint::Connection) -> R) -> Option<R> {
        self.slot().as_ref().map(f)
    }

    fn final_error(&self) -> ConnectionError {
        self.released.get().map_or(ConnectionError::LocallyClosed, |(e, _)| e.clone())
    }

    /// Why the connection closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        match self.slot().as_ref() {
            Some(conn) => conn.close_reason(),
            None => Some(self.final_error()),
        }
    }

    /// The error of a call on a connection that was let go.
    pub fn gone(&self) -> IrohError {
        self.closed_error(&self.final_error())
    }

    /// Runs `fut`, which holds a handle of this connection, where the endpoint's close
    /// waits for it.
    pub fn track<F: std::future::Future>(&self, fut: F) -> TrackedFuture<F> {
        self.tasks.track_future(fut)
    }

    /// Puts a new stream's slot where `release` finds it; `false` (and the stream dropped)
    /// when the connection was let go already.
    pub fn add_send(&self, slot: &Arc<Slot<iroh::endpoint::SendStream>>) -> bool {
        self.sends.add(slot)
    }

    pub fn add_recv(&self, slot: &Arc<Slot<iroh::endpoint::RecvStream>>) -> bool {
        self.recvs.add(slot)
    }

    /// Called by the endpoint's close before it closes the socket.
    pub fn endpoint_closing(&self) {
        if self.close_reason().is_none() {
            let _ = self.ended_by_endpoint.set(());
        }
    }

    /// Lets go of the connection and, once their pending operations have settled (they do
    /// at once: `closing` has fired), of its streams. Call it once the connection is closed.
    pub fn release(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let taken = self.slot().take();
        if let Some(conn) = taken {
            let why = match conn.close_reason() {
                Some(why) if self.ended_by_endpoint.get().is_none() => why,
                _ => ConnectionError::LocallyClosed,
            };
            let _ = self.released.set((why, stats_of(&conn)));
        }
        let (sends, recvs) = (self.sends.drain(), self.recvs.drain());
        async move {
            empty_all(sends).await;
            empty_all(recvs).await;
        }
    }

    pub fn close(&self, code: u32, reason: &str) {
        if let Ok(mut local) = self.local_close.lock() {
            if local.is_none() {
                *local = Some(CloseInfo { code: code as f64, reason: reason.to_string(), kind: "local".into() });
            }
        }
        self.closing.cancel();
        self.with(|conn| conn.close(VarInt::from_u32(code), reason.as_bytes()));
        // noq keeps a closed connection alive for as long as it needs to tell the peer.
        let release = self.release();
        napi::bindgen_prelude::spawn(self.track(release));
    }

    pub fn close_info(&self, err: &ConnectionError) -> CloseInfo {
        let err = if self.ended_by_endpoint.get().is_some() { &ConnectionError::LocallyClosed } else { err };
        if matches!(err, ConnectionError::LocallyClosed) {
            if let Some(info) = self.local_close.lock().ok().and_then(|l| l.clone()) {
                return info;
            }
            if self.endpoint_closed.is_cancelled() {
                return CloseInfo { code: 0.0, reason: "the endpoint was closed".into(), kind: "local".into() };
            }
        }
        close_info_of(err)
    }

    /// The error of a call that found the connection closed.
    pub fn closed_error(&self, err: &ConnectionError) -> IrohError {
        let closed_here = self.local_close.lock().map(|l| l.is_some()).unwrap_or(false);
        if !closed_here && self.endpoint_closed.is_cancelled() {
            return IrohError::endpoint_closed();
        }
        let info = self.close_info(err);
        let reason = if info.reason.is_empty() { String::new() } else { format!(": {}", info.reason) };
        IrohError::new(
            ErrorCode::ConnectionClosed,
            format!("the connection is closed ({}, code {}{reason})", info.kind, info.code),
        )
    }
}

fn close_info_of(err: &ConnectionError) -> CloseInfo {
    let (code, reason, kind) = match err {
        ConnectionError::ApplicationClosed(c) => (
            c.error_code.into_inner() as f64,
            String::from_utf8_lossy(&c.reason).into_owned(),
            "remote",
        ),
        ConnectionError::ConnectionClosed(c) => (
            u64::from(c.error_code) as f64,
            String::from_utf8_lossy(&c.reason).into_owned(),
            "transport",
        ),
        ConnectionError::TimedOut => (0.0, "idle timeout".to_string(), "timeout"),
        ConnectionError::Reset => (0.0, "reset by peer".to_string(), "reset"),
        ConnectionError::LocallyClosed => (0.0, "closed locally".to_string(), "local"),
        other => (0.0, other.to_string(), "transport"),
    };
    CloseInfo { code, reason, kind: kind.to_string() }
}

fn stats_of(conn: &iroh::endpoint::Connection) -> ConnectionStats {
    let s = conn.stats();
    ConnectionStats {
        udp_tx: UdpCounters { datagrams: s.udp_tx.datagrams as f64, bytes: s.udp_tx.bytes as f64 },
        udp_rx: UdpCounters { datagrams: s.udp_rx.datagrams as f64, bytes: s.udp_rx.bytes as f64 },
        sent_packets: s.sent_packets as f64,
        sent_bytes: s.sent_bytes as f64,
        lost_packets: s.lost_packets as f64,
        lost_bytes: s.lost_bytes as f64,
        rtt_ms: selected_rtt_ms(conn),
    }
}

/// A QUIC connection to one peer.
#[napi]
pub struct Connection {
    pub(crate) shared: Arc<ConnShared>,
}

impl Connection {
    /// Wraps a connection of the endpoint that `owner` belongs to.
    pub(crate) fn new(conn: iroh::endpoint::Connection, owner: &ConnOwner) -> Self {
        let shared = Arc::new(ConnShared {
            remote: conn.remote_id(),
            alpn: String::from_utf8_lossy(conn.alpn()).into_owned(),
            conn: std::sync::Mutex::new(Some(conn)),
            released: OnceLock::new(),
            local_close: Mutex::new(None),
            closing: owner.closed.child_token(),
            endpoint_closed: owner.closed.clone(),
            ended_by_endpoint: OnceLock::new(),
            tasks: owner.tasks.clone(),
            sends: Registry::default(),
            recvs: Registry::default(),
        });
        if !owner.conns.add(&shared) {
            // The endpoint closed while this one was being accepted or dialed.
            drop(shared.release());
        }
        Self { shared }
    }
}

#[napi]
impl Connection {
    /// The peer's node id.
    #[napi(catch_unwind)]
    pub fn remote_node_id(&self) -> String {
        self.shared.remote.to_string()
    }

    /// The ALPN protocol this connection speaks.
    #[napi(catch_unwind)]
    pub fn alpn(&self) -> String {
        self.shared.alpn.clone()
    }

    /// Opens a bidirectional stream. The peer learns of it when the first byte is sent.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn open_bi<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, BiStream>> {
        let shared = self.shared.clone();
        spawn(env, self.shared.track(async move {
            let conn = shared.handle().map_err(|e| shared.closed_error(&e))?;
            let (send, recv) = conn.open_bi().await.map_err(|e| shared.closed_error(&e))?;
            Ok(BiStream { send: SendStream::new(send, &shared), recv: RecvStream::new(recv, &shared) })
        }))
    }

    /// Waits for the peer to open a bidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn accept_bi<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, BiStream>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, self.shared.track(async move {
            let conn = shared.handle().map_err(|e| shared.closed_error(&e))?;
            let accept = async { conn.accept_bi().await.map_err(|e| shared.closed_error(&e)) };
            let (send, recv) = guarded(accept, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(BiStream { send: SendStream::new(send, &shared), recv: RecvStream::new(recv, &shared) })
        }))
    }

    /// Opens a unidirectional (send-only) stream.
    #[napi(catch_unwind, ts_return_type = "Promise<SendStream>")]
    pub fn open_uni<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, SendStream>> {
        let shared = self.shared.clone();
        spawn(env, self.shared.track(async move {
            let conn = shared.handle().map_err(|e| shared.closed_error(&e))?;
            let send = conn.open_uni().await.map_err(|e| shared.closed_error(&e))?;
            Ok(SendStream::new(send, &shared))
        }))
    }

    /// Waits for the peer to open a unidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<RecvStream>")]
    pub fn accept_uni<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, RecvStream>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, self.shared.track(async move {
            let conn = shared.handle().map_err(|e| shared.closed_error(&e))?;
            let accept = async { conn.accept_uni().await.map_err(|e| shared.closed_error(&e)) };
            let recv = guarded(accept, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(RecvStream::new(recv, &shared))
        }))
    }

    /// Sends an unreliable datagram of at most `maxDatagramSize()` bytes.
    #[napi(catch_unwind)]
    pub fn send_datagram(&self, data: &[u8]) -> Result<(), CodedError> {
        use iroh::endpoint::SendDatagramError as E;
        let sent = self.shared.with(|conn| {
            conn.send_datagram(Bytes::copy_from_slice(data)).map_err(|e| match e {
                E::ConnectionLost(e) => self.shared.closed_error(&e),
                E::TooLarge => IrohError::new(
                    ErrorCode::Datagram,
                    format!(
                        "a datagram of {} bytes exceeds maxDatagramSize() ({})",
                        data.len(),
                        conn.max_datagram_size().unwrap_or(0)
                    ),
                ),
                other => IrohError::new(ErrorCode::Datagram, format!("cannot send the datagram: {other}")),
            })
        });
        sent.unwrap_or_else(|| Err(self.shared.gone())).map_err(Into::into)
    }

    /// The next datagram from the peer.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn read_datagram<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, self.shared.track(async move {
            let conn = shared.handle().map_err(|e| shared.closed_error(&e))?;
            let read = async { conn.read_datagram().await.map_err(|e| shared.closed_error(&e)) };
            let data = guarded(read, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(Buffer::from(data.to_vec()))
        }))
    }

    /// The largest datagram the path allows now, or `null` if the peer does not take datagrams.
    #[napi(catch_unwind)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        self.shared.with(|conn| conn.max_datagram_size()).flatten().map(|n| n as u32)
    }

    /// Round trip time of the selected path, in milliseconds.
    #[napi(catch_unwind)]
    pub fn rtt(&self) -> f64 {
        self.shared.with(selected_rtt_ms).unwrap_or(0.0)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> ConnectionStats {
        self.shared
            .with(stats_of)
            .or_else(|| self.shared.released.get().map(|(_, stats)| stats.clone()))
            .unwrap_or_default()
    }

    /// The open network paths.
    #[napi(catch_unwind)]
    pub fn paths(&self) -> Vec<PathInfo> {
        PathState::from(self.shared.with(path_snapshot).unwrap_or_default().as_slice()).paths
    }

    /// Where application data goes now: `direct`, `relay`, `mixed` (a relay while a
    /// direct path is open too), or `none` once closed.
    #[napi(catch_unwind, ts_return_type = "'direct' | 'relay' | 'mixed' | 'none'")]
    pub fn path_type(&self) -> String {
        paths::path_type(&self.shared.with(path_snapshot).unwrap_or_default()).as_str().to_string()
    }

    /// Calls `listener` with the current paths, then whenever a path opens or closes or the
    /// selected path changes (not for round trip times alone), until the connection closes
    /// or `stop()` is called. The listener does not keep the process alive.
    #[napi(catch_unwind)]
    pub fn watch_paths(
        &self,
        #[napi(ts_arg_type = "(state: PathState) => void")] listener: Function<PathState, ()>,
    ) -> Result<PathWatcher, CodedError> {
        let tsfn: WeakCallback<PathState> = weak_callback(listener)?;
        let stop = CancellationToken::new();
        let Ok(conn) = self.shared.handle() else {
            // Let go already: closed, so no paths.
            notify(&tsfn, PathState::from(&[][..]));
            return Ok(PathWatcher { stop });
        };
        let stopped = stop.clone();
        let closing = self.shared.closing.clone();
        napi::bindgen_prelude::spawn(self.shared.track(async move {
            use tokio_stream::StreamExt;
            let mut updates = conn.paths_stream();
            let mut last: Option<Vec<PathSnapshot>> = None;
            loop {
                let list = tokio::select! {
                    _ = stopped.cancelled() => return,
                    // Closed here: the connection is let go now, not when iroh says so.
                    _ = closing.cancelled() => break,
                    next = updates.next() => match next { Some(list) => list, None => break },
                };
                let now = path_list(&list);
                if last.as_deref().is_none_or(|before| paths::changed(before, &now)) {
                    notify(&tsfn, PathState::from(now.as_slice()));
                    last = Some(now);
                }
            }
            // Closed: no paths left.
            if last.is_some_and(|l| !l.is_empty()) {
                notify(&tsfn, PathState::from(&[][..]));
            }
        }));
        Ok(PathWatcher { stop })
    }

    /// Closes the connection with an application error code and a reason the peer sees.
    #[napi(catch_unwind)]
    pub fn close(&self, code: Option<u32>, reason: Option<String>) -> Result<(), CodedError> {
        let reason = reason.unwrap_or_default();
        // The reason must fit in one packet together with the close frame.
        if reason.len() > 1024 {
            return Err(IrohError::invalid_argument("the close reason is at most 1024 bytes").into());
        }
        self.shared.close(code.unwrap_or(0), &reason);
        Ok(())
    }

    /// Resolves when the connection closes, for whatever reason.
    #[napi(catch_unwind, ts_return_type = "Promise<CloseInfo>")]
    pub fn closed<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, CloseInfo>> {
        let shared = self.shared.clone();
        spawn(env, self.shared.track(async move {
            let err = match shared.handle() {
                Ok(conn) => conn.closed().await,
                Err(err) => err,
            };
            Ok(shared.close_info(&err))
        }))
    }

    /// Why the connection closed, or `null` while it is open.
    #[napi(catch_unwind)]
    pub fn close_reason(&self) -> Option<CloseInfo> {
        self.shared.close_reason().map(|e| self.shared.close_info(&e))
    }

    /// Whether the connection has closed, whoever closed it.
    #[napi(catch_unwind)]
    pub fn is_closed(&self) -> bool {
        self.shared.closing.is_cancelled() || self.shared.close_reason().is_some()
    }

    /// Calls `listener` once with the close info when the connection closes, whoever
    /// closes it. Unlike a pending `closed()` promise it never keeps the process alive:
    /// the JS layer holds the process open for an open connection, and lets go here.
    #[napi(catch_unwind)]
    pub fn on_close(
        &self,
        #[napi(ts_arg_type = "(info: CloseInfo) => void")] listener: Function<CloseInfo, ()>,
    ) -> Result<(), CodedError> {
        let callback = weak_callback(listener)?;
        let shared = self.shared.clone();
        napi::bindgen_prelude::spawn(self.shared.track(async move {
            let err = match shared.handle() {
                Ok(conn) => conn.closed().await,
                Err(err) => err,
            };
            notify(&callback, shared.close_info(&err));
        }));
        Ok(())
    }
}

fn selected_rtt_ms(conn: &iroh::endpoint::Connection) -> f64 {
    let paths = conn.paths();
    let selected = paths.iter().find(|p| p.is_selected()).or_else(|| paths.iter().next());
    selected.map(|p| p.rtt().as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// The open paths of `conn` now.
fn path_snapshot(conn: &iroh::endpoint::Connection) -> Vec<PathSnapshot> {
    path_list(&conn.paths())
}

fn path_list(list: &iroh::endpoint::PathList<'_>) -> Vec<PathSnapshot> {
    list.iter().map(|p| paths::describe(p.remote_addr(), p.rtt().as_secs_f64() * 1000.0, p.is_selected())).collect()
}
