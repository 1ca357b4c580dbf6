//! `Connection`: one QUIC connection through a relay, with the native binding's methods
//! that a browser can answer (src/connection.rs). Raw streams and datagrams are not in the
//! browser build; the pump (`createEventPump`) is how the JS face uses a connection.

use std::cell::RefCell;
use std::rc::Rc;

use alkdev_iroh_core::paths::{self, PathSnapshot};
use iroh::endpoint::{ConnectionError, VarInt};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::{js, post, unsupported, JsResult, Token, Watch};

pub(crate) struct CloseInfo {
    pub code: f64,
    pub reason: String,
    pub kind: &'static str,
}

impl CloseInfo {
    pub fn to_js(&self) -> JsValue {
        js::object(&[
            ("code", JsValue::from(self.code)),
            ("reason", JsValue::from_str(&self.reason)),
            ("kind", JsValue::from_str(self.kind)),
        ])
    }
}

pub(crate) struct ConnState {
    pub conn: iroh::endpoint::Connection,
    /// The close this side made, which QUIC reports only as `LocallyClosed`.
    pub local_close: RefCell<Option<(u32, String)>>,
    pub endpoint_closed: Rc<Token>,
}

impl ConnState {
    pub fn close_info(&self, err: &ConnectionError) -> CloseInfo {
        if matches!(err, ConnectionError::LocallyClosed) {
            if let Some((code, reason)) = self.local_close.borrow().clone() {
                return CloseInfo { code: f64::from(code), reason, kind: "local" };
            }
            if self.endpoint_closed.cancelled.get() {
                return CloseInfo { code: 0.0, reason: "the endpoint was closed".into(), kind: "local" };
            }
        }
        match err {
            ConnectionError::ApplicationClosed(c) => CloseInfo {
                code: c.error_code.into_inner() as f64,
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
                kind: "remote",
            },
            ConnectionError::ConnectionClosed(c) => CloseInfo {
                code: u64::from(c.error_code) as f64,
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
                kind: "transport",
            },
            ConnectionError::TimedOut => CloseInfo { code: 0.0, reason: "idle timeout".into(), kind: "timeout" },
            ConnectionError::Reset => CloseInfo { code: 0.0, reason: "reset by peer".into(), kind: "reset" },
            ConnectionError::LocallyClosed => CloseInfo { code: 0.0, reason: "closed locally".into(), kind: "local" },
            other => CloseInfo { code: 0.0, reason: other.to_string(), kind: "transport" },
        }
    }

    pub fn close(&self, code: u32, reason: &str) {
        if self.conn.close_reason().is_none() {
            self.local_close.borrow_mut().get_or_insert_with(|| (code, reason.to_string()));
        }
        self.conn.close(VarInt::from_u32(code), reason.as_bytes());
    }

    fn snapshot(&self) -> Vec<PathSnapshot> {
        self.conn
            .paths()
            .iter()
            .map(|p| paths::describe(p.remote_addr(), p.rtt().as_secs_f64() * 1000.0, p.is_selected()))
            .collect()
    }
}

fn paths_js(list: &[PathSnapshot]) -> JsValue {
    let out = js_sys::Array::new();
    for p in list {
        out.push(&js::object(&[
            ("kind", JsValue::from_str(p.kind.as_str())),
            ("remoteAddr", JsValue::from_str(&p.remote)),
            ("rttMs", JsValue::from(p.rtt_ms)),
            ("selected", JsValue::from(p.selected)),
        ]));
    }
    out.into()
}

#[wasm_bindgen]
pub struct Connection {
    pub(crate) state: Rc<ConnState>,
}

impl Connection {
    pub(crate) fn new(conn: iroh::endpoint::Connection, endpoint_closed: Rc<Token>) -> Self {
        Connection { state: Rc::new(ConnState { conn, local_close: RefCell::new(None), endpoint_closed }) }
    }
}

#[wasm_bindgen]
impl Connection {
    #[wasm_bindgen(js_name = remoteNodeId)]
    pub fn remote_node_id(&self) -> String {
        self.state.conn.remote_id().to_string()
    }

