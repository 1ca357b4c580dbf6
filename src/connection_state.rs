//! The state one connection's JS objects share (the `Connection`, its streams, its event
//! pump): the connection while this side holds it, why it closed, what it counted, and the
//! tokens that settle pending calls when it closes. Its own module, so that imports run one
//! way: `connection` and `stream` (and the pump) use it, it uses neither.

use std::sync::{Arc, Mutex, OnceLock};

use iroh::endpoint::{ConnectionError, VarInt};
use napi_derive::napi;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TrackedFuture;
use tokio_util::task::TaskTracker;

use crate::error::{ErrorCode, IrohError};
use crate::release::{empty_all, Registry, Slot};

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

/// What an endpoint shares with the connections it makes, so that its `close()` can
/// settle their pending calls and let go of them.
pub(crate) struct ConnOwner {
    /// Fires on the endpoint's `close()`.
    pub closed: CancellationToken,
    /// Futures that hold a clone of the endpoint or of one of its connections (each keeps
    /// the socket open): the endpoint's `close()` waits for them to end.
    pub tasks: TaskTracker,
    pub conns: Registry<ConnState>,
}

impl ConnOwner {
    pub fn new() -> Self {
        Self { closed: CancellationToken::new(), tasks: TaskTracker::new(), conns: Registry::default() }
    }
}

pub(crate) struct ConnState {
    /// The QUIC connection, held until this side closes it or its endpoint closes: every
    /// handle to it keeps the endpoint's socket open, so JS objects must not hold it until
    /// collected.
    held: Mutex<Option<iroh::endpoint::Connection>>,
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

impl ConnState {
    /// Wraps a connection of the endpoint that `owner` belongs to.
    pub fn new(conn: iroh::endpoint::Connection, owner: &ConnOwner) -> Arc<Self> {
        let state = Arc::new(ConnState {
            remote: conn.remote_id(),
            alpn: String::from_utf8_lossy(conn.alpn()).into_owned(),
            held: Mutex::new(Some(conn)),
            released: OnceLock::new(),
            local_close: Mutex::new(None),
            closing: owner.closed.child_token(),
            endpoint_closed: owner.closed.clone(),
            ended_by_endpoint: OnceLock::new(),
            tasks: owner.tasks.clone(),
            sends: Registry::default(),
            recvs: Registry::default(),
        });
        if !owner.conns.add(&state) {
            // The endpoint closed while this one was being accepted or dialed.
            drop(state.release());
        }
        state
    }

    pub fn remote(&self) -> iroh::EndpointId {
        self.remote
    }

    pub fn alpn(&self) -> &str {
        &self.alpn
    }

    /// The counters taken when the connection was let go.
    pub fn last_stats(&self) -> Option<ConnectionStats> {
        self.released.get().map(|(_, stats)| stats.clone())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<iroh::endpoint::Connection>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A clone of the connection for a task (run it under `track`), or why it is gone.
    pub fn handle(&self) -> Result<iroh::endpoint::Connection, ConnectionError> {
        self.held().clone().ok_or_else(|| self.final_error())
    }

    /// `f` of the connection while it is held.
    pub fn with<R>(&self, f: impl FnOnce(&iroh::endpoint::Connection) -> R) -> Option<R> {
        self.held().as_ref().map(f)
    }

    fn final_error(&self) -> ConnectionError {
        self.released.get().map_or(ConnectionError::LocallyClosed, |(e, _)| e.clone())
    }

    /// Why the connection closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        match self.held().as_ref() {
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
        let taken = self.held().take();
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
        ConnectionError::ApplicationClosed(c) => {
            (c.error_code.into_inner() as f64, String::from_utf8_lossy(&c.reason).into_owned(), "remote")
        }
        ConnectionError::ConnectionClosed(c) => {
            (u64::from(c.error_code) as f64, String::from_utf8_lossy(&c.reason).into_owned(), "transport")
        }
        ConnectionError::TimedOut => (0.0, "idle timeout".to_string(), "timeout"),
        ConnectionError::Reset => (0.0, "reset by peer".to_string(), "reset"),
        ConnectionError::LocallyClosed => (0.0, "closed locally".to_string(), "local"),
        other => (0.0, other.to_string(), "transport"),
    };
    CloseInfo { code, reason, kind: kind.to_string() }
}

pub fn stats_of(conn: &iroh::endpoint::Connection) -> ConnectionStats {
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

pub fn selected_rtt_ms(conn: &iroh::endpoint::Connection) -> f64 {
    let paths = conn.paths();
    let selected = paths.iter().find(|p| p.is_selected()).or_else(|| paths.iter().next());
    selected.map(|p| p.rtt().as_secs_f64() * 1000.0).unwrap_or(0.0)
}
