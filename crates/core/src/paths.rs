//! The network paths of a connection as users see them: each path direct (UDP straight to
//! the peer, after hole punching where there is NAT) or through a relay, and one summary,
//! the path type. No napi here.

use iroh_base::TransportAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Direct,
    Relay,
    /// A custom transport (not used by this package, but iroh may report one).
    Other,
}

impl PathKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Relay => "relay",
            PathKind::Other => "other",
        }
    }
}

/// One open path of a connection, owned (iroh's view borrows the connection).
#[derive(Clone, Debug, PartialEq)]
pub struct PathSnapshot {
    pub kind: PathKind,
    /// `ip:port` for a direct path, the relay URL for a relay path.
    pub remote: String,
    pub rtt_ms: f64,
    /// Whether application data goes this way now.
    pub selected: bool,
}

/// Where a connection's application data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathType {
    /// Over a direct path.
    Direct,
    /// Over a relay, with no direct path open.
    Relay,
    /// Over a relay while a direct path is open too (hole punching has found one that is
    /// not selected yet), or over no single selected path while both kinds are open.
    Mixed,
    /// No open path: the connection is closed.
    None,
}

impl PathType {
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::Direct => "direct",
            PathType::Relay => "relay",
            PathType::Mixed => "mixed",
            PathType::None => "none",
        }
    }
}

pub fn path_type(paths: &[PathSnapshot]) -> PathType {
    let has = |kind| paths.iter().any(|p| p.kind == kind);
    match paths.iter().find(|p| p.selected).map(|p| p.kind) {
        Some(PathKind::Direct) => PathType::Direct,
        Some(_) if has(PathKind::Direct) => PathType::Mixed,
        Some(_) => PathType::Relay,
        None => match (has(PathKind::Direct), has(PathKind::Relay)) {
            (true, true) => PathType::Mixed,
            (true, false) => PathType::Direct,
            (false, true) => PathType::Relay,
            (false, false) => PathType::None,
        },
    }
}

/// Whether two snapshots differ in more than round trip times, which change all the time.
pub fn changed(before: &[PathSnapshot], after: &[PathSnapshot]) -> bool {
    before.len() != after.len()
        || before.iter().zip(after).any(|(a, b)| (a.kind, &a.remote, a.selected) != (b.kind, &b.remote, b.selected))
}

/// One path as users see it, from iroh's address of its far end (the binding reads the
/// addresses off a live connection).
pub fn describe(addr: &TransportAddr, rtt_ms: f64, selected: bool) -> PathSnapshot {
    let (kind, remote) = match addr {
        TransportAddr::Ip(addr) => (PathKind::Direct, addr.to_string()),
        TransportAddr::Relay(url) => (PathKind::Relay, url.to_string()),
        other => (PathKind::Other, other.to_string()),
    };
    PathSnapshot { kind, remote, rtt_ms, selected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(kind: PathKind, selected: bool) -> PathSnapshot {
        PathSnapshot { kind, remote: String::new(), rtt_ms: 1.0, selected }
    }

    #[test]
    fn path_type_follows_the_selected_path() {
        use PathKind::{Direct, Relay};
        assert_eq!(path_type(&[]), PathType::None);
        assert_eq!(path_type(&[path(Relay, true)]), PathType::Relay);
        assert_eq!(path_type(&[path(Relay, true), path(Direct, false)]), PathType::Mixed);
        assert_eq!(path_type(&[path(Relay, false), path(Direct, true)]), PathType::Direct);
        assert_eq!(path_type(&[path(Direct, true)]), PathType::Direct);
        assert_eq!(path_type(&[path(Relay, false), path(Direct, false)]), PathType::Mixed);
        assert_eq!(path_type(&[path(Relay, false)]), PathType::Relay);
    }

    #[test]
    fn only_path_changes_count_as_changes() {
        let before = vec![path(PathKind::Relay, true)];
        let mut slower = before.clone();
        slower[0].rtt_ms = 50.0;
        assert!(!changed(&before, &slower));
        assert!(changed(&before, &[path(PathKind::Relay, true), path(PathKind::Direct, false)]));
        assert!(changed(&before, &[path(PathKind::Relay, false)]));
        assert!(changed(&before, &[]));
    }

    #[test]
    fn addresses_are_described_by_kind() {
        let ip = describe(&TransportAddr::Ip("203.0.113.5:4433".parse().expect("addr")), 2.5, true);
        assert_eq!((ip.kind, ip.remote.as_str(), ip.selected), (PathKind::Direct, "203.0.113.5:4433", true));
        let url = "https://relay.example:443/".parse().expect("url");
        let relay = describe(&TransportAddr::Relay(url), 9.0, false);
        assert_eq!((relay.kind, relay.remote.as_str()), (PathKind::Relay, "https://relay.example/"));
    }
}
