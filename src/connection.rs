//! `Connection`: one QUIC connection to a peer, with its streams, datagrams, statistics
//! and the reason it closed.

use std::sync::Arc;

use alkdev_iroh_core::paths::{self, PathSnapshot};
use bytes::Bytes;
use iroh::endpoint::ConnectionError;
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::connection_state::{self, CloseInfo, ConnOwner, ConnState, ConnectionStats};
use crate::error::{CodedError, ErrorCode, IrohError};
use crate::mailbox::{Address, Watch};
use crate::pending::{guarded, spawn, token_of, CancelToken};
use crate::stream::{RecvStream, SendStream};

/// Both halves of a bidirectional stream.
#[napi(object, object_from_js = false)]
pub struct BiStream {
    pub send: SendStream,
    pub recv: RecvStream,
}

/// One network path of a connection.
#[napi(object, object_from_js = false)]
pub struct PathInfo {
    /// `direct`: UDP straight to the peer (after hole punching, when behind NAT); `relay`:
    /// through a relay server.
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
                .map(|p| PathInfo {
                    kind: p.kind.as_str().to_string(),
                    remote_addr: p.remote.clone(),
                    rtt_ms: p.rtt_ms,
                    selected: p.selected,
                })
                .collect(),
        }
    }
}

/// A QUIC connection to one peer.
#[napi]
pub struct Connection {
    pub(crate) state: Arc<ConnState>,
}

impl Connection {
    /// Wraps a connection of the endpoint that `owner` belongs to.
    pub(crate) fn new(conn: iroh::endpoint::Connection, owner: &ConnOwner) -> Self {
        Self { state: ConnState::new(conn, owner) }
    }

    /// A Promise for what the peer sends next (`wait` of the connection), made into a JS
    /// value by `then`. It settles at once when the caller cancels or this side closes the
    /// connection, and the endpoint's close waits for it.
    fn wait_for<'env, R, T, W, Fut>(
        &self,
        env: &'env Env,
        cancel: Option<&CancelToken>,
        wait: W,
        then: impl FnOnce(R, &Arc<ConnState>) -> T + Send + 'static,
    ) -> napi::Result<PromiseRaw<'env, T>>
    where
        T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
        W: FnOnce(iroh::endpoint::Connection) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<R, ConnectionError>> + Send,
    {
        let state = self.state.clone();
        let cancel = token_of(cancel);
        spawn(
            env,
            self.state.track(async move {
                let conn = state.handle().map_err(|e| state.closed_error(&e))?;
                let next = async { wait(conn).await.map_err(|e| state.closed_error(&e)) };
                let value =
                    guarded(next, cancel, &state.closing, || Err(state.closed_error(&ConnectionError::LocallyClosed))).await?;
                Ok(then(value, &state))
            }),
        )
    }
}

#[napi]
impl Connection {
    /// The peer's node id.
    #[napi(catch_unwind)]
    pub fn remote_node_id(&self) -> String {
        self.state.remote().to_string()
    }

    /// The ALPN protocol this connection speaks.
    #[napi(catch_unwind)]
    pub fn alpn(&self) -> String {
        self.state.alpn().to_string()
    }

