//! A throwaway Postgres per test: `initdb` in a temp dir, `postgres` on a free loopback port
//! with trust authentication and fsync off (a commit survives a kill of the server, not of the
//! machine: a test database), killed and removed when dropped.
//!
//! The binaries are `$VLIVE_PG_BIN/{initdb,postgres}` or the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package; .ci/run installs it).
//! Postgres refuses to run as root, so as root (CI) they run as the `postgres` user. Missing,
//! the test FAILS: a green run must mean the Postgres tests ran.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Postgres; see the module docs.
pub struct PostgresServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
}

impl PostgresServer {
    /// A fresh cluster with one database, `postgres`, owned by the user `postgres`.
    pub fn start() -> PostgresServer {
        let bin = binaries();
        let dir = tempfile::tempdir().unwrap();
        let user = if rustix::process::geteuid().is_root() {
            Some(postgres_user())
        } else {
            None
        };
        if let Some((uid, gid)) = user {
            chown(dir.path(), uid, gid);
        }
        let mut server = PostgresServer {
            child: None,
            port: 0,
            dir,
            bin,
            user,
        };
        server.init();
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("postgres did not start; see {}", server.log().display());
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server: an immediate shutdown (SIGQUIT), Postgres's own crash, in which the
    /// postmaster kills its backends and exits only once they are gone. Returns then. (A
    /// SIGKILL of the postmaster alone leaves its backends running until they notice, answering
    /// the connections they serve: a test could read from a server it had killed.)
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let postmaster = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(postmaster, rustix::process::Signal::QUIT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("postgres did not shut down within 30 s of a SIGQUIT");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "postgres did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A connection of the test's own, for setup and out-of-band changes.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to the test postgres: {e}"));
        tokio::spawn(connection);
        client
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command.stdin(Stdio::null());
        command
    }

    fn init(&self) {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale=C"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb ({e})"));
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Spawns on `self.port`; `true` once it accepts connections, `false` if it exited first.
    fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.log()).unwrap();
        if let Some((uid, gid)) = self.user {
            chown(&self.log(), uid, gid);
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run postgres ({e})"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                eprintln!("postgres on port {} exited: {status}", self.port);
                return false;
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "postgres did not accept connections; see {}",
            self.log().display()
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory of `initdb` and `postgres`.
fn binaries() -> PathBuf {
    if let Ok(bin) = std::env::var("VLIVE_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no Postgres under /usr/lib/postgresql/<version>/bin: the Postgres tests need it \
             (`apt-get install postgresql`; .ci/run does this), or set VLIVE_PG_BIN"
        )
    })
}

/// The uid and gid of the `postgres` user (Debian's package creates it).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
        })
        .expect("running as root needs the `postgres` user (Debian's postgresql package makes it)")
}

fn chown(path: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
