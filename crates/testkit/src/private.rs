//! A Redis and a PostgreSQL cluster of a test's own, which the test may stop
//! and start (never the machine's shared servers); stopped and removed when
//! their guard drops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::process::free_port;

/// A Redis server on a free port, with no persistence: stopping it loses
/// every job in it, as a crash of a cache-only Redis would.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port; returns once it answers PING.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server (is it installed and on PATH?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "the private redis-server on port {} did not answer within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers(&self) -> bool {
        let ping = async {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            conn.write_all(b"PING\r\n").await?;
            let mut buf = [0u8; 7];
            conn.read_exact(&mut buf).await?;
            Ok::<bool, std::io::Error>(&buf == b"+PONG\r\n")
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), ping).await,
            Ok(Ok(true))
        )
    }

    /// Kills it (SIGKILL): every connection drops, every job in it is lost.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL");
        }
    }
}

/// A PostgreSQL tool: from `pg_config --bindir` when it is there, else
/// from PATH.
fn pg_tool(name: &str) -> PathBuf {
    static BINDIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bindir = BINDIR.get_or_init(|| {
        let out = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    bindir
        .as_deref()
        .map(|dir| dir.join(name))
        .filter(|tool| tool.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Where a private cluster lives; the tools run on it.
#[derive(Clone, Debug)]
struct ClusterSpec {
    port: u16,
    dir: PathBuf,
    /// PostgreSQL refuses to run as root: as root, the cluster belongs to,
    /// and runs as, `postgres`.
    as_postgres: bool,
}

impl ClusterSpec {
    fn data_dir(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Runs a PostgreSQL tool: Err with its output (and the server's log)
    /// when it fails.
    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = pg_tool(tool);
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| {
                format!(
                    "cannot run {}: {e} (is PostgreSQL installed?)",
                    program.display()
                )
            })?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{} {args:?} failed ({}):\n{}\n{}\n{log}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    fn init(&self) -> Result<(), String> {
        if self.as_postgres {
            chown_to_postgres(&self.dir)?;
        }
        let data = self.data_dir();
        let args = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-N",
            "-E",
            "UTF8",
        ];
        self.run("initdb", &args)
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.to_string_lossy()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let data = self.data_dir();
        let args = [
            "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "30", "start",
        ];
        self.run("pg_ctl", &args)
    }

    fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"],
        )
    }

    /// Runs `step` off the runtime (the tools block), panicking with
    /// PostgreSQL's own words if it fails.
    async fn blocking(&self, what: &str, step: fn(&ClusterSpec) -> Result<(), String>) {
        let spec = self.clone();
        let done = tokio::task::spawn_blocking(move || step(&spec))
            .await
            .expect("join");
        if let Err(e) = done {
            panic!("the private PostgreSQL cluster: {what}: {e}");
        }
    }
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let status = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown postgres {} failed", dir.display()))
    }
}

/// A PostgreSQL cluster of this test's own (initdb in a temporary
/// directory, on a port of its own).
pub struct PrivateCluster {
    spec: ClusterSpec,
}

impl PrivateCluster {
    /// initdb and start.
    pub async fn start() -> PrivateCluster {
        let dir = std::env::temp_dir().join(format!("hf-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        // From here on, Drop removes the directory whatever happens.
        let cluster = PrivateCluster {
            spec: ClusterSpec {
                port: free_port(),
                dir,
                as_postgres: running_as_root(),
            },
        };
        cluster.spec.blocking("initdb", ClusterSpec::init).await;
        cluster.start_again().await;
        cluster
    }

    /// A URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.spec.port
        )
    }

    /// Starts the cluster (again); returns once it accepts connections.
    pub async fn start_again(&self) {
        self.spec.blocking("start", ClusterSpec::start).await;
    }

    /// Stops it the hard way (`-m immediate`: connections dropped, no
    /// checkpoint, crash recovery on the next start), as a crash would.
    pub async fn stop(&self) {
        self.spec.blocking("stop", ClusterSpec::stop).await;
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.spec.dir.join("data").join("postmaster.pid").exists() {
            let _ = self.spec.stop();
        }
        let _ = std::fs::remove_dir_all(&self.spec.dir);
    }
}
