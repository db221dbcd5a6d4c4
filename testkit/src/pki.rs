//! Certificates made by a test with Debian's `openssl`: a CA, server
//! certificates for 127.0.0.1 and `localhost` with chosen serials, a client
//! certificate. Nothing is downloaded.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ci::tool;

/// `openssl req` arguments for a new P-256 key, unencrypted.
const NEW_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A test CA in a directory, and what it signed.
#[derive(Debug)]
pub struct Pki {
    openssl: PathBuf,
    dir: PathBuf,
}

fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Pki {
    /// A new CA (`ca.crt`, `ca.key`, P-256) in `dir`; `None` without
    /// openssl outside CI (in CI a missing openssl fails the test).
    pub fn new(dir: &Path) -> Option<Pki> {
        let openssl = tool("openssl", "openssl")?;
        let pki = Pki {
            openssl,
            dir: dir.to_owned(),
        };
        pki.openssl(
            &[
                &["req", "-x509"][..],
                &NEW_KEY,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=psi test CA",
                ],
            ]
            .concat(),
        )
        .expect("make the test CA");
        Some(pki)
    }

    /// Runs openssl in the CA's directory.
    pub fn openssl(&self, args: &[&str]) -> io::Result<String> {
        run(Command::new(&self.openssl)
            .current_dir(&self.dir)
            .args(args))
    }

    /// A path in the CA's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Signs a new key pair as `<name>.crt` and `<name>.key` with `serial`
    /// (hex) and the extensions in `ext` (openssl's `-extfile` syntax).
    fn issue(&self, name: &str, serial: &str, subject: &str, ext: &str) -> io::Result<()> {
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(self.path(&extfile), ext)?;
        self.openssl(
            &[
                &["req"][..],
                &NEW_KEY,
                &["-keyout", &key, "-out", &csr, "-subj", subject],
            ]
            .concat(),
        )?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &format!("0x{serial}"),
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &crt,
        ])?;
        Ok(())
    }

    /// A server certificate for 127.0.0.1 and `localhost`: `<name>.crt`, `<name>.key`.
    pub fn server(&self, name: &str, serial: &str) -> io::Result<()> {
        self.issue(
            name,
            serial,
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
    }

    /// A client certificate: `<name>.crt`, `<name>.key`.
    pub fn client(&self, name: &str, serial: &str) -> io::Result<()> {
        self.issue(
            name,
            serial,
            "/CN=prometheus",
            "extendedKeyUsage=clientAuth\n",
        )
    }

    /// The serial (upper-case hex, as openssl prints it) of the certificate
    /// a TLS server on 127.0.0.1:`port` presents now.
    pub fn served_serial(&self, port: u16) -> io::Result<String> {
        let pem = self.openssl(&[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-showcerts",
        ])?;
        let file = self.path("served.pem");
        std::fs::write(&file, pem)?;
        let out = self.openssl(&["x509", "-noout", "-serial", "-in", "served.pem"])?;
        out.trim()
            .strip_prefix("serial=")
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("no serial in {out:?}")))
    }
}
