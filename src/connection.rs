//! `Connection`: one QUIC connection to a peer, with its streams, datagrams, statistics
//! and the reason it closed.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use iroh::endpoint::{ConnectionError, VarInt};
use napi::bindgen_prelude::{Buffer, Function, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::error::{CodedError, ErrorCode, IrohError};
use crate::paths::{self, PathSnapshot};
use crate::pending::{guarded, notify, spawn, token_of, weak_callback, CancelToken, WeakCallback};
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
pub struct UdpCounters {
    pub datagrams: f64,
    pub bytes: f64,
}

/// Counters of a connection since it opened.
#[napi(object)]
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


pub(crate) struct ConnShared {
    pub conn: iroh::endpoint::Connection,
    /// What this side passed to `close()`: QUIC reports only "locally closed".
    local_close: Mutex<Option<CloseInfo>>,
    /// Fires when this side closes the connection or its endpoint, so that pending calls
    /// settle at once. A child of the endpoint's token.
    pub closing: CancellationToken,
    /// The endpoint's token: tells "the endpoint was closed" apart from other closes.
    endpoint_closed: CancellationToken,
}

impl ConnShared {
    pub fn close(&self, code: u32, reason: &str) {
        if let Ok(mut local) = self.local_close.lock() {
            if local.is_none() {
                *local = Some(CloseInfo { code: code as f64, reason: reason.to_string(), kind: "local".into() });
            }
        }
        self.closing.cancel();
        self.conn.close(VarInt::from_u32(code), reason.as_bytes());
    }

    pub fn close_info(&self, err: &ConnectionError) -> CloseInfo {
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

/// A QUIC connection to one peer.
#[napi]
pub struct Connection {
    pub(crate) shared: Arc<ConnShared>,
}

impl Connection {
    /// Wraps a connection of the endpoint whose close token is `endpoint_closed`.
    pub fn new(conn: iroh::endpoint::Connection, endpoint_closed: &CancellationToken) -> Self {
        Self {
            shared: Arc::new(ConnShared {
                conn,
                local_close: Mutex::new(None),
                closing: endpoint_closed.child_token(),
                endpoint_closed: endpoint_closed.clone(),
            }),
        }
    }
}

#[napi]
impl Connection {
    /// The peer's node id.
    #[napi(catch_unwind)]
    pub fn remote_node_id(&self) -> String {
        self.shared.conn.remote_id().to_string()
    }

    /// The ALPN protocol this connection speaks.
    #[napi(catch_unwind)]
    pub fn alpn(&self) -> String {
        String::from_utf8_lossy(self.shared.conn.alpn()).into_owned()
    }

    /// Opens a bidirectional stream. The peer learns of it when the first byte is sent.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn open_bi<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, BiStream>> {
        let shared = self.shared.clone();
        spawn(env, async move {
            let (send, recv) = shared.conn.open_bi().await.map_err(|e| shared.closed_error(&e))?;
            Ok(BiStream { send: SendStream::new(send, &shared), recv: RecvStream::new(recv, &shared) })
        })
    }

    /// Waits for the peer to open a bidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn accept_bi<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, BiStream>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, async move {
            let accept = async { shared.conn.accept_bi().await.map_err(|e| shared.closed_error(&e)) };
            let (send, recv) = guarded(accept, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(BiStream { send: SendStream::new(send, &shared), recv: RecvStream::new(recv, &shared) })
        })
    }

    /// Opens a unidirectional (send-only) stream.
    #[napi(catch_unwind, ts_return_type = "Promise<SendStream>")]
    pub fn open_uni<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, SendStream>> {
        let shared = self.shared.clone();
        spawn(env, async move {
            let send = shared.conn.open_uni().await.map_err(|e| shared.closed_error(&e))?;
            Ok(SendStream::new(send, &shared))
        })
    }

    /// Waits for the peer to open a unidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<RecvStream>")]
    pub fn accept_uni<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, RecvStream>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, async move {
            let accept = async { shared.conn.accept_uni().await.map_err(|e| shared.closed_error(&e)) };
            let recv = guarded(accept, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(RecvStream::new(recv, &shared))
        })
    }

    /// Sends an unreliable datagram of at most `maxDatagramSize()` bytes.
    #[napi(catch_unwind)]
    pub fn send_datagram(&self, data: &[u8]) -> Result<(), CodedError> {
        use iroh::endpoint::SendDatagramError as E;
        self.shared.conn.send_datagram(Bytes::copy_from_slice(data)).map_err(|e| {
            let err = match e {
                E::ConnectionLost(e) => self.shared.closed_error(&e),
                E::TooLarge => IrohError::new(
                    ErrorCode::Datagram,
                    format!(
                        "a datagram of {} bytes exceeds maxDatagramSize() ({})",
                        data.len(),
                        self.shared.conn.max_datagram_size().unwrap_or(0)
                    ),
                ),
                other => IrohError::new(ErrorCode::Datagram, format!("cannot send the datagram: {other}")),
            };
            err.into()
        })
    }

    /// The next datagram from the peer.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn read_datagram<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let shared = self.shared.clone();
        let cancel = token_of(cancel);
        spawn(env, async move {
            let read = async { shared.conn.read_datagram().await.map_err(|e| shared.closed_error(&e)) };
            let data = guarded(read, cancel, &shared.closing, || Err(shared.closed_error(&ConnectionError::LocallyClosed))).await?;
            Ok(Buffer::from(data.to_vec()))
        })
    }

    /// The largest datagram the path allows now, or `null` if the peer does not take datagrams.
    #[napi(catch_unwind)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        self.shared.conn.max_datagram_size().map(|n| n as u32)
    }

    /// Round trip time of the selected path, in milliseconds.
    #[napi(catch_unwind)]
    pub fn rtt(&self) -> f64 {
        selected_rtt_ms(&self.shared.conn)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> ConnectionStats {
        let s = self.shared.conn.stats();
        ConnectionStats {
            udp_tx: UdpCounters { datagrams: s.udp_tx.datagrams as f64, bytes: s.udp_tx.bytes as f64 },
            udp_rx: UdpCounters { datagrams: s.udp_rx.datagrams as f64, bytes: s.udp_rx.bytes as f64 },
            sent_packets: s.sent_packets as f64,
            sent_bytes: s.sent_bytes as f64,
            lost_packets: s.lost_packets as f64,
            lost_bytes: s.lost_bytes as f64,
            rtt_ms: selected_rtt_ms(&self.shared.conn),
        }
    }

    /// The open network paths.
    #[napi(catch_unwind)]
    pub fn paths(&self) -> Vec<PathInfo> {
        PathState::from(paths::snapshot(&self.shared.conn).as_slice()).paths
    }

    /// Where application data goes now: `direct`, `relay`, `mixed` (a relay while a
    /// direct path is open too), or `none` once closed.
    #[napi(catch_unwind, ts_return_type = "'direct' | 'relay' | 'mixed' | 'none'")]
    pub fn path_type(&self) -> String {
        paths::path_type(&paths::snapshot(&self.shared.conn)).as_str().to_string()
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
        let conn = self.shared.conn.clone();
        let stopped = stop.clone();
        napi::bindgen_prelude::spawn(async move {
            use tokio_stream::StreamExt;
            let mut updates = conn.paths_stream();
            let mut last: Option<Vec<PathSnapshot>> = None;
            loop {
                let list = tokio::select! {
                    _ = stopped.cancelled() => return,
                    next = updates.next() => match next { Some(list) => list, None => break },
                };
                let now = paths::from_list(&list);
                if last.as_deref().is_none_or(|before| paths::changed(before, &now)) {
                    notify(&tsfn, PathState::from(now.as_slice()));
                    last = Some(now);
                }
            }
            // Closed: no paths left.
            if last.is_some_and(|l| !l.is_empty()) {
                notify(&tsfn, PathState::from(&[][..]));
            }
        });
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
        spawn(env, async move {
            let err = shared.conn.closed().await;
            Ok(shared.close_info(&err))
        })
    }

    /// Why the connection closed, or `null` while it is open.
    #[napi(catch_unwind)]
    pub fn close_reason(&self) -> Option<CloseInfo> {
        self.shared.conn.close_reason().map(|e| self.shared.close_info(&e))
    }

    /// Whether the connection has closed, whoever closed it.
    #[napi(catch_unwind)]
    pub fn is_closed(&self) -> bool {
        self.shared.closing.is_cancelled() || self.shared.conn.close_reason().is_some()
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
        napi::bindgen_prelude::spawn(async move {
            let err = shared.conn.closed().await;
            notify(&callback, shared.close_info(&err));
        });
        Ok(())
    }
}

fn selected_rtt_ms(conn: &iroh::endpoint::Connection) -> f64 {
    let paths = conn.paths();
    let selected = paths.iter().find(|p| p.is_selected()).or_else(|| paths.iter().next());
    selected.map(|p| p.rtt().as_secs_f64() * 1000.0).unwrap_or(0.0)
}
