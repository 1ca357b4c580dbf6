//! `SendStream` and `RecvStream`: the two halves of QUIC streams, on Buffers.

use std::sync::Arc;

use bytes::Bytes;
use iroh::endpoint::{ReadError, VarInt, WriteError};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::connection_state::ConnState;
use crate::error::{ErrorCode, IrohError, IrohResult};
use crate::pending::{guarded, spawn, token_of, CancelToken};
use crate::release::Slot;

fn stream_ended() -> IrohError {
    IrohError::new(ErrorCode::StreamClosed, "the stream was reset or stopped by this side")
}

pub(crate) fn write_error(e: WriteError, conn: &ConnState) -> IrohError {
    match e {
        WriteError::Stopped(code) => {
            IrohError::new(ErrorCode::StreamStopped, format!("the peer stopped reading this stream (code {code})"))
        }
        WriteError::ConnectionLost(e) => conn.closed_error(&e),
        WriteError::ClosedStream => IrohError::new(ErrorCode::StreamClosed, "the stream is already finished or reset"),
        other => IrohError::new(ErrorCode::StreamClosed, other.to_string()),
    }
}

pub(crate) fn read_error(e: ReadError, conn: &ConnState) -> IrohError {
    match e {
        ReadError::Reset(code) => IrohError::new(ErrorCode::StreamReset, format!("the peer reset this stream (code {code})")),
        ReadError::ConnectionLost(e) => conn.closed_error(&e),
        ReadError::ClosedStream => IrohError::new(ErrorCode::StreamClosed, "the stream is already stopped"),
        other => IrohError::new(ErrorCode::StreamClosed, other.to_string()),
    }
}

fn var_int(code: u32) -> VarInt {
    VarInt::from_u32(code)
}

/// Why an operation found its stream ended: this side reset or stopped it, or closed the
/// connection or the endpoint (which let go of the stream).
fn ended_error(conn: &ConnState) -> IrohError {
    if conn.closing.is_cancelled() {
        conn.gone()
    } else {
        stream_ended()
    }
}

/// The QUIC stream id as a JS number: exact, since ids stay far below 2^53 in practice
/// (a peer may open at most 2^60 streams of each kind, and flow control keeps it far lower).
fn id_of(id: impl Into<u64>) -> f64 {
    id.into() as f64
}

/// What both halves of a stream hold: the stream, its connection, its id, and the token
/// that ends its pending operations.
struct Half<S> {
    /// Emptied when the connection or endpoint is closed here: the stream keeps the
    /// endpoint's socket open.
    stream: Arc<Slot<S>>,
    conn: Arc<ConnState>,
    id: f64,
    /// Fires on `reset()` or `stop()` and when the connection is closed here (a child of its
    /// token), so that an operation stuck on flow control or waiting for data gives up its
    /// lock.
    ended: CancellationToken,
}

impl<S: Send + 'static> Half<S> {
    /// `register` puts the stream's slot where the connection's `release` finds it.
    fn new(stream: S, id: f64, conn: &Arc<ConnState>, register: impl FnOnce(&ConnState, &Arc<Slot<S>>) -> bool) -> Self {
        let stream = Arc::new(Slot::new(Some(stream)));
        if !register(conn, &stream) {
            // The connection was let go already: so is this stream.
            if let Ok(mut slot) = stream.try_lock() {
                slot.take();
            }
        }
        Self { stream, conn: conn.clone(), id, ended: conn.closing.child_token() }
    }

    /// Runs `op` on the stream until it completes, the caller cancels, or the stream ends.
    fn run<'env, T, F, Fut>(&self, env: &'env Env, cancel: Option<&CancelToken>, op: F) -> napi::Result<PromiseRaw<'env, T>>
    where
        T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
        F: FnOnce(Arc<Slot<S>>, Arc<ConnState>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = IrohResult<T>> + Send + 'static,
    {
        let (stream, conn, ended) = (self.stream.clone(), self.conn.clone(), self.ended.clone());
        let cancel = token_of(cancel);
        spawn(env, async move {
            let closed = conn.clone();
            guarded(op(stream, conn), cancel, &ended, || Err(ended_error(&closed))).await
        })
    }

    /// Ends the stream with `end` (a reset or a stop), which fails with `already` when it
    /// has ended, and ends the pending operations on it.
    fn end<'env>(
        &self,
        env: &'env Env,
        end: impl FnOnce(&mut S) -> bool + Send + 'static,
        already: &'static str,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        self.ended.cancel();
        let (stream, conn) = (self.stream.clone(), self.conn.clone());
        spawn(env, async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            if end(stream) {
                Ok(())
            } else {
                Err(IrohError::new(ErrorCode::StreamClosed, already))
            }
        })
    }
}

/// The sending half of a stream.
#[napi]
pub struct SendStream(Half<iroh::endpoint::SendStream>);

