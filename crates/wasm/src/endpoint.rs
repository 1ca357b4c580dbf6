//! `Endpoint`: a relay-only iroh endpoint with the native binding's methods (src/endpoint.rs).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use alkdev_iroh_core::error::{ErrorCode, IrohError};
use alkdev_iroh_core::flow::CONNECTION_RECEIVE_WINDOW;
use alkdev_iroh_core::identity;
use alkdev_iroh_core::relay_fault::{self, RelayFault};
use iroh::endpoint::RelayStatus;
use iroh::endpoint::{presets, IdleTimeout, QuicTransportConfig, VarInt};
use iroh::{EndpointAddr, RelayMap, RelayMode, RelayUrl, Watcher};
use n0_future::time::timeout;
use n0_future::StreamExt;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::connection::Connection;
use crate::{coded, iroh, js, js_error, post, token_of, unsupported, JsResult, Token, Watch};

const DEFAULT_ONLINE_TIMEOUT_MS: u32 = 15_000;
/// As the native endpoint's.
const STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;

struct Shared {
    ep: RefCell<Option<iroh::Endpoint>>,
    id: iroh::EndpointId,
    closed: Rc<Token>,
    relays: Vec<RelayUrl>,
}

impl Shared {
    fn handle(&self) -> Result<iroh::Endpoint, IrohError> {
        self.ep.borrow().clone().ok_or_else(IrohError::endpoint_closed)
    }
}

#[wasm_bindgen]
pub struct Endpoint {
    shared: Rc<Shared>,
}

/// Each configured relay with iroh's word on it, when it is the home relay.
fn faults(relays: &[RelayUrl], statuses: &[RelayStatus]) -> Vec<(RelayUrl, Option<RelayFault>, bool)> {
    relays
        .iter()
        .map(|url| {
            let status = statuses.iter().find(|s| s.url() == url);
            let connected = status.is_some_and(|s| s.is_connected());
            let fault = status.filter(|s| !s.is_connected()).and_then(|s| match s.auth_denied_reason() {
                Some(reason) => Some(RelayFault::Denied { reason: reason.to_string() }),
                None => s.last_error().map(|e| RelayFault::Unreachable { detail: format!("{e:#}") }),
            });
            (url.clone(), fault, connected)
        })
        .collect()
}

fn statuses_js(relays: &[RelayUrl], statuses: &[RelayStatus]) -> js_sys::Array {
    faults(relays, statuses)
        .into_iter()
        .map(|(url, fault, connected)| {
            let error = match &fault {
                Some(f) => js::object(&[
                    ("code", JsValue::from_str(f.code().as_str())),
                    ("message", JsValue::from_str(&f.describe(url.as_str()))),
                ]),
                None => JsValue::NULL,
            };
            js::object(&[("url", JsValue::from_str(url.as_str())), ("connected", JsValue::from(connected)), ("error", error)])
        })
        .collect()
}

/// `relayMode` as in Node: `{ relays: [url | { url, quicPort }] }`; a browser needs relays.
fn relays_of(options: &JsValue) -> JsResult<RelayMap> {
    let mode = js::get(options, "relayMode");
    let Some(mode) = mode else {
        return Err(unsupported("relayMode 'default' (n0's public relays)")
            .and_then_msg("pass relayMode: { relays: [url] }: a page reaches peers only through relays you name"));
    };
    if let Some(s) = mode.as_string() {
        return Err(match s.as_str() {
            "disabled" => coded(
                ErrorCode::Unsupported.as_str(),
                "relayMode 'disabled' leaves a page no way to reach anyone: a browser has no UDP, only relays",
            ),
            "default" => coded(
                ErrorCode::Unsupported.as_str(),
                "relayMode 'default' (n0's public relays) is not used by the browser build: pass relayMode: { relays: [url] }",
            ),
            other => js_error(&IrohError::invalid_argument(format!(
                "relayMode must be {{ relays: [...] }} in a browser, got {other:?}"
            ))),
        });
    }
    let list =
        js::get(&mode, "relays").ok_or_else(|| js_error(&IrohError::invalid_argument("relayMode.relays must be an array")))?;
    let list: js_sys::Array =
        list.dyn_into().map_err(|_| js_error(&IrohError::invalid_argument("relayMode.relays must be an array")))?;
    if list.length() == 0 {
        return Err(js_error(&IrohError::invalid_argument("relayMode.relays is empty")));
    }
    let mut urls = Vec::new();
    for entry in list.iter() {
        let url = entry.as_string().or_else(|| js::string(&entry, "url"));
        let url = url.ok_or_else(|| js_error(&IrohError::invalid_argument("each relay is a URL or { url, quicPort }")))?;
        urls.push(iroh(identity::parse_relay_url(&url))?);
    }
    Ok(urls.into_iter().collect::<RelayMap>())
}

