//! One wake-up channel from native code to JS per JS thread. Each threadsafe function is a
//! libuv async handle, and libuv looks at every async handle on each wake-up of the event
//! loop: with a handle per pump, per close listener and per path watcher, a hub with 1,000
//! spokes paid for 3,000 handles on every batch that arrived. Here every message carries
//! the address of its receiver, and `lib/mailbox.js` hands it on.

use std::cell::RefCell;
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, ToNapiValue};
use napi::sys;
use napi_derive::napi;

use tokio_util::sync::CancellationToken;

use crate::error::{CodedError, ErrorCode, IrohError, IrohResult};
use crate::js_callback::{notify, weak_callback, WeakCallback};

/// A message of any type that napi can turn into a JS value, converted on the JS thread.
pub struct Mail(Box<dyn FnOnce(sys::napi_env) -> napi::Result<sys::napi_value> + Send>);

impl Mail {
    pub fn new<T: ToNapiValue + Send + 'static>(value: T) -> Self {
        // SAFETY: called by napi on the JS thread with its env, as ToNapiValue requires.
        Mail(Box::new(move |env| unsafe { T::to_napi_value(env, value) }))
    }
}

impl ToNapiValue for Mail {
    unsafe fn to_napi_value(env: sys::napi_env, mail: Self) -> napi::Result<sys::napi_value> {
        (mail.0)(env)
    }
}

/// Weak, like every callback of this addon: the mailbox never keeps the process alive.
type Deliver = WeakCallback<FnArgs<(u32, Mail)>>;

thread_local! {
    /// The JS thread's mailbox (the main thread's, or a worker's).
    static MAILBOX: RefCell<Option<Arc<Deliver>>> = const { RefCell::new(None) };
}

/// Opens this JS thread's mailbox: `deliver(to, mail)` receives every message for every
/// address. Called once by `lib/mailbox.js`.
#[napi(catch_unwind)]
pub fn open_mailbox(
    #[napi(ts_arg_type = "(to: number, mail: PumpMessage | PathState | CloseInfo) => void")] deliver: Function<
        FnArgs<(u32, Mail)>,
        (),
    >,
) -> Result<(), CodedError> {
    let deliver = weak_callback(deliver)?;
    MAILBOX.with(|m| *m.borrow_mut() = Some(Arc::new(deliver)));
    Ok(())
}

/// Where messages for one receiver go: cheap to clone, sendable from any thread.
#[derive(Clone)]
pub struct Address {
    mailbox: Arc<Deliver>,
    to: u32,
}

impl Address {
    /// The address `to` in this JS thread's mailbox. Call on the JS thread.
    pub fn new(to: u32) -> IrohResult<Self> {
        let mailbox = MAILBOX.with(|m| m.borrow().clone());
        let mailbox =
            mailbox.ok_or_else(|| IrohError::new(ErrorCode::Internal, "the mailbox is not open: load the addon through lib/"))?;
        Ok(Address { mailbox, to })
    }

    /// Posts `value` without waiting for JS.
    pub fn post<T: ToNapiValue + Send + 'static>(&self, value: T) {
        notify(&self.mailbox, FnArgs::from((self.to, Mail::new(value))));
    }
}

/// Stops a watch that posts to a mailbox address (`watchPaths`, `watchRelays`).
#[napi]
pub struct Watch {
    pub(crate) stop: CancellationToken,
}

#[napi]
impl Watch {
    #[napi(catch_unwind)]
    pub fn stop(&self) {
        self.stop.cancel();
    }
}
