//! PostgreSQL over TLS, for every `sslmode`: a throwaway cluster of this test's own (not the
//! `DATABASE_URL` one, which has no TLS) with `ssl=on`, a CA and a server certificate for
//! `localhost`/127.0.0.1 made here, SCRAM passwords, and `hostssl` lines only in pg_hba.conf, so
//! that any connection that succeeds is encrypted and a plain one is refused.
//!
//! Needs the PostgreSQL server binaries (initdb, pg_ctl). As root the cluster runs as the
//! `postgres` user, since initdb refuses root.
#![cfg(feature = "postgres")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rack_gateway_core::identity::NewUser;
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::{self, Store, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The `postgres` user's password; no error message may contain it.
const PASSWORD: &str = "tls-test-Pw-9vQ2xK";

/// A TLS-only cluster on 127.0.0.1; stopped and removed on drop, whatever the test did.
struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
    pg_ctl: PathBuf,
    running: bool,
}

/// The server binary `name`, or a one-line failure saying what to install.
fn find(name: &str) -> PathBuf {
    let mut dirs = vec![PathBuf::from("/usr/local/bin")];
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    versions.sort();
    // Newest major version first.
    dirs.extend(versions.into_iter().rev());
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (looked in /usr/local/bin and /usr/lib/postgresql/*/bin): \
                 install postgresql (apt-get install postgresql)"
            )
        })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout == b"0\n")
        .unwrap_or(false)
}

/// Runs `program` as the cluster owner: `postgres` when we are root (initdb refuses root).
fn as_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A CA certificate named `name`.
fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}

impl TlsCluster {
    /// Makes the certificates, creates the cluster and starts it.
    fn start() -> TlsCluster {
        let initdb = find("initdb");
        let pg_ctl = find("pg_ctl");
        let root = running_as_root();
        if root {
            let known = Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            assert!(
                known,
                "running as root needs a 'postgres' user to own the test cluster"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("rgw-pg-tls-test")
            .tempdir()
            .expect("tempdir");
        let path = dir.path();

        let ca = make_ca("rack-gateway test CA");
        let other_ca = make_ca("some other CA");
        let server_key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &ca).expect("server cert");
        write(&path.join("ca.pem"), &ca.pem());
        write(&path.join("other-ca.pem"), &other_ca.pem());
        write(&path.join("server.pem"), &server_cert.pem());
        write(&path.join("server.key"), &server_key.serialize_pem());
        write(&path.join("pwfile"), &format!("{PASSWORD}\n"));
        {
            use std::os::unix::fs::PermissionsExt;
            // PostgreSQL refuses a private key that others can read.
            std::fs::set_permissions(
                path.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod server.key");
        }
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(path)
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown of the test cluster directory failed"
            );
        }

        let data = path.join("data");
        let output = as_owner(&initdb)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", path.join("pwfile").display()))
            .output()
            .expect("initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // TLS or nothing over TCP; the local socket (trust) is for the test's own checks.
        write(
            &data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n",
        );

        let mut cluster = TlsCluster {
            dir,
            port: 0,
            pg_ctl,
            running: false,
        };
        for _ in 0..3 {
            cluster.port = free_port();
            if cluster.try_start() {
                cluster.running = true;
                return cluster;
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        panic!("the TLS test cluster did not start:\n{log}");
    }

    fn try_start(&self) -> bool {
        let path = self.dir.path();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on \
             -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key",
            port = self.port,
            dir = path.display(),
        );
        as_owner(&self.pg_ctl)
            .arg("-D")
            .arg(path.join("data"))
            .args(["-o", &options, "-l"])
            .arg(path.join("server.log"))
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A URL for `host` with the password, naming the connections `application_name`.
    fn url(&self, host: &str, application_name: &str, tls: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{port}/postgres?application_name={application_name}&{tls}",
            port = self.port
        )
    }

    /// How many connections named `application_name` there are, and whether all use TLS, as
    /// the server sees them (asked over the local socket).
    async fn tls_sessions(&self, application_name: &str) -> (i64, Option<bool>) {
        let admin = format!(
            "host='{}' port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("admin connection over the local socket");
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
                &[&application_name],
            )
            .await
            .expect("pg_stat_ssl query");
        (row.get(0), row.get(1))
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = as_owner(&self.pg_ctl)
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The TempDir removes the directory after this.
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    store::open(Some(url), Path::new("unused-by-postgres"), 2).await
}

/// Opens, migrates and uses the store at `url`; then checks, server side, that every connection
/// it holds (pool and identity feed) is encrypted.
async fn works_over_tls(cluster: &TlsCluster, url: &str, application_name: &str) {
    let store = match open(url).await {
        Ok(store) => store,
        Err(error) => panic!("{application_name}: cannot open the store: {error}"),
    };
    store.migrate().await.expect("migrate");
    let email = format!("{application_name}@example.com");
    store
        .insert_user(&NewUser {
            email: email.clone(),
            name: "TLS".into(),
            roles: vec![Role::Viewer],
        })
        .await
        .expect("insert_user");
    let found = store.user_by_email(&email).await.expect("user_by_email");
    assert_eq!(found.map(|user| user.email), Some(email));
    let _watch = store.watch_identity().await.expect("identity feed");
    let (connections, all_tls) = cluster.tls_sessions(application_name).await;
    assert!(
        connections >= 2,
        "{application_name}: {connections} connections"
    );
    assert_eq!(
        all_tls,
        Some(true),
        "{application_name}: a connection without TLS"
    );
}

/// Opening the store at `url` fails; returns the error text, checked to hold no password.
async fn refused(url: &str, case: &str) -> String {
    match open(url).await {
        Ok(_) => panic!("{case}: connected, but should have been refused"),
        Err(error) => {
            let text = error.to_string();
            assert!(!text.contains(PASSWORD), "{case}: password in {text}");
            assert!(
                !format!("{error:?}").contains(PASSWORD),
                "{case}: password in {error:?}"
            );
            text
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_connects_with_each_sslmode_as_libpq_would() {
    let cluster = TlsCluster::start();
    let ca = cluster.file("ca.pem");
    let other_ca = cluster.file("other-ca.pem");

    // require: encrypted, certificate not checked (our CA is in no trust store here).
    works_over_tls(
        &cluster,
        &cluster.url("127.0.0.1", "rgw_require", "sslmode=require"),
        "rgw_require",
    )
    .await;

    // No sslmode: libpq's default, prefer, which takes TLS when the server offers it.
    works_over_tls(
        &cluster,
        &cluster.url("127.0.0.1", "rgw_default", "connect_timeout=5"),
        "rgw_default",
    )
    .await;

    // verify-full against the right CA, by the name in the certificate.
    let tls = format!("sslmode=verify-full&sslrootcert={ca}");
    works_over_tls(
        &cluster,
        &cluster.url("localhost", "rgw_verify_full", &tls),
        "rgw_verify_full",
    )
    .await;

    // verify-ca checks the chain only: a host name the certificate does not carry is fine
    // (hostaddr says where to connect, host is the name checked).
    let tls = format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}");
    works_over_tls(
        &cluster,
        &cluster.url("db.invalid", "rgw_verify_ca", &tls),
        "rgw_verify_ca",
    )
    .await;

    // verify-full with a CA that did not issue the server certificate.
    let tls = format!("sslmode=verify-full&sslrootcert={other_ca}");
    let text = refused(&cluster.url("localhost", "rgw_wrong_ca", &tls), "wrong CA").await;
    assert!(
        text.contains("TLS") && text.contains("not trusted"),
        "wrong CA: {text}"
    );

    // verify-full to a name the certificate does not carry.
    let tls = format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}");
    let text = refused(
        &cluster.url("db.invalid", "rgw_wrong_name", &tls),
        "wrong name",
    )
    .await;
    assert!(
        text.contains("TLS") && text.contains("does not name the host"),
        "wrong name: {text}"
    );

    // As in libpq, an explicit sslrootcert makes require check the chain.
    let tls = format!("sslmode=require&sslrootcert={other_ca}");
    let text = refused(
        &cluster.url("127.0.0.1", "rgw_require_ca", &tls),
        "require + wrong CA",
    )
    .await;
    assert!(
        text.contains("TLS") && text.contains("not trusted"),
        "require + wrong CA: {text}"
    );

    // verify-ca without sslrootcert trusts the system roots only, and our CA is not one.
    let text = refused(
        &cluster.url("127.0.0.1", "rgw_system", "sslmode=verify-ca"),
        "system roots",
    )
    .await;
    assert!(
        text.contains("TLS") || text.contains("sslrootcert"),
        "system roots: {text}"
    );

    // Without TLS the hostssl-only server refuses the connection.
    let text = refused(
        &cluster.url("127.0.0.1", "rgw_disable", "sslmode=disable"),
        "disable",
    )
    .await;
    assert!(text.contains("pg_hba.conf"), "disable: {text}");

    // An sslmode libpq does not know is a configuration error, before any connection.
    let text = refused(
        &cluster.url("127.0.0.1", "rgw_unknown", "sslmode=verify_full"),
        "unknown mode",
    )
    .await;
    assert!(
        text.contains("DATABASE_URL sslmode"),
        "unknown mode: {text}"
    );
    let tls = format!(
        "sslmode=verify-full&sslrootcert={}",
        cluster.file("missing.pem")
    );
    let text = refused(
        &cluster.url("localhost", "rgw_missing_ca", &tls),
        "missing sslrootcert",
    )
    .await;
    assert!(
        text.contains("DATABASE_URL sslrootcert"),
        "missing sslrootcert: {text}"
    );
}
