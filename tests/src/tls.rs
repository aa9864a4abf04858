//! Certificates for the TLS tests, made with the `openssl` command: a CA, a server certificate
//! it signed (for `localhost` and 127.0.0.1), a client certificate it signed (mutual TLS), and
//! a second CA that signed nothing here (a wrong trust root).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The PEM files, in one folder.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed none of the above.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (scripts/test.sh installs it)")?;
    if !out.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A CA (`<name>.crt`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) -> Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN=baton test {name}"),
        ],
    )
}

/// A certificate for `subject` signed by the CA `ca`, with `extensions` (an openssl
/// extension file's content).
fn make_signed(dir: &Path, name: &str, subject: &str, ca: &str, extensions: &str) -> Result<()> {
    std::fs::write(dir.join(format!("{name}.ext")), extensions)?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    )
}

impl TlsFiles {
    /// Makes every file in `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        make_ca(dir, "ca")?;
        make_ca(dir, "other-ca")?;
        make_signed(
            dir,
            "server",
            "/CN=localhost",
            "ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )?;
        make_signed(
            dir,
            "client",
            "/CN=baton-worker",
            "ca",
            "extendedKeyUsage=clientAuth\n",
        )?;
        let f = |n: &str| dir.join(n);
        Ok(Self {
            ca: f("ca.crt"),
            server_cert: f("server.crt"),
            server_key: f("server.key"),
            client_cert: f("client.crt"),
            client_key: f("client.key"),
            other_ca: f("other-ca.crt"),
        })
    }

    /// `redis-server` arguments for a TLS port that requires client certificates signed by
    /// the CA (the plain port stays, for the test's own reads).
    pub fn server_args(&self, tls_port: u16) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            p(&self.server_cert),
            "--tls-key-file".into(),
            p(&self.server_key),
            "--tls-ca-cert-file".into(),
            p(&self.ca),
            "--tls-auth-clients".into(),
            "yes".into(),
        ]
    }
}
