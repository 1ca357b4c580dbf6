//! The browser build of `@alkdev/iroh`: the same binding surface as the native addon
//! (`binding.d.ts`: `Endpoint`, `Connection`, `createEventPump`, the mailbox, `CancelToken`,
//! the identity helpers) for the subset that applies in a browser, over iroh built for
//! `wasm32-unknown-unknown`. A browser has no UDP, so every path goes through a relay.
//! The JS face (`lib/`) runs over it unchanged: `lib/native.js` is swapped for
//! `lib/browser/binding.js` when the browser bundle is made (scripts/build-wasm.mjs).
//! Framing, batching and the flow rules are `alkdev-iroh-core`'s, as in the native pump.

mod connection;
mod endpoint;
mod js;
mod pump;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use alkdev_iroh_core::error::{ErrorCode, IrohError};
use alkdev_iroh_core::identity;
use tokio::sync::Notify;
use wasm_bindgen::prelude::*;

pub use connection::Connection;
pub use endpoint::Endpoint;
pub use pump::{broadcast_frames, create_event_pump, EventPump};

/// A JS `Error` with the stable `code` of `err`.
pub(crate) fn js_error(err: &IrohError) -> JsValue {
    coded(err.code(), &err.message)
}

pub(crate) fn coded(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    js::set(&e, "code", &JsValue::from_str(code));
    e.into()
}

pub(crate) fn unsupported(what: &str) -> JsValue {
    js_error(&IrohError::new(ErrorCode::Unsupported, format!("{what} is not available in a browser build")))
}

pub(crate) type JsResult<T> = Result<T, JsValue>;

pub(crate) fn iroh<T>(r: Result<T, IrohError>) -> JsResult<T> {
    r.map_err(|e| js_error(&e))
}

thread_local! {
    static MAILBOX: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
    static TOKENS: RefCell<HashMap<u32, Rc<Token>>> = RefCell::new(HashMap::new());
    static NEXT_TOKEN: Cell<u32> = const { Cell::new(1) };
}

/// Where everything reported later arrives: `receiver(to, mail)` (lib/mailbox.js).
#[wasm_bindgen(js_name = openMailbox)]
pub fn open_mailbox(receiver: js_sys::Function) {
    MAILBOX.with(|m| *m.borrow_mut() = Some(receiver));
}

/// Posts `mail` to the mailbox address `to`. Never called with a borrow held: JS may call
/// back into this module from the receiver.
pub(crate) fn post(to: u32, mail: JsValue) {
    let receiver = MAILBOX.with(|m| m.borrow().clone());
    if let Some(r) = receiver {
        if let Err(e) = r.call2(&JsValue::NULL, &JsValue::from(to), &mail) {
            web_sys_report(e);
        }
    }
}

/// A listener threw: rethrow it outside this module, as from any other callback.
fn web_sys_report(e: JsValue) {
    let rethrow = js_sys::Function::new_with_args("e", "setTimeout(() => { throw e })");
    let _ = rethrow.call1(&JsValue::NULL, &e);
}

/// The cancellation of one pending call.
#[derive(Default)]
pub(crate) struct Token {
    pub cancelled: Cell<bool>,
    pub notify: Notify,
}

impl Token {
    pub async fn cancelled(&self) {
        while !self.cancelled.get() {
            self.notify.notified().await;
        }
    }
}

/// Stops a watch that posts to a mailbox address (`watchPaths`, `watchRelays`).
#[wasm_bindgen]
pub struct Watch {
    stopped: Rc<Token>,
}

impl Watch {
    /// A watcher and the token its task waits on.
    pub(crate) fn new() -> (Watch, Rc<Token>) {
        let stopped = Rc::new(Token::default());
        (Watch { stopped: stopped.clone() }, stopped)
    }
}

#[wasm_bindgen]
impl Watch {
    pub fn stop(&self) {
        self.stopped.cancelled.set(true);
        self.stopped.notify.notify_waiters();
    }
}

/// What `connect`, `accept` and `online` take to be cancelled (an `AbortSignal` in JS).
#[wasm_bindgen]
pub struct CancelToken {
    id: u32,
}

#[wasm_bindgen]
impl CancelToken {
    #[wasm_bindgen(constructor)]
    pub fn new() -> CancelToken {
        let id = NEXT_TOKEN.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1).max(1));
            id
        });
        TOKENS.with(|t| t.borrow_mut().insert(id, Rc::new(Token::default())));
        CancelToken { id }
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn cancel(&self) {
        if let Some(t) = TOKENS.with(|t| t.borrow_mut().remove(&self.id)) {
            t.cancelled.set(true);
            t.notify.notify_waiters();
        }
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CancelToken {
    fn drop(&mut self) {
        TOKENS.with(|t| t.borrow_mut().remove(&self.id));
    }
}

/// The token a JS `CancelToken` (or undefined) stands for.
pub(crate) fn token_of(value: &JsValue) -> Option<Rc<Token>> {
    let id = js::get(value, "id")?.as_f64()? as u32;
    TOKENS.with(|t| t.borrow().get(&id).cloned())
}

/// napi's argument-conversion statuses have no counterpart here.
#[wasm_bindgen(js_name = argumentErrorStatuses)]
pub fn argument_error_statuses() -> Vec<JsValue> {
    Vec::new()
}

#[wasm_bindgen(js_name = generateSecretKey)]
pub fn generate_secret_key() -> String {
    identity::secret_key_to_string(&identity::generate_secret_key())
}

#[wasm_bindgen(js_name = nodeIdFromSecretKey)]
pub fn node_id_from_secret_key(secret_key: &str) -> JsResult<String> {
    Ok(iroh(identity::parse_secret_key(secret_key))?.public().to_string())
}

#[wasm_bindgen(js_name = parseNodeId)]
pub fn parse_node_id(node_id: &str) -> JsResult<String> {
    Ok(iroh(identity::parse_node_id(node_id))?.to_string())
}

/// Logging goes nowhere in the browser build.
#[wasm_bindgen(js_name = setLogLevel)]
pub fn set_log_level(level: &str) -> JsResult<()> {
    match level {
        "off" | "error" | "warn" | "info" | "debug" | "trace" => Ok(()),
        other => Err(js_error(&IrohError::invalid_argument(format!("unknown log level {other:?}")))),
    }
}

#[wasm_bindgen(js_name = pumpTraceEnabled)]
pub fn pump_trace_enabled() -> bool {
    false
}

#[wasm_bindgen(js_name = startRelayServer)]
pub fn start_relay_server() -> JsResult<()> {
    Err(unsupported("startRelayServer (a relay server needs sockets a page does not have)"))
}

/// The pump's close codes, as `binding.PumpCloseCode`.
#[wasm_bindgen(js_name = pumpCloseCodes)]
pub fn pump_close_codes() -> JsValue {
    use alkdev_iroh_core::close::CloseCode;
    let o = js_sys::Object::new();
    for (name, code) in [
        ("NORMAL", CloseCode::Normal),
        ("FRAME_TOO_LARGE", CloseCode::FrameTooLarge),
        ("MALFORMED_FRAME", CloseCode::MalformedFrame),
        ("TRUNCATED_FRAME", CloseCode::TruncatedFrame),
        ("STREAM_ERROR", CloseCode::StreamError),
    ] {
        js::set(&o, name, &JsValue::from(code.code()));
    }
    o.into()
}

pub(crate) fn internal(message: impl Into<String>) -> JsValue {
    js_error(&IrohError::new(ErrorCode::Internal, message))
}