impl SendStream {
    pub(crate) fn new(stream: iroh::endpoint::SendStream, conn: &Arc<ConnState>) -> Self {
        let id = id_of(stream.id());
        Self(Half::new(stream, id, conn, ConnState::add_send))
    }
}

#[napi]
impl SendStream {
    /// The QUIC stream id: 0, 4, 8... for bidirectional streams the client opens, 1, 5...
    /// for the server's, 2, 6... and 3, 7... for unidirectional ones.
    #[napi(catch_unwind)]
    pub fn id(&self) -> f64 {
        self.0.id
    }

    /// Writes some of `data`; resolves with how many bytes were taken.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn write<'env>(&self, env: &'env Env, data: &[u8]) -> napi::Result<PromiseRaw<'env, u32>> {
        let data = Bytes::copy_from_slice(data);
        self.0.run(env, None, move |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            let n = stream.write(&data).await.map_err(|e| write_error(e, &conn))?;
            Ok(n as u32)
        })
    }

    /// Writes all of `data`; resolves once the stream has taken it (flow control permitting).
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn write_all<'env>(&self, env: &'env Env, data: &[u8]) -> napi::Result<PromiseRaw<'env, ()>> {
        let data = Bytes::copy_from_slice(data);
        self.0.run(env, None, move |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            stream.write_chunk(data).await.map_err(|e| write_error(e, &conn))
        })
    }

    /// Ends the stream after the data written so far; the peer reads to the end.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.0.run(env, None, |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            stream.finish().map_err(|_| IrohError::new(ErrorCode::StreamClosed, "the stream is already finished or reset"))
        })
    }

    /// Abandons the stream: unsent data is dropped and the peer's reads fail with `code`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn reset<'env>(&self, env: &'env Env, code: u32) -> napi::Result<PromiseRaw<'env, ()>> {
        self.0.end(env, move |stream| stream.reset(var_int(code)).is_ok(), "the stream is already finished or reset")
    }
}

/// The receiving half of a stream.
#[napi]
pub struct RecvStream(Half<iroh::endpoint::RecvStream>);

impl RecvStream {
    pub(crate) fn new(stream: iroh::endpoint::RecvStream, conn: &Arc<ConnState>) -> Self {
        let id = id_of(stream.id());
        Self(Half::new(stream, id, conn, ConnState::add_recv))
    }
}

#[napi]
impl RecvStream {
    /// The QUIC stream id, the same on both sides (see `SendStream.id`).
    #[napi(catch_unwind)]
    pub fn id(&self) -> f64 {
        self.0.id
    }

    /// Reads up to `max` bytes; `null` at the end of the stream.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer | null>")]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        max: u32,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        self.0.run(env, cancel, move |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            let chunk = stream.read_chunk(max.max(1) as usize).await.map_err(|e| read_error(e, &conn))?;
            Ok(chunk.map(|b| Buffer::from(b.to_vec())))
        })
    }

    /// Reads exactly `n` bytes; fails with `ERR_IROH_UNEXPECTED_END` if the stream ends first.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn read_exact<'env>(
        &self,
        env: &'env Env,
        n: u32,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        self.0.run(env, cancel, move |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            let mut buf = vec![0u8; n as usize];
            stream.read_exact(&mut buf).await.map_err(|e| match e {
                iroh::endpoint::ReadExactError::FinishedEarly(got) => {
                    IrohError::new(ErrorCode::UnexpectedEnd, format!("the stream ended after {got} of {n} bytes"))
                }
                iroh::endpoint::ReadExactError::ReadError(e) => read_error(e, &conn),
            })?;
            Ok(Buffer::from(buf))
        })
    }

    /// Reads until the peer finishes the stream; fails with `ERR_IROH_TOO_LARGE` past `max` bytes.
    #[napi(catch_unwind, ts_return_type = "Promise<Buffer>")]
    pub fn read_to_end<'env>(
        &self,
        env: &'env Env,
        max: u32,
        cancel: Option<&CancelToken>,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        self.0.run(env, cancel, move |stream, conn| async move {
            let mut stream = stream.lock().await;
            let stream = stream.as_mut().ok_or_else(|| conn.gone())?;
            let data = stream.read_to_end(max as usize).await.map_err(|e| match e {
                iroh::endpoint::ReadToEndError::TooLong => {
                    IrohError::new(ErrorCode::TooLarge, format!("the stream is longer than {max} bytes"))
                }
                iroh::endpoint::ReadToEndError::Read(e) => read_error(e, &conn),
            })?;
            Ok(Buffer::from(data))
        })
    }

    /// Tells the peer to stop sending; its writes fail with `code`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env, code: u32) -> napi::Result<PromiseRaw<'env, ()>> {
        self.0.end(env, move |stream| stream.stop(var_int(code)).is_ok(), "the stream is already stopped")
    }
}
