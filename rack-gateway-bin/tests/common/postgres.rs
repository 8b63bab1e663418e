//! A PostgreSQL cluster of the test's own, which the test may stop and start again.

use std::path::PathBuf;
use std::process::Command;

/// A throwaway cluster on 127.0.0.1, removed on drop.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    pg_ctl: PathBuf,
}

fn find(name: &str) -> PathBuf {
    let candidates = ["/usr/local/bin".to_owned()].into_iter().chain(
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").display().to_string()),
    );
    for dir in candidates {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} not found: install the PostgreSQL server (apt-get install postgresql)");
}

fn as_owner(program: &PathBuf) -> Command {
    // initdb refuses to run as root; the cluster then belongs to `postgres`.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl TempPostgres {
    /// Creates and starts a cluster.
    pub fn start() -> TempPostgres {
        let dir = tempfile::Builder::new()
            .prefix("rgw-pg-test")
            .tempdir()
            .expect("tempdir");
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let status = as_owner(&find("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let cluster = TempPostgres {
            dir,
            port: free_port(),
            pg_ctl: find("pg_ctl"),
        };
        cluster.resume();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let status = as_owner(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "pg_ctl start failed");
    }

    /// Stops it (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        let status = as_owner(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl stop");
        assert!(status.success(), "pg_ctl stop failed");
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = as_owner(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
