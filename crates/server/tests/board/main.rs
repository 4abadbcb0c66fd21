//! The availability board in a real headless Chromium: runs
//! `e2e/board.test.mjs` (Playwright) against this build's holdfast-server and
//! holdfast-worker, and fails, never skips, when what it needs is missing.
//! The script starts both binaries on a throw-away database and a private
//! Redis queue, and removes them at its end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than the script's own deadline (150 s), which cleans up first.
const TIMEOUT: Duration = Duration::from_secs(180);
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

#[test]
fn two_agents_see_each_others_holds_live_on_the_board_in_a_real_browser() {
    let root = repo_root();
    let chromium = std::env::var_os("HOLDFAST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "Chromium is missing at {}: {SETUP}",
        chromium.display()
    );
    assert!(
        root.join("e2e/node_modules/playwright-core/package.json")
            .is_file(),
        "e2e/node_modules has no playwright-core: {SETUP}"
    );
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node cannot be run ({e}): install Node.js 18+, then {SETUP}"));
    assert!(node.status.success(), "node --version failed: {SETUP}");

    let mut child = Command::new("node")
        .arg("e2e/board.test.mjs")
        .current_dir(&root)
        .env("HOLDFAST_SERVER_BIN", env!("CARGO_BIN_EXE_holdfast-server"))
        .env("HOLDFAST_WORKER_BIN", worker_bin())
        .env("HOLDFAST_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .spawn()
        .expect("node e2e/board.test.mjs starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the browser test's status") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            // The script's own deadline should have fired long before.
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser test failed ({status}); its output above says where"
    );
}
