//! Certificates and keys from PEM files, for TLS on both ends (the
//! gateway's `[server.tls]` and the console's `https://` gateways): one
//! reader, so both say the same about a file that is missing, unreadable or
//! holds the wrong thing. `what` names the file's setting in the messages.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates in a PEM file (at least one).
pub(crate) fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{what} {}: cannot read: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not a PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub(crate) fn key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{what} {}: cannot read: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!(
            "{what} {}: no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_without_a_certificate_or_key_says_what_it_expected() {
        let dir = std::env::temp_dir().join(format!("wr-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not pem\n").unwrap();
        let e = super::certs(&f, "CA file").unwrap_err();
        assert!(
            e.starts_with("CA file ") && e.contains("-----BEGIN CERTIFICATE-----"),
            "{e}"
        );
        let e = super::key(&f, "[server.tls] key").unwrap_err();
        assert!(e.contains("no private key in it"), "{e}");
        let e = super::certs(&dir.join("missing.pem"), "CA file").unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
