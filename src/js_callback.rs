//! The one kind of JS callback Rust calls: from any thread, without waiting for JS, and
//! without keeping the Node event loop alive by itself. One alias and one builder, used by
//! both callbacks the addon holds: each JS thread's mailbox (`mailbox.rs`, which carries
//! the pump's messages, `watchPaths` and `onClose`) and the endpoint's settled connections.

use napi::bindgen_prelude::{Function, JsValuesTupleIntoVec};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;

use crate::error::{ErrorCode, IrohError, IrohResult};

/// A JS callback that Rust calls from any thread and that never keeps the Node event loop
/// alive by itself (weak): what keeps the process alive is a handle the JS layer holds for
/// each open thing and releases on close, so that `unref()` can opt out.
pub type WeakCallback<T> = ThreadsafeFunction<T, (), T, Status, false, true, 0>;

/// Makes a [`WeakCallback`] of a JS function.
pub fn weak_callback<T: JsValuesTupleIntoVec + 'static>(f: Function<T, ()>) -> IrohResult<WeakCallback<T>> {
    f.build_threadsafe_function()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
        .map_err(|e| IrohError::new(ErrorCode::Internal, e.reason.clone()))
}

/// Calls `callback` without waiting for JS.
pub fn notify<T: JsValuesTupleIntoVec + 'static>(callback: &WeakCallback<T>, value: T) {
    callback.call(value, ThreadsafeFunctionCallMode::NonBlocking);
}
