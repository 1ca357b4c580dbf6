//! Case E of the benchmark: the limit of the stack. Plain Rust over iroh with the
//! same 4-byte length framing and the same endpoint settings as the addon (loopback,
//! relays, address lookup and port mapping off, the same QUIC windows), so the gap to
//! case A is what the binding costs.
//!
//! `iroh-raw server '<config>'` prints `{"ready":"<ticket>"}`; `iroh-raw client
//! '<config>'` dials `config.addr`. The receiving side prints `{"result":{..}}`.
//! Config: `{"workload":"small"|"large"|"rtt","count":N,"warmup":N,"addr":"ticket"}`.

use std::str::FromStr;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use iroh::endpoint::{presets, Connection, PortmapperConfig, QuicTransportConfig, RecvStream, SendStream, VarInt};
use iroh::{Endpoint, EndpointAddr, RelayMode};
use iroh_tickets::endpoint::EndpointTicket;
use serde_json::{json, Value};

const ALPN: &[u8] = b"alkdev-bench/1";
/// The addon's windows (src/endpoint.rs), so both sides run the same QUIC.
const CONNECTION_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;
const STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;
const WRITE_CHUNK: usize = 64 * 1024;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Res<()> {
    // The addon's runtime shape (src/runtime.rs): one worker unless TOKIO_WORKER_THREADS.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.build()?.block_on(run())
}

async fn run() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let role = args.next().ok_or("usage: iroh-raw server|client '<json config>'")?;
    let config: Value = serde_json::from_str(&args.next().unwrap_or_else(|| "{}".into()))?;
    let ep = endpoint(role == "server").await?;
    let conn = if role == "server" {
        println!("{}", json!({ "ready": EndpointTicket::new(ep.addr()).to_string() }));
        let incoming = ep.accept().await.ok_or("endpoint closed")?;
        incoming.accept()?.await?
    } else {
        let addr = config["addr"].as_str().ok_or("config.addr: the server's ticket")?;
        let addr = EndpointAddr::from(EndpointTicket::from_str(addr)?);
        ep.connect(addr, ALPN).await?
    };
    let (send, recv) = if role == "server" { conn.accept_bi().await? } else { open(&conn).await? };
    // Connected: the bench counts CPU from here.
    println!("{}", json!({ "armed": true }));
    let count = config["count"].as_u64().unwrap_or(100_000) as usize;
    let warmup = config["warmup"].as_u64().unwrap_or(0) as usize;
    let event = event_bytes(config["workload"].as_str().unwrap_or("small"));
    match (config["workload"].as_str().unwrap_or("small"), role.as_str()) {
        ("rtt", "client") => ping(send, recv, &event, count, warmup).await?,
        ("rtt", _) => echo(send, recv, &event).await?,
        (_, "client") => send_events(send, recv, &event, count).await?,
        _ => receive_events(send, recv, count).await?,
    }
    // The client closes once the server has finished its side; the server waits for that.
    if role == "server" {
        conn.closed().await;
    } else {
        conn.close(0u32.into(), b"done");
    }
    ep.close().await;
    Ok(())
}

async fn endpoint(accepts: bool) -> Res<Endpoint> {
    let transport = QuicTransportConfig::builder()
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .build();
    let builder = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?
        .transport_config(transport)
        .alpns(if accepts { vec![ALPN.to_vec()] } else { vec![] });
    Ok(builder.bind().await?)
}

async fn open(conn: &Connection) -> Res<(SendStream, RecvStream)> {
    Ok(conn.open_bi().await?)
}

/// The benchmark's events, byte for byte the JSON the JS cases send.
fn event_bytes(workload: &str) -> Vec<u8> {
    let event = match workload {
        "large" => json!({ "type": "blob", "detail": "x".repeat(64 * 1024) }),
        _ => {
            json!({ "type": "call.requested", "detail": { "id": "0123456789abcdef", "op": "echo", "args": [1, 2, 3], "ts": 1_700_000_000u64 } })
        }
    };
    serde_json::to_vec(&event).expect("static JSON")
}

fn put_frame(out: &mut BytesMut, payload: &[u8]) {
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

/// Frames from a stream that arrives in arbitrary pieces.
struct Frames {
    recv: RecvStream,
    buf: BytesMut,
}

impl Frames {
    fn new(recv: RecvStream) -> Self {
        Self { recv, buf: BytesMut::new() }
    }

    /// The next frame's payload, or `None` at a clean end of stream.
    async fn next(&mut self) -> Res<Option<Bytes>> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into()?) as usize;
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
            }
            match self.recv.read_chunk(usize::MAX).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err("stream ended mid-frame".into()),
            }
        }
    }
}

async fn send_events(mut send: SendStream, recv: RecvStream, event: &[u8], count: usize) -> Res<()> {
    let mut out = BytesMut::with_capacity(WRITE_CHUNK + event.len() + 4);
    for _ in 0..count {
        put_frame(&mut out, event);
        if out.len() >= WRITE_CHUNK {
            send.write_chunk(out.split().freeze()).await?;
        }
    }
    if !out.is_empty() {
        send.write_chunk(out.freeze()).await?;
    }
    // The receiver answers once it has counted everything, then finishes.
    let mut frames = Frames::new(recv);
    frames.next().await?.ok_or("no done frame")?;
    send.finish()?;
    while frames.next().await?.is_some() {}
    Ok(())
}

async fn receive_events(mut send: SendStream, recv: RecvStream, count: usize) -> Res<()> {
    let mut frames = Frames::new(recv);
    // Timing starts after the first tenth, as in the JS cases.
    let warm = (count / 10).max(1);
    let mut frame_bytes = 0;
    for _ in 0..warm {
        frame_bytes = frames.next().await?.ok_or("no events")?.len();
    }
    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in warm..count {
        bytes += frames.next().await?.ok_or("stream ended early")?.len();
    }
    let secs = start.elapsed().as_secs_f64();
    let mut done = BytesMut::new();
    put_frame(&mut done, br#"{"type":"done","detail":null}"#);
    send.write_all(&done).await?;
    send.finish()?;
    let result = json!({
        "eventsPerSec": (count - warm) as f64 / secs,
        "mbPerSec": bytes as f64 / secs / 1e6,
        "frameBytes": frame_bytes,
        "peakRssBytes": peak_rss(),
    });
    println!("{}", json!({ "result": result }));
    Ok(())
}

async fn ping(mut send: SendStream, recv: RecvStream, event: &[u8], count: usize, warmup: usize) -> Res<()> {
    let mut frames = Frames::new(recv);
    let mut micros = Vec::with_capacity(count);
    let mut out = BytesMut::new();
    for i in 0..warmup + count {
        put_frame(&mut out, event);
        let start = Instant::now();
        send.write_all(&out.split()).await?;
        frames.next().await?.ok_or("no pong")?;
        if i >= warmup {
            micros.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    send.finish()?;
    while frames.next().await?.is_some() {}
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    println!("{}", json!({ "result": { "rttP50Us": at(0.5), "rttP99Us": at(0.99), "peakRssBytes": peak_rss() } }));
    Ok(())
}

async fn echo(mut send: SendStream, recv: RecvStream, event: &[u8]) -> Res<()> {
    let mut frames = Frames::new(recv);
    let mut out = BytesMut::new();
    while frames.next().await?.is_some() {
        put_frame(&mut out, event);
        send.write_all(&out.split()).await?;
    }
    send.finish()?;
    Ok(())
}

/// Peak resident set size of this process (Linux: VmHWM), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}
