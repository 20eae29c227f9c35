//! A throwaway `redis-server` for the two-process demo when no `--redis-url` is given: loopback
//! only, a free port, no persistence, a temporary folder; killed when dropped, so a failed run
//! leaves no server behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::demo::DemoResult;

/// How long a fresh server may take to answer PING.
const STARTUP: Duration = Duration::from_secs(10);

/// A running server; see the module docs.
pub struct RedisServer {
    child: Child,
    port: u16,
    /// Holds the server's `--dir` (it writes nothing there without persistence, but needs one).
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `$VLIVE_REDIS_SERVER` or `redis-server` and waits until it answers PING.
    pub fn start() -> DemoResult<RedisServer> {
        // A port found free may be taken before the server binds it: try a few.
        for _ in 0..3 {
            if let Some(server) = Self::try_start(free_port()?)? {
                return Ok(server);
            }
        }
        Err("redis-server exited at startup three times (ports taken?)".into())
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server on `port`, or `None` if it exited before answering.
    fn try_start(port: u16) -> DemoResult<Option<RedisServer>> {
        let dir = tempfile::tempdir()?;
        let binary = std::env::var("VLIVE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {binary:?} ({e}): install redis-server (apt-get install \
                     redis-server), set VLIVE_REDIS_SERVER, or pass --redis-url"
                )
            })?;
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        Ok(server.wait_for_pong()?.then_some(server))
    }

    /// `true` once the server answers PING, `false` if it exited first.
    fn wait_for_pong(&mut self) -> DemoResult<bool> {
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(false);
            }
            if pong(self.port) {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "redis-server did not answer PING on port {} within 10 s",
            self.port
        )
        .into())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL is enough: there is nothing to save.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> DemoResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether the server answers a PING (any reply will do: it is up).
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 1];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok()
}