trait AndThenMsg {
    fn and_then_msg(self, extra: &str) -> JsValue;
}
impl AndThenMsg for JsValue {
    fn and_then_msg(self, extra: &str) -> JsValue {
        if let Some(m) = js::string(&self, "message") {
            js::set(&self, "message", &JsValue::from_str(&format!("{m}; {extra}")));
        }
        self
    }
}

fn alpns_of(value: Option<JsValue>) -> JsResult<Vec<Vec<u8>>> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let list: js_sys::Array =
        value.dyn_into().map_err(|_| js_error(&IrohError::invalid_argument("alpns must be an array of strings")))?;
    list.iter()
        .map(|a| {
            let a = a.as_string().ok_or_else(|| coded("ERR_IROH_INVALID_ALPN", "alpns must be an array of strings"))?;
            iroh(identity::validate_alpn(&a))
        })
        .collect()
}

fn settle(done: &js_sys::Function, result: Result<Option<Connection>, IrohError>) {
    let settled = match result {
        Ok(conn) => js::object(&[("connection", conn.map_or(JsValue::NULL, JsValue::from))]),
        Err(e) => js::object(&[
            ("connection", JsValue::NULL),
            ("errorCode", JsValue::from_str(e.code())),
            ("errorMessage", JsValue::from_str(&e.message)),
        ]),
    };
    let _ = done.call1(&JsValue::NULL, &settled);
}