    /// Opens a bidirectional stream. The peer learns of it when the first byte is sent.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn open_bi<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, BiStream>> {
        let state = self.state.clone();
        spawn(
            env,
            self.state.track(async move {
                let conn = state.handle().map_err(|e| state.closed_error(&e))?;
                let (send, recv) = conn.open_bi().await.map_err(|e| state.closed_error(&e))?;
                Ok(BiStream { send: SendStream::new(send, &state), recv: RecvStream::new(recv, &state) })
            }),
        )
    }

    /// Waits for the peer to open a bidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<BiStream>")]
    pub fn accept_bi<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, BiStream>> {
        self.wait_for(
            env,
            cancel,
            |conn| async move { conn.accept_bi().await },
            |(send, recv), state| BiStream { send: SendStream::new(send, state), recv: RecvStream::new(recv, state) },
        )
    }

    /// Opens a unidirectional (send-only) stream.
    #[napi(catch_unwind, ts_return_type = "Promise<SendStream>")]
    pub fn open_uni<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, SendStream>> {
        let state = self.state.clone();
        spawn(
            env,
            self.state.track(async move {
                let conn = state.handle().map_err(|e| state.closed_error(&e))?;
                let send = conn.open_uni().await.map_err(|e| state.closed_error(&e))?;
                Ok(SendStream::new(send, &state))
            }),
        )
    }

    /// Waits for the peer to open a unidirectional stream.
    #[napi(catch_unwind, ts_return_type = "Promise<RecvStream>")]
    pub fn accept_uni<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, RecvStream>> {
        self.wait_for(env, cancel, |conn| async move { conn.accept_uni().await }, RecvStream::new)
    }

    /// Sends an unreliable datagram of at most `maxDatagramSize()` bytes.
    #[napi(catch_unwind)]
    pub fn send_datagram(&self, data: &[u8]) -> Result<(), CodedError> {
        use iroh::endpoint::SendDatagramError as E;
        let sent = self.state.with(|conn| {
            conn.send_datagram(Bytes::copy_from_slice(data)).map_err(|e| match e {
                E::ConnectionLost(e) => self.state.closed_error(&e),
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
        sent.unwrap_or_else(|| Err(self.state.gone())).map_err(Into::into)
    }

    /// The next datagram from the peer.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn read_datagram<'env>(&self, env: &'env Env, cancel: Option<&CancelToken>) -> napi::Result<PromiseRaw<'env, Buffer>> {
        self.wait_for(env, cancel, |conn| async move { conn.read_datagram().await }, |data, _| Buffer::from(data.to_vec()))
    }

    /// The largest datagram the path allows now, or `null` if the peer does not take datagrams.
    #[napi(catch_unwind)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        self.state.with(|conn| conn.max_datagram_size()).flatten().map(|n| n as u32)
    }

    /// Round trip time of the selected path, in milliseconds.
    #[napi(catch_unwind)]
    pub fn rtt(&self) -> f64 {
        self.state.with(connection_state::selected_rtt_ms).unwrap_or(0.0)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> ConnectionStats {
        self.state.with(connection_state::stats_of).or_else(|| self.state.last_stats()).unwrap_or_default()
    }

    /// The open network paths.
    #[napi(catch_unwind)]
    pub fn paths(&self) -> Vec<PathInfo> {
        PathState::from(self.state.with(path_snapshot).unwrap_or_default().as_slice()).paths
    }

    /// Where application data goes now: `direct`, `relay`, `mixed` (a relay while a
    /// direct path is open too), or `none` once closed.
    #[napi(catch_unwind, ts_return_type = "'direct' | 'relay' | 'mixed' | 'none'")]
    pub fn path_type(&self) -> String {
        paths::path_type(&self.state.with(path_snapshot).unwrap_or_default()).as_str().to_string()
    }

    /// Calls `listener` with the current paths, then whenever a path opens or closes or the
    /// selected path changes (not for round trip times alone), until the connection closes
    /// or `stop()` is called. The listener does not keep the process alive.
    #[napi(catch_unwind)]
    pub fn watch_paths(
        &self,
        // The mailbox address of the JS side's listener (lib/mailbox.js).
        #[napi(ts_arg_type = "number")] to: u32,
    ) -> Result<Watch, CodedError> {
        let listener = Address::new(to)?;
        let stop = CancellationToken::new();
        let Ok(conn) = self.state.handle() else {
            // Let go already: closed, so no paths.
            listener.post(PathState::from(&[][..]));
            return Ok(Watch { stop });
        };
        let stopped = stop.clone();
        let closing = self.state.closing.clone();
        napi::bindgen_prelude::spawn(self.state.track(async move {
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
                    listener.post(PathState::from(now.as_slice()));
                    last = Some(now);
                }
            }
            // Closed: no paths left. Said even when nothing changed, so that JS knows the
            // watch is over and forgets its address.
            listener.post(PathState::from(&[][..]));
        }));
        Ok(Watch { stop })
    }

    /// Closes the connection with an application error code and a reason the peer sees.
    #[napi(catch_unwind)]
    pub fn close(&self, code: Option<u32>, reason: Option<String>) -> Result<(), CodedError> {
        let reason = reason.unwrap_or_default();
        // The reason must fit in one packet together with the close frame.
        if reason.len() > 1024 {
            return Err(IrohError::invalid_argument("the close reason is at most 1024 bytes").into());
        }
        self.state.close(code.unwrap_or(0), &reason);
        Ok(())
    }

    /// Resolves when the connection closes, for whatever reason.
    #[napi(catch_unwind, ts_return_type = "Promise<CloseInfo>")]
    pub fn closed<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, CloseInfo>> {
        let state = self.state.clone();
        spawn(
            env,
            self.state.track(async move {
                let err = match state.handle() {
                    Ok(conn) => conn.closed().await,
                    Err(err) => err,
                };
                Ok(state.close_info(&err))
            }),
        )
    }

    /// Why the connection closed, or `null` while it is open.
    #[napi(catch_unwind)]
    pub fn close_reason(&self) -> Option<CloseInfo> {
        self.state.close_reason().map(|e| self.state.close_info(&e))
    }

    /// Whether the connection has closed, whoever closed it.
    #[napi(catch_unwind)]
    pub fn is_closed(&self) -> bool {
        self.state.closing.is_cancelled() || self.state.close_reason().is_some()
    }

    /// Calls `listener` once with the close info when the connection closes, whoever
    /// closes it. Unlike a pending `closed()` promise it never keeps the process alive:
    /// the JS layer holds the process open for an open connection, and lets go here.
    #[napi(catch_unwind)]
    pub fn on_close(
        &self,
        // The mailbox address of the JS side's listener (lib/mailbox.js).
        #[napi(ts_arg_type = "number")] to: u32,
    ) -> Result<(), CodedError> {
        let callback = Address::new(to)?;
        let state = self.state.clone();
        napi::bindgen_prelude::spawn(self.state.track(async move {
            let err = match state.handle() {
                Ok(conn) => conn.closed().await,
                Err(err) => err,
            };
            callback.post(state.close_info(&err));
        }));
        Ok(())
    }
}

/// The open paths of `conn` now.
fn path_snapshot(conn: &iroh::endpoint::Connection) -> Vec<PathSnapshot> {
    path_list(&conn.paths())
}

fn path_list(list: &iroh::endpoint::PathList<'_>) -> Vec<PathSnapshot> {
    list.iter().map(|p| paths::describe(p.remote_addr(), p.rtt().as_secs_f64() * 1000.0, p.is_selected())).collect()
}
