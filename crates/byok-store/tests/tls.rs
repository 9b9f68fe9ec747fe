//! PostgreSQL over TLS, against a private server the test starts (initdb into a temporary
//! directory, `ssl = on`, a certificate made now by a CA made now: no key is ever committed):
//! - `sslmode=verify-full` with the CA connects, the session is TLS (`pg_stat_ssl`), and the
//!   store works over it;
//! - another CA, or a host name the certificate does not name, is refused;
//! - `sslmode=require` against a server without TLS is refused, never plaintext.

use std::path::{Path, PathBuf};
use std::process::Command;

use byok_store::SqlStore;
use byok_store::prelude::*;
use sqlx::Connection;

/// PostgreSQL's server binaries (`initdb`, `pg_ctl`), where Debian puts them.
fn pg_bin() -> PathBuf {
    let from_config = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success());
    if let Some(out) = from_config {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("PostgreSQL's server binaries (initdb, pg_ctl) are needed for this test: Debian's postgresql package")
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `initdb` and `postgres` refuse to run as root: as root, they run as the `postgres` user.
fn as_server_user(bin: &Path, program: &str) -> Command {
    let root = run("id", Command::new("id").arg("-u")).trim() == "0";
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// A CA and a server certificate for `localhost` signed by it: (CA PEM, certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "byok test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    server.distinguished_name.push(DnType::CommonName, "localhost");
    let server_cert = server.signed_by(&server_key, &issuer).expect("server certificate");
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

/// A private PostgreSQL with TLS; stopped when dropped.
struct PrivateServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivateServer {
    fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("dir");
        let (ca, cert, key) = certificates();
        std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
        std::fs::write(dir.path().join("server.crt"), cert).expect("cert");
        std::fs::write(dir.path().join("server.key"), key).expect("key");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("server.key"), std::fs::Permissions::from_mode(0o600)).expect("key mode");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("dir mode");
        }
        if run("id", Command::new("id").arg("-u")).trim() == "0" {
            run("chown", Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()));
        }
        let data = dir.path().join("data");
        run("initdb", as_server_user(&bin, "initdb").args(["--auth=trust", "-U", "postgres", "-D"]).arg(&data));
        let port = free_port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            dir.path().display(),
            dir.path().join("server.crt").display(),
            dir.path().join("server.key").display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).expect("conf");
        run(
            "pg_ctl start",
            as_server_user(&bin, "pg_ctl").arg("-D").arg(&data).arg("-l").arg(dir.path().join("log")).args(["-w", "start"]),
        );
        Self { dir, bin, port }
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin, "pg_ctl").arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "stop"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_verified_and_never_plaintext() {
    sqlx::any::install_default_drivers();
    let server = PrivateServer::start();
    let ca = server.ca();

    // verify-full with the CA: connects over TLS, and the store works over it.
    let verified = server.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let store = SqlStore::connect(&verified).await.expect("verify-full connects");
    assert!(store.tenants().await.expect("the store works over TLS").is_empty());
    let mut conn = sqlx::AnyConnection::connect(&verified).await.expect("connect");
    let row = sqlx::query("SELECT CAST(ssl AS TEXT) AS ssl, version AS v FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_ssl");
    let (ssl, version): (String, String) = (sqlx::Row::get(&row, "ssl"), sqlx::Row::get(&row, "v"));
    assert_eq!(ssl, "true", "the session is TLS");
    assert!(version.starts_with("TLSv1.2") || version.starts_with("TLSv1.3"), "{version}");
    drop(conn);
    drop(store);

    // Another CA, or a host the certificate does not name: refused.
    let other = tempfile::NamedTempFile::new().expect("other CA");
    std::fs::write(other.path(), certificates().0).expect("write");
    let wrong_ca = server.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", other.path().display()));
    assert!(SqlStore::connect(&wrong_ca).await.is_err(), "a certificate from another CA is refused");
    let wrong_host = server.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"));
    assert!(SqlStore::connect(&wrong_host).await.is_err(), "a host the certificate does not name is refused");

    // The server stops offering TLS: require is refused, never plaintext.
    let mut admin = sqlx::AnyConnection::connect(&verified).await.expect("admin");
    sqlx::query("ALTER SYSTEM SET ssl = off").execute(&mut admin).await.expect("ssl off");
    sqlx::query("SELECT pg_reload_conf()").fetch_one(&mut admin).await.expect("reload");
    drop(admin);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let required = server.url("localhost", "sslmode=require");
    match SqlStore::connect(&required).await {
        Ok(_) => panic!("sslmode=require connected to a server without TLS"),
        Err(e) => assert!(e.to_string().to_lowercase().contains("tls"), "{e}"),
    }
    assert!(SqlStore::connect(&server.url("localhost", "sslmode=disable")).await.is_ok(), "the server is up, in plaintext");
}
