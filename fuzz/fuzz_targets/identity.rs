//! Node ids, tickets, secret keys, addresses and ALPNs as users (and configs) pass them:
//! any string gets a value or a coded error, never a panic, and what parses round-trips.
#![no_main]

use alkdev_iroh_core::identity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(id) = identity::parse_node_id(text) {
        assert_eq!(identity::parse_node_id(&id.to_string()).expect("a node id re-parses"), id);
    }
    if let Ok(addr) = identity::parse_ticket(text) {
        let again = identity::parse_ticket(&identity::make_ticket(&addr)).expect("a ticket re-parses");
        assert_eq!(again.id, addr.id);
    }
    if let Ok(key) = identity::parse_secret_key(text) {
        let again = identity::parse_secret_key(&identity::secret_key_to_string(&key)).expect("a key re-parses");
        assert_eq!(again.public(), key.public());
    }
    let _ = identity::parse_target(text);
    let _ = identity::parse_relay_url(text);
    let _ = identity::parse_socket_addr(text);
    let _ = identity::validate_alpn(text);
});
