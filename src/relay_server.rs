//! `startRelayServer()`: an iroh relay (the `iroh-relay` crate's server) run in this
//! process, for tests and for people who host their own relay. It relays traffic between
//! endpoints that cannot reach each other directly, and answers QUIC address discovery
//! so that endpoints behind NAT learn their public address for hole punching.

use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::HashSet;

use iroh::EndpointId;
use iroh_relay::server::{
    Access, AccessControl, AllowAll, CertConfig, ClientRequest, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig,
};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::error::{ErrorCode, IrohError, IrohResult};
use crate::pending::{blocking, spawn};
use alkdev_iroh_core::certificates::{self, ServerIdentity};
use alkdev_iroh_core::identity;

/// Options for `startRelayServer`.
#[napi(object)]
pub struct RelayServerOptions {
    /// The HTTPS address to serve on. Default `127.0.0.1:0` (a free port on loopback).
    pub bind_addr: Option<String>,
    /// The UDP port for QUIC address discovery, on the same IP. Default 0: a free port.
    pub quic_port: Option<u32>,
    /// The host name clients put in the relay URL. Default: the bound IP address.
    pub hostname: Option<String>,
    /// The certificate chain (PEM, leaf first) for `hostname`. Without it, a throwaway CA
    /// is generated and signs a certificate for `hostname`, the IP and `localhost`;
    /// clients must then trust `caCertificatePem` through `relayCaCertificates`.
    pub certificate_pem: Option<String>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `certificatePem`.
    pub private_key_pem: Option<String>,
    /// Serve only these node ids; others are denied (they see `ERR_IROH_RELAY_DENIED`).
    /// Default: everyone.
    pub allow: Option<Vec<String>>,
}

/// Admits only the node ids it holds.
#[derive(Debug)]
struct AllowList(HashSet<EndpointId>);

impl AccessControl for AllowList {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        if self.0.contains(&request.endpoint_id()) {
            Access::Allow
        } else {
            Access::Deny { reason: Some("this relay serves only the node ids it was started with".into()) }
        }
    }
}

/// The relay as endpoints are given it in `relayMode: { relays: [...] }`.
#[napi(object)]
#[derive(Clone)]
pub struct RelayInfo {
    pub url: String,
    /// The UDP port of its QUIC address discovery.
    pub quic_port: u32,
}

struct Settings {
    bind: SocketAddr,
    quic_port: u16,
    hostname: String,
    identity: ServerIdentity,
    allow: Option<HashSet<EndpointId>>,
}

impl Settings {
    fn from_options(o: RelayServerOptions) -> IrohResult<Self> {
        let bind = identity::parse_socket_addr(o.bind_addr.as_deref().unwrap_or("127.0.0.1:0"))?;
        let quic_port = u16::try_from(o.quic_port.unwrap_or(0))
            .map_err(|_| IrohError::invalid_argument("quicPort must be a port number (0 to 65535)"))?;
        let hostname = match o.hostname {
            Some(h) if h.is_empty() || h.contains(['/', ':', ' ']) => {
                return Err(IrohError::invalid_argument(format!("hostname {h:?} is not a host name")))
            }
            Some(h) => h,
            None => bind.ip().to_string(),
        };
        let identity = match (o.certificate_pem, o.private_key_pem) {
            (Some(cert), Some(key)) => certificates::parse_identity(&cert, &key)?,
            (None, None) => {
                let mut names = vec![hostname.clone(), bind.ip().to_string(), "localhost".to_string()];
                names.dedup();
                certificates::generate_test_identity(&names)?
            }
            _ => return Err(IrohError::invalid_argument("pass both certificatePem and privateKeyPem, or neither")),
        };
        let allow = o.allow.map(|ids| ids.iter().map(|id| identity::parse_node_id(id)).collect()).transpose()?;
        Ok(Self { bind, quic_port, hostname, identity, allow })
    }

    /// The URL in the canonical form endpoints report (no `:443`, a trailing slash).
    fn url(&self, https: SocketAddr) -> IrohResult<String> {
        // An IPv6 literal needs brackets in a URL.
        let host = if self.hostname.contains(':') { format!("[{}]", self.hostname) } else { self.hostname.clone() };
        Ok(identity::parse_relay_url(&format!("https://{host}:{}/", https.port()))?.to_string())
    }
}

/// A running relay server. `close()` stops it.
#[napi]
pub struct RelayServer {
    server: Arc<Mutex<Option<Server>>>,
    info: RelayInfo,
    ca_pem: Option<String>,
}

#[napi]
impl RelayServer {
    /// The URL endpoints dial, e.g. `https://127.0.0.1:40123/`.
    #[napi(catch_unwind, getter)]
    pub fn url(&self) -> String {
        self.info.url.clone()
    }

    /// The UDP port of QUIC address discovery.
    #[napi(catch_unwind, getter)]
    pub fn quic_port(&self) -> u32 {
        self.info.quic_port
    }

    /// `{ url, quicPort }`, as `relayMode: { relays: [...] }` takes it.
    #[napi(catch_unwind, getter)]
    pub fn relay(&self) -> RelayInfo {
        self.info.clone()
    }

    /// The generated CA's certificate (PEM), or `null` when you passed your own.
    #[napi(catch_unwind, getter)]
    pub fn ca_certificate_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Stops serving and closes every client connection.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let server = self.server.clone();
        spawn(env, async move {
            if let Some(server) = server.lock().await.take() {
                server
                    .shutdown()
                    .await
                    .map_err(|e| IrohError::new(ErrorCode::Internal, format!("the relay server failed while stopping: {e}")))?;
            }
            Ok(())
        })
    }
}

/// Starts a relay server.
#[napi(catch_unwind, ts_return_type = "Promise<RelayServer>")]
pub fn start_relay_server<'env>(
    env: &'env Env,
    options: Option<RelayServerOptions>,
) -> napi::Result<PromiseRaw<'env, RelayServer>> {
    let options = options.unwrap_or(RelayServerOptions {
        bind_addr: None,
        quic_port: None,
        hostname: None,
        certificate_pem: None,
        private_key_pem: None,
        allow: None,
    });
    spawn(env, async move {
        // Key generation and parsing are CPU work: keep them off the runtime's one worker.
        let settings = blocking(move || Settings::from_options(options)).await?;
        let tls = certificates::server_config(&settings.identity)?;

        let mut relay = RelayConfig::new(SocketAddr::new(settings.bind.ip(), 0));
        relay.tls = Some(TlsConfig::new(settings.bind, CertConfig::Manual { server_config: tls }));
        relay.access = match settings.allow.clone() {
            Some(ids) => Arc::new(AllowList(ids)),
            None => Arc::new(AllowAll),
        };
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        config.quic = Some(QuicConfig::new(SocketAddr::new(settings.bind.ip(), settings.quic_port)));

        let server = Server::spawn(config)
            .await
            .map_err(|e| IrohError::new(ErrorCode::Bind, format!("cannot start the relay server on {}: {e}", settings.bind)))?;
        let (Some(https), Some(quic)) = (server.https_addr(), server.quic_addr()) else {
            return Err(IrohError::new(ErrorCode::Internal, "the relay server did not report its addresses"));
        };
        let info = RelayInfo { url: settings.url(https)?, quic_port: u32::from(quic.port()) };
        Ok(RelayServer { server: Arc::new(Mutex::new(Some(server))), info, ca_pem: settings.identity.ca_pem.clone() })
    })
}
