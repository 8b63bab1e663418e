//! Running `rack-gateway` as a child process and reading what it prints.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_rack-gateway")
}

/// A child process that is killed when dropped, with its output lines on a channel.
pub struct Running {
    pub child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Starts `rack-gateway ARGS` with exactly `env` (plus PATH and HOME).
    pub fn start(args: &[&str], env: &HashMap<String, String>) -> Running {
        Running::start_limited(args, env, None)
    }

    /// Like [`Running::start`], with the open-file limit lowered to `fd_limit` when given
    /// (through the shell's `ulimit`, so that the test itself needs no unsafe code).
    pub fn start_limited(
        args: &[&str],
        env: &HashMap<String, String>,
        fd_limit: Option<u64>,
    ) -> Running {
        let mut command = match fd_limit {
            None => Command::new(binary()),
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(binary());
                shell
            }
        };
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn rack-gateway");
        let (sender, lines) = mpsc::unbounded_channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 60 s) for a line containing `needle` and returns it.
    pub async fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no line containing {needle:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                })
                .unwrap_or_else(|| {
                    panic!(
                        "process ended before printing {needle:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Collects what was printed so far without waiting.
    pub fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Resident memory of the process in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// A `rack-gateway dev` instance on a free port with its own data directory.
pub struct DevGateway {
    pub process: Running,
    pub base: String,
    pub admin_token: String,
    pub viewer_token: String,
    pub data_dir: tempfile::TempDir,
}

impl DevGateway {
    pub async fn start() -> DevGateway {
        DevGateway::start_with(&HashMap::new(), None).await
    }

    /// A dev gateway with extra environment and, when given, a lower open-file limit.
    pub async fn start_with(env: &HashMap<String, String>, fd_limit: Option<u64>) -> DevGateway {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let dir = data_dir.path().join("store");
        let mut process = Running::start_limited(
            &[
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir.to_str().expect("utf-8 path"),
            ],
            env,
            fd_limit,
        );
        let gateway_line = process.wait_for_line("gateway:").await;
        let base = gateway_line
            .split_whitespace()
            .last()
            .expect("url")
            .to_owned();
        let admin_token = last_word(&process.wait_for_line("admin token:").await);
        let viewer_token = last_word(&process.wait_for_line("viewer token:").await);
        DevGateway {
            process,
            base,
            admin_token,
            viewer_token,
            data_dir,
        }
    }

    pub fn proxy(&self, path: &str) -> String {
        format!("{}/api/v1/rack-proxy{path}", self.base)
    }
}

pub fn last_word(line: &str) -> String {
    line.split_whitespace().last().expect("word").to_owned()
}

/// Runs `rack-gateway ARGS` to completion with `env`; returns (exit code, stdout, stderr).
pub async fn run_command(args: &[&str], env: &HashMap<String, String>) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run rack-gateway");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
