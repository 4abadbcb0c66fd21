//! `import-properties`: the command-line twin of the `importProperties`
//! mutation, for files of any size. The file streams through the domain's
//! CSV reader (the same row rules as the mutation) a batch at a time, each
//! batch one multi-row statement, all in one transaction: all or none.
//!
//! PostgreSQL ends a session that sits idle in a transaction for 5 s
//! (`idle_in_transaction_session_timeout`, set on every connection): so a
//! batch is read and checked first, then sent, and the next is read while
//! nothing else waits; reading a batch of a local file takes milliseconds,
//! and the transaction is never idle longer than that.

use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use holdfast_domain::ProjectId;
use holdfast_domain::inventory::{CsvRows, IMPORT_BATCH_ROWS, Import, Imported};
use sea_orm::DatabaseConnection;

/// What the command prints on stdout.
#[derive(serde::Serialize)]
pub struct Printed {
    pub created: u64,
    pub updated: u64,
}

/// Imports the CSV file at `path` into the project `project`, reporting
/// progress on stderr; nothing is imported if any row is refused.
pub async fn import_file(
    db: &DatabaseConnection,
    project: ProjectId,
    path: &Path,
) -> anyhow::Result<Printed> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut rows = CsvRows::new(BufReader::with_capacity(1 << 20, file))?;
    let mut progress = Progress::new(size);
    let started = Instant::now();

    let import = Import::begin(db, project, None).await?;
    let mut imported = Imported::default();
    loop {
        let batch = rows.next_batch(IMPORT_BATCH_ROWS)?;
        if batch.is_empty() {
            break;
        }
        imported += import.batch(&batch).await?;
        progress.show(rows.rows(), rows.bytes());
    }
    import.commit().await?;
    progress.done(rows.rows(), started);
    tracing::info!(
        project.id = %project,
        rows = rows.rows(),
        created = imported.created,
        updated = imported.updated,
        "imported plots"
    );
    Ok(Printed {
        created: imported.created,
        updated: imported.updated,
    })
}

/// The progress line on stderr: rewritten in place on a terminal, a line
/// per batch otherwise (a log keeps them all).
struct Progress {
    size: u64,
    terminal: bool,
}

impl Progress {
    fn new(size: u64) -> Self {
        Self {
            size,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, rows: u64, bytes: u64) {
        let percent = (bytes * 100).checked_div(self.size).unwrap_or(100).min(100);
        let filled = usize::try_from(percent / 5).unwrap_or(20);
        let bar = format!("[{}{}]", "#".repeat(filled), " ".repeat(20 - filled));
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{bar} {percent:>3}%  {rows} rows checked and sent");
        } else {
            let _ = writeln!(err, "{bar} {percent:>3}%  {rows} rows checked and sent");
        }
        let _ = err.flush();
    }

    fn done(&self, rows: u64, started: Instant) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = writeln!(err);
        }
        let _ = writeln!(
            err,
            "imported {rows} rows in {:.1} s, all in one transaction",
            started.elapsed().as_secs_f64()
        );
    }
}
