//! The Node tests of `e2e/`, against this build's holdfast-server and
//! holdfast-worker: the availability board and GraphiQL in a real headless
//! Chromium (Playwright), and introspection as graphql-js runs it. Each fails,
//! never skips, when what it needs is missing. The scripts start the
//! binaries on a throw-away database and a private Redis queue, and remove
//! them at their end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETUP: &str =
    "run scripts/e2e-setup.sh (installs Debian's chromium and `npm ci --prefix e2e`)";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// `holdfast-worker` lives in another package; Cargo builds it into the same
/// target directory as this test's executable (`.../target/<profile>/deps/x`).
fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .join("holdfast-worker");
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build -p holdfast-worker` (or `cargo nextest run --workspace`, which builds it)",
        bin.display()
    );
    bin
}

/// One script of `e2e/` and what it needs.
struct NodeTest {
    script: &'static str,
    /// Longer than the script's own deadline, which cleans up first.
    timeout: Duration,
    chromium: bool,
    worker: bool,
}

impl NodeTest {
    /// Runs `node e2e/<script>`; fails unless it passes within the timeout.
    fn run(self) {
        let NodeTest {
            script,
            timeout,
            chromium,
            worker,
        } = self;
        let root = repo_root();
        let mut command = Command::new("node");
        command
            .arg(Path::new("e2e").join(script))
            .current_dir(&root)
            .env("HOLDFAST_SERVER_BIN", env!("CARGO_BIN_EXE_holdfast-server"))
            .stdin(Stdio::null());
        if chromium {
            let chromium = std::env::var_os("HOLDFAST_CHROMIUM")
                .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
            assert!(
                chromium.is_file(),
                "Chromium is missing at {}: {SETUP}",
                chromium.display()
            );
            command.env("HOLDFAST_CHROMIUM", &chromium);
        }
        if worker {
            command.env("HOLDFAST_WORKER_BIN", worker_bin());
        }
        for package in ["playwright-core", "graphql"] {
            assert!(
                root.join("e2e/node_modules")
                    .join(package)
                    .join("package.json")
                    .is_file(),
                "e2e/node_modules has no {package}: {SETUP}"
            );
        }
        let node = Command::new("node")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!("node cannot be run ({e}): install Node.js 18+, then {SETUP}")
            });
        assert!(node.status.success(), "node --version failed: {SETUP}");

        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("node e2e/{script} does not start: {e}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("the Node test's status") {
                break status;
            }
            if started.elapsed() > timeout {
                // The script's own deadline should have fired long before.
                let _ = child.kill();
                let _ = child.wait();
                panic!("e2e/{script} did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            status.success(),
            "e2e/{script} failed ({status}); its output above says where"
        );
    }
}

#[test]
fn agents_and_a_manager_see_holds_buyers_warnings_and_lines_live_on_the_board_in_a_browser() {
    NodeTest {
        script: "board.test.mjs",
        // Its own deadline is 150 s.
        timeout: Duration::from_secs(180),
        chromium: true,
        worker: true,
    }
    .run();
}

#[test]
fn graphiql_works_offline_with_a_token_link_a_query_and_a_live_subscription() {
    NodeTest {
        script: "graphiql.test.mjs",
        // Its own deadline is 120 s.
        timeout: Duration::from_secs(150),
        chromium: true,
        worker: false,
    }
    .run();
}

#[test]
fn graphql_js_introspection_is_answered_in_full_and_builds_the_committed_schema() {
    NodeTest {
        script: "introspection.test.mjs",
        // Its own deadline is 60 s.
        timeout: Duration::from_secs(90),
        chromium: false,
        worker: false,
    }
    .run();
}
