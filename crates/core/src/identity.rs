//! Keys, node ids, tickets and addresses: parsing and formatting with coded errors,
//! and the key file that keeps a node id stable across restarts. No napi here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use iroh_base::{EndpointAddr, PublicKey, RelayUrl, SecretKey, TransportAddr};
use iroh_tickets::endpoint::EndpointTicket;

use crate::error::{ErrorCode, IrohError, IrohResult};

/// Ticket strings start with this kind prefix (iroh-tickets' `EndpointTicket::KIND`).
const TICKET_PREFIX: &str = "endpoint";
/// ALPNs travel in a TLS extension whose entries are at most 255 bytes.
const MAX_ALPN_LEN: usize = 255;

pub fn generate_secret_key() -> SecretKey {
    SecretKey::generate()
}

/// iroh's `SecretKey` has no string form of its own; we write lowercase hex, which
/// `SecretKey::from_str` reads back (it also reads base32).
pub fn secret_key_to_string(key: &SecretKey) -> String {
    to_hex(&key.to_bytes())
}

pub fn parse_secret_key(input: &str) -> IrohResult<SecretKey> {
    let s = input.trim();
    if s.is_empty() {
        return Err(IrohError::new(ErrorCode::InvalidSecretKey, "the secret key is empty"));
    }
    SecretKey::from_str(&normalize_hex(s)).map_err(|e| {
        IrohError::new(
            ErrorCode::InvalidSecretKey,
            format!("invalid secret key ({e}): expected 64 hex characters or 52 base32 characters"),
        )
    })
}

pub fn parse_node_id(input: &str) -> IrohResult<PublicKey> {
    let s = input.trim();
    PublicKey::from_str(&normalize_hex(s)).map_err(|e| {
        IrohError::new(
            ErrorCode::InvalidNodeId,
            format!("invalid node id {:?} ({e}): expected 64 hex characters or 52 base32 characters", abbreviate(s)),
        )
    })
}

pub fn parse_ticket(input: &str) -> IrohResult<EndpointAddr> {
    let s = input.trim();
    EndpointTicket::from_str(s)
        .map(EndpointAddr::from)
        .map_err(|e| IrohError::new(ErrorCode::InvalidTicket, format!("invalid endpoint ticket ({e})")))
}

pub fn make_ticket(addr: &EndpointAddr) -> String {
    EndpointTicket::new(addr.clone()).to_string()
}

/// A connect target given as a string: a ticket (which carries addresses) or a bare node id.
pub fn parse_target(input: &str) -> IrohResult<EndpointAddr> {
    let s = input.trim();
    if s.starts_with(TICKET_PREFIX) {
        parse_ticket(s)
    } else {
        parse_node_id(s).map(EndpointAddr::new)
    }
}

pub fn parse_relay_url(input: &str) -> IrohResult<RelayUrl> {
    RelayUrl::from_str(input.trim())
        .map_err(|e| IrohError::new(ErrorCode::InvalidRelayUrl, format!("invalid relay url {input:?} ({e})")))
}

pub fn parse_socket_addr(input: &str) -> IrohResult<SocketAddr> {
    SocketAddr::from_str(input.trim()).map_err(|_| {
        IrohError::new(
            ErrorCode::InvalidAddr,
            format!("invalid socket address {input:?}: expected ip:port, e.g. 127.0.0.1:4433 or [::1]:4433"),
        )
    })
}

/// An address assembled from the parts users see in `addr()`.
pub fn addr_from_parts(node_id: &str, relay_url: Option<&str>, direct_addresses: &[String]) -> IrohResult<EndpointAddr> {
    let mut addr = EndpointAddr::new(parse_node_id(node_id)?);
    if let Some(url) = relay_url {
        addr = addr.with_relay_url(parse_relay_url(url)?);
    }
    for a in direct_addresses {
        addr = addr.with_ip_addr(parse_socket_addr(a)?);
    }
    Ok(addr)
}

/// The user-facing parts of an address: relay url (first, if any) and direct addresses.
pub fn addr_parts(addr: &EndpointAddr) -> (Option<String>, Vec<String>) {
    let relay = addr.relay_urls().next().map(|u| u.to_string());
    let direct = addr
        .addrs
        .iter()
        .filter_map(|a| match a {
            TransportAddr::Ip(sa) => Some(sa.to_string()),
            _ => None,
        })
        .collect();
    (relay, direct)
}

pub fn validate_alpn(alpn: &str) -> IrohResult<Vec<u8>> {
    if alpn.is_empty() {
        return Err(IrohError::new(ErrorCode::InvalidAlpn, "an ALPN must not be empty"));
    }
    if alpn.len() > MAX_ALPN_LEN {
        return Err(IrohError::new(
            ErrorCode::InvalidAlpn,
            format!("an ALPN is at most {MAX_ALPN_LEN} bytes, got {}", alpn.len()),
        ));
    }
    Ok(alpn.as_bytes().to_vec())
}

