//! The real binaries as child processes of a test: started with their output
//! kept (printed too with `TEST_LOG`), found at the address they log, and
//! stopped with a signal; killed when their guard drops, whatever happens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// A binary of the workspace, built into the same target directory as the
/// running test (`target/<profile>/deps/<test>`): `holdfast-worker` for the
/// server's tests, say, which Cargo builds only with the workspace.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build --bin {name}` (or `cargo nextest run --workspace`, which builds it)",
        bin.display()
    );
    bin
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Every line a process wrote to stdout or stderr, in order.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn push(&self, line: String) {
        if std::env::var_os("TEST_LOG").is_some() {
            println!("{line}");
        }
        self.0.lock().expect("logs").push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("logs").clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn assert_no_panic(&self, who: &str) {
        let panics: Vec<String> = self
            .lines()
            .into_iter()
            .filter(|l| l.contains("panicked"))
            .collect();
        assert!(panics.is_empty(), "{who} panicked: {panics:#?}");
    }

    /// The first line (written so far, or within `within`) that `want`
    /// accepts.
    pub async fn find(&self, within: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut seen = 0;
        loop {
            let lines = self.lines();
            if let Some(line) = lines[seen..].iter().find(|l| want(l)) {
                return Some(line.clone());
            }
            seen = lines.len();
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The address a holdfast binary logs when it listens: the `addr` field of
/// a JSON line, or `listening on http://<addr>/` in a pretty one.
fn logged_addr(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        let addr = v.get("addr").or_else(|| v.get("fields")?.get("addr"))?;
        return addr.as_str()?.parse().ok();
    }
    line.split("listening on http://")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

type AddrSender = Arc<Mutex<Option<oneshot::Sender<SocketAddr>>>>;

fn drain(stream: impl AsyncRead + Unpin + Send + 'static, logs: Logs, found: AddrSender) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = logged_addr(&line)
                && let Some(tx) = found.lock().expect("found").take()
            {
                let _ = tx.send(addr);
            }
            logs.push(line);
        }
    });
}

/// A running binary; SIGKILLed when dropped.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Logs,
}

impl Process {
    /// Starts `cmd`, keeps its output, and waits (20 s at most) for the
    /// address it logs.
    pub async fn start(mut cmd: Command, what: &str) -> Process {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        let logs = Logs::default();
        let (tx, rx) = oneshot::channel();
        let found = Arc::new(Mutex::new(Some(tx)));
        let stdout = child.stdout.take().expect("stdout");
        drain(stdout, logs.clone(), found.clone());
        drain(child.stderr.take().expect("stderr"), logs.clone(), found);
        let addr = match tokio::time::timeout(Duration::from_secs(20), rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!(
                "{what} did not log its address within 20 s: {:#?}",
                logs.lines()
            ),
        };
        Process { child, addr, logs }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Sends `signal` (`TERM`, `STOP`, ...).
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .await
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits for the exit status, `within` at most.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("exits in time")
            .expect("wait")
    }

    /// SIGTERM (a graceful stop); the exit status, within 20 s.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM").await;
        self.wait(Duration::from_secs(20)).await
    }
}

/// What a test points the binaries at.
#[derive(Clone, Debug)]
pub struct Target {
    pub database_url: String,
    pub redis_url: String,
    pub queue: String,
}

impl Target {
    /// `holdfast-server serve` with only these settings (nothing inherited):
    /// JSON logs, a free port, the tests' secret, a pool of 10 connections
    /// (the machine's PostgreSQL is shared by every test running at once),
    /// and `env` on top.
    pub async fn server(&self, env: &[(&str, &str)]) -> Process {
        let mut cmd = Command::new(binary("holdfast-server"));
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("HOLDFAST_QUEUE", &self.queue)
            .env("HOLDFAST_JWT_SECRET", crate::TEST_SECRET)
            .env("HOLDFAST_LISTEN", "127.0.0.1:0")
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("HOLDFAST_DB_MAX_CONNECTIONS", "10")
            .envs(env.iter().copied());
        Process::start(cmd, "holdfast-server").await
    }

    /// `holdfast-worker` with this sweep schedule (`off` for none) and
    /// `extra` flags, nothing inherited: JSON logs, a free port, 6 jobs at
    /// once (a pool of 10 connections), 10 s to finish them on SIGTERM.
    pub async fn worker(&self, sweep: &str, extra: &[&str]) -> Process {
        let mut cmd = Command::new(binary("holdfast-worker"));
        cmd.env_clear()
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .args(["--database-url", &self.database_url])
            .args(["--redis-url", &self.redis_url])
            .args(["--queue", &self.queue])
            .args(["--sweep-schedule", sweep])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--shutdown-timeout", "10s"])
            .args(["--worker-concurrency", "6"])
            .args(extra);
        Process::start(cmd, "holdfast-worker").await
    }
}
