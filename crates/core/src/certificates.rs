//! TLS material for relay servers: a throwaway certificate authority for tests and local
//! setups, and PEM parsing for the certificates and keys that self-hosters bring.
//! Pure Rust: no napi.

use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{ErrorCode, IrohError, IrohResult};

/// A certificate chain and its key, ready for a TLS server.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The PEM of the CA that signed `chain`, when we generated it: clients trust this.
    pub ca_pem: Option<String>,
}

fn invalid(message: impl Into<String>) -> IrohError {
    IrohError::new(ErrorCode::InvalidCertificate, message)
}

/// A fresh CA, and a server certificate it signed for `names` (host names or IP
/// addresses). The CA's key is dropped, so it can sign nothing else.
pub fn generate_test_identity(names: &[String]) -> IrohResult<ServerIdentity> {
    let failed = |e: rcgen::Error| invalid(format!("cannot generate a test certificate: {e}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Each CA its own name, so that an error about an untrusted relay can say which one
    // (and webpki does not take one throwaway CA for another).
    let ca_key = KeyPair::generate().map_err(failed)?;
    let tag: String = ca_key.public_key_raw().iter().rev().take(4).map(|b| format!("{b:02x}")).collect();
    ca_params.distinguished_name.push(DnType::CommonName, format!("@alkdev/iroh test relay CA {tag}"));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(failed)?;

    let mut leaf_params = CertificateParams::new(names.to_vec()).map_err(failed)?;
    leaf_params.distinguished_name.push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("relay"));
    let leaf_key = KeyPair::generate().map_err(failed)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(failed)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| invalid(format!("generated key: {e}")))?;
    Ok(ServerIdentity { chain: vec![leaf.der().clone()], key, ca_pem: Some(ca.pem()) })
}

/// Every certificate in `pem`, in order; at least one.
pub fn parse_certificates(pem: &str) -> IrohResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("cannot read the PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate found: expected PEM blocks starting with -----BEGIN CERTIFICATE-----"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
pub fn parse_private_key(pem: &str) -> IrohResult<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| invalid(format!("cannot read the PEM private key: {e}")))
}

/// The identity a self-hoster brings: a chain (leaf first) and its key.
pub fn parse_identity(certificate_pem: &str, private_key_pem: &str) -> IrohResult<ServerIdentity> {
    Ok(ServerIdentity { chain: parse_certificates(certificate_pem)?, key: parse_private_key(private_key_pem)?, ca_pem: None })
}

/// The issuer's distinguished name in a DER certificate, e.g. `CN=Example CA`.
pub fn issuer_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.issuer().to_string())
}

/// A certificate verifier that decides as `inner` does and, when it refuses a server,
/// keeps the issuer of the certificate it was shown: so that an error can name the CA
/// the user must trust.
#[derive(Debug)]
pub struct IssuerNote {
    inner: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    refused_issuer: Mutex<Option<String>>,
}

impl IssuerNote {
    pub fn new(inner: Arc<dyn rustls::client::danger::ServerCertVerifier>) -> Self {
        Self { inner, refused_issuer: Mutex::new(None) }
    }

    /// The issuer of the last certificate refused.
    pub fn refused_issuer(&self) -> Option<String> {
        self.refused_issuer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl rustls::client::danger::ServerCertVerifier for IssuerNote {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if verdict.is_err() {
            *self.refused_issuer.lock().unwrap_or_else(|e| e.into_inner()) = issuer_of(end_entity);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A rustls server configuration for `identity`, checking that key and certificate match.
pub fn server_config(identity: &ServerIdentity) -> IrohResult<rustls::ServerConfig> {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| IrohError::new(ErrorCode::Internal, format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| invalid(format!("the certificate and key do not make a TLS identity: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn generated_identity_is_signed_by_its_ca() {
        let names = vec!["localhost".to_string(), "203.0.113.10".to_string()];
        let id = generate_test_identity(&names).expect("generates");
        let ca = parse_certificates(id.ca_pem.as_deref().expect("a CA")).expect("CA parses");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca[0].clone()).expect("CA is a valid root");
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .expect("verifier");
        let now = rustls::pki_types::UnixTime::now();
        for name in ["localhost", "203.0.113.10"] {
            let server_name = rustls::pki_types::ServerName::try_from(name).expect("name").to_owned();
            verifier
                .verify_server_cert(&id.chain[0], &[], &server_name, &[], now)
                .unwrap_or_else(|e| panic!("{name} must verify: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("example.com").expect("name").to_owned();
        assert!(verifier.verify_server_cert(&id.chain[0], &[], &other, &[], now).is_err());
        server_config(&id).expect("usable by a server");
    }

    #[test]
    fn a_refused_certificate_leaves_its_issuer() {
        let id = generate_test_identity(&["localhost".to_string()]).expect("generates");
        let issuer = issuer_of(&id.chain[0]).expect("readable");
        assert!(issuer.starts_with("CN=@alkdev/iroh test relay CA "), "{issuer}");
        assert_eq!(issuer_of(b"not a certificate"), None);
        let mut roots = rustls::RootCertStore::empty();
        let other = generate_test_identity(&["localhost".to_string()]).expect("generates");
        roots.add(parse_certificates(other.ca_pem.as_deref().expect("a CA")).expect("parses")[0].clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("builds");
        let note = IssuerNote::new(inner);
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name").to_owned();
        let now = rustls::pki_types::UnixTime::now();
        assert!(note.verify_server_cert(&other.chain[0], &[], &name, &[], now).is_ok());
        assert_eq!(note.refused_issuer(), None, "an accepted certificate leaves nothing");
        let refused = note.verify_server_cert(&id.chain[0], &[], &name, &[], now).expect_err("another CA");
        assert!(matches!(refused, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)), "{refused:?}");
        assert_eq!(note.refused_issuer(), Some(issuer));
    }

    #[test]
    fn pem_round_trips_and_garbage_is_coded() {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["relay.test".to_string()]).expect("params").self_signed(&key).expect("cert");
        let id = parse_identity(&cert.pem(), &key.serialize_pem()).expect("parses");
        assert_eq!(id.chain.len(), 1);
        server_config(&id).expect("a matching pair");

        let other_key = KeyPair::generate().expect("key");
        let mismatched = parse_identity(&cert.pem(), &other_key.serialize_pem()).expect("parses");
        assert_eq!(server_config(&mismatched).err().map(|e| e.code), Some(ErrorCode::InvalidCertificate));

        for bad in ["", "hello", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"] {
            assert_eq!(parse_certificates(bad).err().map(|e| e.code), Some(ErrorCode::InvalidCertificate), "{bad:?}");
            assert_eq!(parse_private_key(bad).err().map(|e| e.code), Some(ErrorCode::InvalidCertificate), "{bad:?}");
        }
    }
}