/// Reads the key at `path`, or creates it (mode 0600, parent folders included) when the
/// file does not exist. Creation uses `create_new`, so two processes racing on a fresh
/// path end up with the same key instead of one overwriting the other's.
pub fn load_or_create_secret_key(path: &Path) -> IrohResult<SecretKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_error(path, "read", e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| key_file_error(parent, "create the folder of", e))?;
    }
    let key = generate_secret_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            let text = format!("{}\n", secret_key_to_string(&key));
            file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(|e| key_file_error(path, "write", e))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| key_file_error(path, "read", e))?;
            parse_key_file(path, &text)
        }
        Err(e) => Err(key_file_error(path, "create", e)),
    }
}

fn parse_key_file(path: &Path, text: &str) -> IrohResult<SecretKey> {
    parse_secret_key(text).map_err(|e| {
        IrohError::new(
            ErrorCode::InvalidSecretKey,
            format!("the key file {} does not hold a valid secret key: {}", path.display(), e.message),
        )
    })
}

fn key_file_error(path: &Path, what: &str, e: std::io::Error) -> IrohError {
    IrohError::new(ErrorCode::KeyFile, format!("cannot {what} the key file {}: {e}", path.display()))
}

/// iroh reads lowercase hex only; upper-case hex (as some tools print it) means the same key.
fn normalize_hex(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Error messages quote user input, but never a whole megabyte of it.
fn abbreviate(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_round_trips_through_hex() {
        let key = generate_secret_key();
        let text = secret_key_to_string(&key);
        assert_eq!(text.len(), 64);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let back = parse_secret_key(&text).unwrap();
        assert_eq!(back.public(), key.public());
        // Surrounding whitespace (a trailing newline in a key file) is tolerated.
        assert_eq!(parse_secret_key(&format!("  {text}\n")).unwrap().public(), key.public());
        assert_eq!(parse_secret_key(&text.to_uppercase()).unwrap().public(), key.public());
    }

    #[test]
    fn bad_secret_keys_are_coded() {
        for bad in ["", "xyz", &"a".repeat(63), &"g".repeat(64), &"a".repeat(65)] {
            let err = parse_secret_key(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSecretKey, "input {bad:?}");
        }
    }

    #[test]
    fn node_ids_parse_and_reject() {
        let id = generate_secret_key().public();
        assert_eq!(parse_node_id(&id.to_string()).unwrap(), id);
        let err = parse_node_id("not-a-node-id").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidNodeId);
        assert!(err.message.contains("not-a-node-id"));
        let huge = "z".repeat(10_000);
        let err = parse_node_id(&huge).unwrap_err();
        assert!(err.message.len() < 300, "message quotes the whole input");
    }

    #[test]
    fn tickets_round_trip_and_targets_dispatch() {
        let id = generate_secret_key().public();
        let addr = EndpointAddr::new(id).with_ip_addr("127.0.0.1:4433".parse().unwrap());
        let ticket = make_ticket(&addr);
        assert!(ticket.starts_with("endpoint"));
        assert_eq!(parse_ticket(&ticket).unwrap(), addr);
        assert_eq!(parse_target(&ticket).unwrap(), addr);
        assert_eq!(parse_target(&id.to_string()).unwrap(), EndpointAddr::new(id));
        assert_eq!(parse_target("endpointgarbage").unwrap_err().code, ErrorCode::InvalidTicket);
        assert_eq!(parse_target("garbage").unwrap_err().code, ErrorCode::InvalidNodeId);
        let mut corrupted = ticket.clone();
        corrupted.truncate(ticket.len() - 3);
        assert_eq!(parse_ticket(&corrupted).unwrap_err().code, ErrorCode::InvalidTicket);
    }

    #[test]
    fn addr_parts_round_trip() {
        let id = generate_secret_key().public();
        let addr =
            addr_from_parts(&id.to_string(), Some("https://relay.example.test/"), &["127.0.0.1:1234".into(), "[::1]:99".into()])
                .unwrap();
        let (relay, direct) = addr_parts(&addr);
        assert_eq!(relay.as_deref(), Some("https://relay.example.test/"));
        assert_eq!(direct.len(), 2);
        assert_eq!(addr_from_parts(&id.to_string(), None, &["nope".into()]).unwrap_err().code, ErrorCode::InvalidAddr);
        assert_eq!(addr_from_parts(&id.to_string(), Some("::not a url"), &[]).unwrap_err().code, ErrorCode::InvalidRelayUrl);
    }

    #[test]
    fn alpns_are_validated() {
        assert_eq!(validate_alpn("alkhub/1").unwrap(), b"alkhub/1");
        assert_eq!(validate_alpn("").unwrap_err().code, ErrorCode::InvalidAlpn);
        assert_eq!(validate_alpn(&"a".repeat(256)).unwrap_err().code, ErrorCode::InvalidAlpn);
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("alkdev-iroh-test-{}", std::process::id()));
        let path = dir.join("nested").join("node.key");
        let _ = std::fs::remove_dir_all(&dir);
        let first = load_or_create_secret_key(&path).unwrap();
        let second = load_or_create_secret_key(&path).unwrap();
        assert_eq!(first.public(), second.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert_eq!(load_or_create_secret_key(&path).unwrap_err().code, ErrorCode::InvalidSecretKey);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
