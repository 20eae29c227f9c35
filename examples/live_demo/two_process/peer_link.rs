//! Process A's handle on process B: starts this same binary as `live_demo peer`, asks it one
//! line at a time (see `peer.rs` for the commands), and stops it. Every answer is awaited for a
//! bounded time, and the child is killed if this handle is dropped without `finish`.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::side::Served;
use crate::Cli;
use crate::demo::DemoResult;

/// The longest B may take to answer (its startup included) or to exit.
const ANSWER: Duration = Duration::from_secs(15);

/// A read of page 1 by B, as B reported it.
pub struct PeerRead {
    pub served: Served,
    pub elapsed: Duration,
    pub master_calls: u64,
    /// The watched client's visits, as B saw them.
    pub visits: String,
}

/// See the module docs.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// B's process id.
    pub pid: String,
}

impl Peer {
    /// Starts B with A's `--dir`, `--latency-ms` and `--debug`, on the same Redis namespace,
    /// and waits until it is ready.
    pub async fn spawn(cli: &Cli, redis_url: &str, namespace: &str) -> DemoResult<Peer> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--dir")
            .arg(&cli.dir)
            .args(["--latency-ms", &cli.latency_ms.to_string()])
            .args(cli.debug.then_some("--debug"))
            .args(["peer", "--redis-url", redis_url, "--namespace", namespace])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin for the peer")?;
        let stdout = child.stdout.take().ok_or("no stdout for the peer")?;
        let mut peer = Peer {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            pid: String::new(),
        };
        let ready = peer.answer().await?;
        let pid = ready
            .strip_prefix("ready ")
            .ok_or("the peer did not start")?;
        peer.pid = pid.to_owned();
        Ok(peer)
    }

    /// B reads page 1 and reports client `id`'s visits.
    pub async fn read(&mut self, id: &str) -> DemoResult<PeerRead> {
        let answer = self.ask(&format!("read {id}")).await?;
        let words: Vec<&str> = answer.split(' ').collect();
        let [served, micros, calls, visits] = words[..] else {
            return Err(format!("unexpected answer from the peer: {answer:?}").into());
        };
        Ok(PeerRead {
            served: Served::from_word(served).ok_or("unknown layer in the peer's answer")?,
            elapsed: Duration::from_micros(micros.parse()?),
            master_calls: calls.parse()?,
            visits: visits.to_owned(),
        })
    }

    /// B starts watching for its reader's next log entry.
    pub async fn watch(&mut self) -> DemoResult<()> {
        self.ask("watch").await.map(drop)
    }

    /// When B's reader applied that entry (wall clock), or `None` if it never came.
    pub async fn arrival(&mut self) -> DemoResult<Option<SystemTime>> {
        let answer = self.ask("arrival").await?;
        if answer == "none" {
            return Ok(None);
        }
        let nanos: u64 = answer.parse()?;
        Ok(Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)))
    }

    /// Closes B's stdin, which ends it, and checks that it exited cleanly.
    pub async fn finish(mut self) -> DemoResult<()> {
        drop(self.stdin);
        let status = tokio::time::timeout(ANSWER, self.child.wait())
            .await
            .map_err(|_| "the peer did not exit within 15 s")??;
        if !status.success() {
            return Err(format!("the peer exited with {status}").into());
        }
        Ok(())
    }

    async fn ask(&mut self, command: &str) -> DemoResult<String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.answer().await
    }

    async fn answer(&mut self) -> DemoResult<String> {
        let line = tokio::time::timeout(ANSWER, self.stdout.next_line())
            .await
            .map_err(|_| "the peer did not answer within 15 s")??;
        line.ok_or_else(|| "the peer exited (see its error above)".into())
    }
}
