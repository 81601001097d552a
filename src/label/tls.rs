//! Trust roots for https servers of the OpenAI-compatible backend (rustls through ureq): the system's CA
//! bundle plus the certificates of `SSL_CERT_FILE` (a private CA, a company proxy, a test server), else
//! the Mozilla roots compiled into webpki-roots when the system has no bundle (Windows).
//!
//! Why not rustls-native-certs: with `SSL_CERT_FILE` set it reads only that file, which drops the public
//! roots hosted APIs need; here the file adds to them. The system bundle is found where OpenSSL's
//! distributions put it (openssl-probe's list).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ureq::tls::{Certificate, PemItem, RootCerts};

/// CA bundle files of common systems, first found wins (Debian/Ubuntu, Fedora/RHEL, openSUSE, CentOS,
/// Alpine/macOS/BSD, FreeBSD, Homebrew).
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
    "/usr/local/etc/openssl/cert.pem",
];

/// The certificates of a PEM file (other PEM items are skipped). Errors name the file.
pub fn pem_certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read certificate file {}", path.display()))?;
    let mut out = vec![];
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => bail!("{}: not a valid PEM certificate file ({e})", path.display()),
        }
    }
    Ok(out)
}

/// The system bundle's path, if the system has one of [`SYSTEM_BUNDLES`].
pub fn system_bundle() -> Option<PathBuf> {
    SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Roots for https: the system bundle + `extra` (`SSL_CERT_FILE`); webpki-roots when neither gives any.
/// An `extra` file that cannot be read or holds no certificate is an error naming it.
pub fn root_certs(extra: Option<&Path>) -> Result<RootCerts> {
    let mut certs = match system_bundle() {
        Some(p) => pem_certificates(&p).unwrap_or_default(),
        None => vec![],
    };
    if let Some(f) = extra {
        let more = pem_certificates(f).with_context(|| "SSL_CERT_FILE".to_string())?;
        if more.is_empty() {
            bail!("SSL_CERT_FILE {}: no PEM certificate in it", f.display());
        }
        certs.extend(more);
    }
    Ok(if certs.is_empty() { RootCerts::WebPki } else { RootCerts::Specific(Arc::new(certs)) })
}
