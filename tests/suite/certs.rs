//! A throwaway certificate authority for the HTTPS tests, made with `openssl` (as the request
//! identity tests make their keys): a CA, a certificate it signs for `127.0.0.1`, and the
//! ed25519 keys restate-server signs its requests with.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of a test CA and of the server certificate it signed.
pub struct TestCa {
    /// The CA's certificate: what a client trusts (`SSL_CERT_FILE`).
    pub ca: PathBuf,
    /// The server's certificate chain for `127.0.0.1`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestCa {
    /// Makes a CA and a server certificate for `127.0.0.1` in `dir`.
    pub fn new(dir: &Path) -> TestCa {
        std::fs::create_dir_all(dir).unwrap();
        #[rustfmt::skip]
        openssl(dir, &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=kbo-import test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        #[rustfmt::skip]
        openssl(dir, &[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        #[rustfmt::skip]
        openssl(dir, &[
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        ]);
        TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }

    /// The server side of TLS with this certificate, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let files = kbo_import::config::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        };
        let mut config = kbo_import::tls::server_config(&files).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }
}

/// Writes an ed25519 private key in PEM at `path`, as restate-server signs its requests with
/// (`RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE`); returns the path.
pub fn signing_key(path: &Path) -> PathBuf {
    let dir = path.parent().expect("the key's folder");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-outform",
            "pem",
            "-out",
            name,
        ],
    );
    path.to_path_buf()
}
