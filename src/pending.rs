//! Pending operations: a tokio future handed to JS as a Promise whose rejection carries
//! the `IrohError` code, and a token that JS uses to cancel it (the JS layer wires an
//! `AbortSignal` to it). Cancelling drops the future, so nothing it would have taken
//! (a connection, stream bytes) is consumed.

use std::future::Future;

use napi::bindgen_prelude::{FromNapiValue, PromiseRaw, ToNapiValue, Unknown};
use napi::{Env, JsError};
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::error::{js_error, ErrorCode, IrohError, IrohResult};

/// Cancels the native side of one pending call. Created by the JS layer per call.
#[napi]
pub struct CancelToken {
    token: CancellationToken,
}

#[napi]
impl CancelToken {
    #[napi(constructor, catch_unwind)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { token: CancellationToken::new() }
    }

    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

pub fn token_of(cancel: Option<&CancelToken>) -> Option<CancellationToken> {
    cancel.map(|c| c.token.clone())
}

/// Runs `fut` until it completes, the caller cancels, or `closed` fires (the endpoint or
/// connection it belongs to was closed).
pub async fn guarded<T>(
    fut: impl Future<Output = IrohResult<T>>,
    cancel: Option<CancellationToken>,
    closed: &CancellationToken,
    on_closed: impl FnOnce() -> IrohResult<T>,
) -> IrohResult<T> {
    let cancelled = async {
        match &cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = cancelled => Err(IrohError::aborted()),
        _ = closed.cancelled() => on_closed(),
        r = fut => r,
    }
}

/// Runs `f`, CPU work (key generation, parsing), on tokio's blocking threads: off the
/// runtime's one worker.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> IrohResult<T> + Send + 'static) -> IrohResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| IrohError::new(ErrorCode::Internal, e.to_string()))?
}

/// Spawns `fut` on napi's tokio runtime and returns a Promise for its result.
pub fn spawn<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = IrohResult<T>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, result| match result {
        Ok(value) => Ok(value),
        Err(e) => Err(coded_js_error(env, e)),
    })
}

/// napi rejects promises with its own status as `code`; to keep ours we build the JS
/// error object here and hand napi that object, which it rethrows as it is.
fn coded_js_error(env: &Env, e: IrohError) -> napi::Error {
    let js = JsError::from(js_error(e.clone()));
    let raw = unsafe { js.into_value(env.raw()) };
    if raw.is_null() {
        return napi::Error::from_reason(e.message);
    }
    match unsafe { Unknown::from_napi_value(env.raw(), raw) } {
        Ok(value) => napi::Error::from(value),
        Err(_) => napi::Error::from_reason(e.message),
    }
}