/// Runs `fut` unless `cancel` or the endpoint's close comes first.
async fn guarded<T>(
    fut: impl std::future::Future<Output = Result<T, IrohError>>,
    cancel: Option<Rc<Token>>,
    closed: &Token,
    on_close: impl FnOnce() -> Result<T, IrohError>,
) -> Result<T, IrohError> {
    let cancelled = async {
        match cancel {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = closed.cancelled() => on_close(),
        r = fut => r,
        _ = cancelled => Err(IrohError::aborted()),
    }
}

#[wasm_bindgen]
impl Endpoint {
    /// Binds a relay-only endpoint. `bindAddr`, `secretKeyPath` and `relayOnly: false` do not
    /// apply in a browser and are refused with `ERR_IROH_UNSUPPORTED`.
    pub fn create(options: JsValue) -> js_sys::Promise {
        future_to_promise(async move {
            if js::get(&options, "bindAddr").is_some() {
                return Err(unsupported("bindAddr (a page has no sockets of its own)"));
            }
            if js::get(&options, "secretKeyPath").is_some() {
                return Err(unsupported(
                    "secretKeyPath (a page has no file system): keep the secretKey yourself, in IndexedDB say",
                ));
            }
            if js::get(&options, "addressLookup").and_then(|v| v.as_string()).is_some_and(|s| s != "none") {
                return Err(unsupported("addressLookup other than 'none'"));
            }
            let alpns = alpns_of(js::get(&options, "alpns"))?;
            let secret_key = match js::string(&options, "secretKey") {
                Some(k) => iroh(identity::parse_secret_key(&k))?,
                None => identity::generate_secret_key(),
            };
            let relays = relays_of(&options)?;
            let relay_urls: Vec<RelayUrl> = relays.urls();
            let ms = |k: &str| js::get(&options, k).and_then(|v| v.as_f64()).map(|n| Duration::from_millis(n as u64));
            let (idle, keep) = (ms("idleTimeoutMs"), ms("keepAliveMs"));
            if let (Some(idle), Some(keep)) = (idle, keep) {
                if keep >= idle {
                    return Err(js_error(&IrohError::invalid_argument(
                        "keepAliveMs must be shorter than idleTimeoutMs, or the connection times out while idle",
                    )));
                }
            }
            // The native endpoint's windows (src/endpoint.rs): finite, so that a pump's
            // paused reader pushes back on its peer.
            let mut transport = QuicTransportConfig::builder()
                .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
                .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW));
            if let Some(idle) = idle {
                let idle = IdleTimeout::try_from(idle)
                    .map_err(|_| js_error(&IrohError::invalid_argument("idleTimeoutMs is too large")))?;
                transport = transport.max_idle_timeout(Some(idle));
            }
            if let Some(keep) = keep {
                transport = transport.keep_alive_interval(keep);
            }
            let builder = iroh::Endpoint::builder(presets::Minimal)
                .secret_key(secret_key)
                .alpns(alpns)
                .relay_mode(RelayMode::Custom(relays))
                .transport_config(transport.build());
            let ep = builder
                .bind()
                .await
                .map_err(|e| js_error(&IrohError::new(ErrorCode::Bind, format!("cannot bind the endpoint: {e}"))))?;
            let id = ep.id();
            let shared = Shared { ep: RefCell::new(Some(ep)), id, closed: Rc::new(Token::default()), relays: relay_urls };
            Ok(Endpoint { shared: Rc::new(shared) }.into())
        })
    }

    #[wasm_bindgen(js_name = nodeId)]
    pub fn node_id(&self) -> String {
        self.shared.id.to_string()
    }

    fn current_addr(&self) -> EndpointAddr {
        match self.shared.handle() {
            Ok(ep) => ep.addr(),
            Err(_) => EndpointAddr::new(self.shared.id),
        }
    }

    pub fn addr(&self) -> JsValue {
        let addr = self.current_addr();
        let (relay_url, direct) = identity::addr_parts(&addr);
        let directs = js_sys::Array::new();
        for d in direct {
            directs.push(&JsValue::from_str(&d));
        }
        js::object(&[
            ("nodeId", JsValue::from_str(&addr.id.to_string())),
            ("relayUrl", js::opt_str(relay_url.as_deref())),
            ("directAddresses", directs.into()),
        ])
    }

    pub fn ticket(&self) -> String {
        identity::make_ticket(&self.current_addr())
    }

    pub fn online(&self, timeout_ms: Option<u32>, cancel: JsValue) -> js_sys::Promise {
        let shared = self.shared.clone();
        let cancel = token_of(&cancel);
        let ms = timeout_ms.unwrap_or(DEFAULT_ONLINE_TIMEOUT_MS);
        future_to_promise(async move {
            let ep = iroh(shared.handle())?;
            let relays = shared.relays.clone();
            let wait = async move {
                match timeout(Duration::from_millis(u64::from(ms)), ep.online()).await {
                    Ok(()) => Ok(()),
                    // What iroh saw of each relay: a page is not told why a WebSocket failed,
                    // but a denial and iroh's own words still help.
                    Err(_) => {
                        let seen = faults(&relays, &ep.home_relay_status().get());
                        Err(relay_fault::timed_out(ms, seen.iter().filter_map(|(u, f, _)| Some((u.as_str(), f.as_ref()?)))))
                    }
                }
            };
            iroh(guarded(wait, cancel, &shared.closed, || Err(IrohError::endpoint_closed())).await)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Dials a peer by node id, ticket or `addr()`-shaped object; reports through `done`.
    pub fn connect(
        &self,
        target: JsValue,
        alpn: String,
        timeout_ms: Option<u32>,
        additional_alpns: Option<Vec<String>>,
        cancel: JsValue,
        done: js_sys::Function,
    ) -> JsResult<()> {
        let shared = self.shared.clone();
        let cancel = token_of(&cancel);
        spawn_local(async move {
            let result = async {
                let addr: EndpointAddr = match target.as_string() {
                    Some(s) => identity::parse_target(&s)?,
                    None => {
                        let node_id = js::string(&target, "nodeId").unwrap_or_default();
                        let relay = js::string(&target, "relayUrl");
                        identity::addr_from_parts(&node_id, relay.as_deref(), &[])?
                    }
                };
                let alpn = identity::validate_alpn(&alpn)?;
                let additional = additional_alpns
                    .unwrap_or_default()
                    .iter()
                    .map(|a| identity::validate_alpn(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let remote = addr.id;
                let ep = shared.handle()?;
                let dial = async {
                    let connecting = async {
                        let options = iroh::endpoint::ConnectOptions::new().with_additional_alpns(additional);
                        match ep.connect_with_opts(addr, &alpn, options).await {
                            Ok(connecting) => connecting.await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        }
                    };
                    let result = match timeout_ms {
                        Some(ms) => timeout(Duration::from_millis(u64::from(ms)), connecting).await.map_err(|_| {
                            IrohError::new(
                                ErrorCode::ConnectTimeout,
                                format!("no connection to {} within {ms} ms", remote.fmt_short()),
                            )
                        })?,
                        None => connecting.await,
                    };
                    result.map_err(|e| {
                        if ep.is_closed() {
                            IrohError::endpoint_closed()
                        } else {
                            IrohError::new(ErrorCode::Connect, format!("cannot connect to {}: {e}", remote.fmt_short()))
                        }
                    })
                };
                let conn = guarded(dial, cancel, &shared.closed, || Err(IrohError::endpoint_closed())).await?;
                Ok(Some(Connection::new(conn, shared.closed.clone())))
            }
            .await;
            settle(&done, result);
        });
        Ok(())
    }

    /// The next incoming connection (through the relay), or null once closed.
    pub fn accept(&self, cancel: JsValue, done: js_sys::Function) -> JsResult<()> {
        let shared = self.shared.clone();
        let cancel = token_of(&cancel);
        spawn_local(async move {
            let result = async {
                let Ok(ep) = shared.handle() else { return Ok(None) };
                let next = async {
                    loop {
                        let Some(incoming) = ep.accept().await else { return Ok(None) };
                        let accepted = match incoming.accept() {
                            Ok(accepting) => accepting.await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        if let Ok(conn) = accepted {
                            return Ok(Some(conn));
                        }
                    }
                };
                let conn = guarded(next, cancel, &shared.closed, || Ok(None)).await?;
                Ok(conn.map(|c| Connection::new(c, shared.closed.clone())))
            }
            .await;
            settle(&done, result);
        });
        Ok(())
    }

    pub fn close(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        shared.closed.cancelled.set(true);
        shared.closed.notify.notify_waiters();
        future_to_promise(async move {
            let ep = shared.ep.borrow_mut().take();
            if let Some(ep) = ep {
                ep.close().await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Each configured relay: `{ url, connected, error: { code, message } | null }`, as the
    /// native `relayStatus()` gives it; what is not a denial is `ERR_IROH_RELAY_UNREACHABLE`.
    #[wasm_bindgen(js_name = relayStatus)]
    pub fn relay_status(&self) -> js_sys::Array {
        match self.shared.handle() {
            Ok(ep) if !self.shared.closed.cancelled.get() => statuses_js(&self.shared.relays, &ep.home_relay_status().get()),
            _ => js_sys::Array::new(),
        }
    }

    /// Posts `relayStatus()` to `to` now and on every change; an empty list once closed.
    #[wasm_bindgen(js_name = watchRelays)]
    pub fn watch_relays(&self, to: u32) -> Watch {
        let (watcher, stopped) = Watch::new();
        let shared = self.shared.clone();
        spawn_local(async move {
            if let Ok(ep) = shared.handle() {
                let mut updates = ep.home_relay_status().stream();
                loop {
                    tokio::select! {
                        biased;
                        _ = stopped.cancelled() => return,
                        _ = shared.closed.cancelled() => break,
                        next = updates.next() => match next {
                            Some(list) => post(to, statuses_js(&shared.relays, &list).into()),
                            None => break,
                        },
                    }
                }
            }
            post(to, js_sys::Array::new().into());
        });
        watcher
    }

    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.shared.closed.cancelled.get() || self.shared.ep.borrow().as_ref().is_none_or(|ep| ep.is_closed())
    }

    #[wasm_bindgen(js_name = setAlpns)]
    pub fn set_alpns(&self, alpns: Vec<String>) -> JsResult<()> {
        let alpns = alpns.iter().map(|a| identity::validate_alpn(a)).collect::<Result<Vec<_>, _>>();
        iroh(self.shared.handle())?.set_alpns(iroh(alpns)?);
        Ok(())
    }
}
