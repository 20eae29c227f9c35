//! A throwaway `redis-server` per test: loopback only, a free port, no persistence, its own
//! folder; killed (SIGKILL) and reaped when dropped.
//!
//! The binary is `$VLIVE_REDIS_SERVER` or `redis-server` on the PATH. When it is missing the
//! test FAILS (never skips): `.ci/run` installs it with apt-get, and a green run must mean the
//! Redis tests ran.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh server may take to answer PING before the test gives up.
const STARTUP: Duration = Duration::from_secs(20);

/// A running `redis-server`; see the module docs.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// A fresh server with default settings.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// A fresh server with extra `--name value` arguments (e.g. `["--maxmemory", "2mb"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        // A port picked free may be taken before the server binds it: try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start; see {}", server.log().display());
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILLs the server and waits for it to go: nothing is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOPs the server: it keeps its sockets (connections open, the kernel still accepts
    /// new ones) but answers nothing, as a hung server does, until the returned guard is dropped
    /// (SIGCONT). The guard resumes it even when a test fails; a server dropped while stopped is
    /// killed as usual.
    pub fn pause(&self) -> Paused<'_> {
        let pid = self.child.as_ref().expect("the server is running").id();
        let sent = signal(pid, "STOP");
        assert!(sent, "kill -s STOP {pid} failed");
        Paused(self)
    }

    /// Starts a new server on the same port (empty: there is no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STARTUP;
        // The port can linger for a moment after the kill.
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one command on a fresh connection and returns its reply, or the server's error.
    pub async fn admin(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut connection).await
    }

    /// The last `lines` lines of the server's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns on `self.port`; `true` once it answers PING, `false` if it exited first.
    fn spawn(&mut self) -> bool {
        let binary = std::env::var("VLIVE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut command = Command::new(&binary);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {binary:?} ({e}). The Redis tests need redis-server: \
                 `apt-get install redis-server` (.ci/run does this), or set VLIVE_REDIS_SERVER"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                eprintln!("redis-server on port {} exited: {status}", self.port);
                return false;
            }
            if pong(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not answer PING; see {}",
            self.log().display()
        );
    }
}

/// A stopped server; dropping this resumes it (SIGCONT).
#[must_use = "the server resumes when this is dropped"]
pub struct Paused<'a>(&'a RedisServer);

impl Paused<'_> {
    /// Resumes the server now.
    pub fn resume(self) {}
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        if let Some(child) = &self.0.child
            && !signal(child.id(), "CONT")
        {
            eprintln!("kill -s CONT {} failed", child.id());
        }
    }
}

/// Sends signal `name` to `pid` with kill(1); whether it was delivered.
fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An integer reply, or a panic naming what came instead.
pub fn int(reply: redis::Value) -> i64 {
    match reply {
        redis::Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the server answers a PING: `+PONG`, or `-NOAUTH` when it wants a password.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 1];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && (reply[0] == b'+' || reply[0] == b'-')
}