    pub fn alpn(&self) -> String {
        String::from_utf8_lossy(self.state.conn.alpn()).into_owned()
    }

    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.state.conn.close_reason().is_some()
    }

    pub fn close(&self, code: Option<u32>, reason: Option<String>) {
        self.state.close(code.unwrap_or(0), &reason.unwrap_or_default());
    }

    pub fn closed(&self) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let err = state.conn.closed().await;
            Ok(state.close_info(&err).to_js())
        })
    }

    #[wasm_bindgen(js_name = closeReason)]
    pub fn close_reason(&self) -> JsValue {
        match self.state.conn.close_reason() {
            Some(err) => self.state.close_info(&err).to_js(),
            None => JsValue::NULL,
        }
    }

    /// Posts the close info to mailbox address `to` once the connection closes.
    #[wasm_bindgen(js_name = onClose)]
    pub fn on_close(&self, to: u32) {
        let state = self.state.clone();
        spawn_local(async move {
            let err = state.conn.closed().await;
            post(to, state.close_info(&err).to_js());
        });
    }

    pub fn rtt(&self) -> f64 {
        let list = self.state.snapshot();
        list.iter().find(|p| p.selected).or(list.first()).map_or(0.0, |p| p.rtt_ms)
    }

    pub fn paths(&self) -> JsValue {
        paths_js(&self.state.snapshot())
    }

    #[wasm_bindgen(js_name = pathType)]
    pub fn path_type(&self) -> String {
        if self.is_closed() {
            return "none".into();
        }
        paths::path_type(&self.state.snapshot()).as_str().into()
    }

    pub fn stats(&self) -> JsValue {
        let s = self.state.conn.stats();
        let udp = |d: f64, b: f64| js::object(&[("datagrams", JsValue::from(d)), ("bytes", JsValue::from(b))]);
        js::object(&[
            ("udpTx", udp(s.udp_tx.datagrams as f64, s.udp_tx.bytes as f64)),
            ("udpRx", udp(s.udp_rx.datagrams as f64, s.udp_rx.bytes as f64)),
            ("sentPackets", JsValue::from(s.sent_packets as f64)),
            ("sentBytes", JsValue::from(s.sent_bytes as f64)),
            ("lostPackets", JsValue::from(s.lost_packets as f64)),
            ("lostBytes", JsValue::from(s.lost_bytes as f64)),
            ("rttMs", JsValue::from(self.rtt())),
        ])
    }

    /// Posts `{ pathType, paths }` to `to` now and whenever the paths change, until stopped
    /// or closed (then `none` once more).
    #[wasm_bindgen(js_name = watchPaths)]
    pub fn watch_paths(&self, to: u32) -> Watch {
        let (watcher, stopped) = Watch::new();
        let state = self.state.clone();
        spawn_local(async move {
            let report = |list: &[PathSnapshot], closed: bool| {
                let kind = if closed { "none" } else { paths::path_type(list).as_str() };
                post(to, js::object(&[("pathType", JsValue::from_str(kind)), ("paths", paths_js(list))]));
            };
            let mut before = state.snapshot();
            report(&before, false);
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.cancelled() => return,
                    _ = state.conn.closed() => return report(&[], true),
                    _ = n0_future::time::sleep(std::time::Duration::from_millis(250)) => {
                        let now = state.snapshot();
                        if paths::changed(&before, &now) {
                            report(&now, false);
                            before = now;
                        }
                    }
                }
            }
        });
        watcher
    }

    #[wasm_bindgen(js_name = openBi)]
    pub fn open_bi(&self) -> JsResult<()> {
        Err(unsupported("raw streams (openBi) in the browser build: use an event target or a message channel"))
    }

    #[wasm_bindgen(js_name = acceptBi)]
    pub fn accept_bi(&self) -> JsResult<()> {
        Err(unsupported("raw streams (acceptBi) in the browser build: use an event target or a message channel"))
    }

    #[wasm_bindgen(js_name = openUni)]
    pub fn open_uni(&self) -> JsResult<()> {
        Err(unsupported("raw streams (openUni) in the browser build"))
    }

    #[wasm_bindgen(js_name = acceptUni)]
    pub fn accept_uni(&self) -> JsResult<()> {
        Err(unsupported("raw streams (acceptUni) in the browser build"))
    }

    #[wasm_bindgen(js_name = sendDatagram)]
    pub fn send_datagram(&self) -> JsResult<()> {
        Err(unsupported("datagrams in the browser build"))
    }

    #[wasm_bindgen(js_name = readDatagram)]
    pub fn read_datagram(&self) -> JsResult<()> {
        Err(unsupported("datagrams in the browser build"))
    }

    #[wasm_bindgen(js_name = maxDatagramSize)]
    pub fn max_datagram_size(&self) -> Option<u32> {
        None
    }
}
