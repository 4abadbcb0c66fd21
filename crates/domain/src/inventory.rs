//! A workspace's inventory without SQL: a plot's code and price, taking a
//! plot off the market (WITHDRAWN) and back, and importing plots from a
//! spreadsheet (CSV text: a header row with `code` and optionally `price`).
//! The rules of a CSV row (parsing, validation) live here once, for the
//! `importProperties` mutation and the `import-properties` command alike.

use std::collections::HashMap;
use std::io::Read;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use tracing::instrument;

use crate::directory::require_manager;
use crate::entities::property;
use crate::error::{DomainError, DomainResult, constraint};
use crate::ids::{ProjectId, PropertyId, WorkspaceId};
use crate::input::{MAX_CODE_CHARS, check_text};
use crate::reads;
use crate::reservations::{Actor, Policy};
use crate::rules::{Verdict, Written, ask, count, secs};
use crate::tally::Bulk;

/// The most digits a price may have before its point: PostgreSQL's
/// `numeric(14, 2)` keeps 14 digits, 2 of them decimals.
pub const MAX_PRICE_DIGITS: usize = 12;
/// The most decimals a price may have.
pub const MAX_PRICE_DECIMALS: usize = 2;

/// A price: a non-negative decimal with at most 2 decimals and 12 digits
/// before the point, such as `12500000.00`.
///
/// It stays the text it was given, checked digit by digit, and PostgreSQL
/// casts that text to `numeric`: holdfast never computes with prices, so a
/// decimal type in Rust would only be one more conversion, and text cannot
/// pass through a float on its way (a JSON number or an `f64` would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price(String);

/// Why a text is not a price; it shows the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{0:?} is not a decimal (write it with digits and a point, such as 12500000.00)")]
    NotDecimal(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} has more than {MAX_PRICE_DECIMALS} decimals")]
    TooManyDecimals(String),
    #[error("{0:?} is too large (at most {MAX_PRICE_DIGITS} digits before the point)")]
    TooLarge(String),
}

impl Price {
    /// Digits, optionally a point and one or two more digits: nothing else
    /// (no sign, no exponent, no thousands separator, no spaces).
    pub fn parse(text: &str) -> Result<Price, PriceError> {
        let (whole, decimals) = match text.split_once('.') {
            Some((whole, decimals)) => (whole, Some(decimals)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || decimals.is_some_and(|d| !digits(d)) {
            let negative = text
                .strip_prefix('-')
                .is_some_and(|rest| Price::parse(rest).is_ok());
            return Err(if negative {
                PriceError::Negative(text.to_owned())
            } else {
                PriceError::NotDecimal(text.to_owned())
            });
        }
        if decimals.is_some_and(|d| d.len() > MAX_PRICE_DECIMALS) {
            return Err(PriceError::TooManyDecimals(text.to_owned()));
        }
        if whole.trim_start_matches('0').len() > MAX_PRICE_DIGITS {
            return Err(PriceError::TooLarge(text.to_owned()));
        }
        Ok(Price(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A change to a plot: a new code, a new price (`Some(None)` takes the
/// price away), or both.
#[derive(Debug, Clone, Default)]
pub struct PropertyUpdate {
    pub code: Option<String>,
    pub price: Option<Option<Price>>,
}

const CODE_UNIQUE: &str = "property_code_unique_per_project";
const CODE_UNIQUE_WITHOUT_CASE: &str = "property_code_unique_per_project_ci";

/// Maps a violation of either unique index on codes (codes are unique per
/// project, compared without regard to case) to `clash`; any other error
/// maps as usual.
pub(crate) fn on_code_clash(err: DbErr, clash: impl FnOnce() -> DomainError) -> DomainError {
    match constraint(&err).as_deref() {
        Some(CODE_UNIQUE | CODE_UNIQUE_WITHOUT_CASE) => clash(),
        _ => err.into(),
    }
}

/// The refusal of a code another plot of the project has.
fn code_taken(code: &str) -> DomainError {
    DomainError::InvalidInput(format!(
        "the code {code:?} is already used in this project (codes are compared without regard to case)"
    ))
}

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Changes a plot's code or price: managers and admins. A held plot's hold
/// keeps the price it began with.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, property.id = %id))]
pub async fn update_property(
    db: &DatabaseConnection,
    actor: &Actor,
    id: PropertyId,
    update: &PropertyUpdate,
) -> Written<property::Model> {
    update_property_now(db, actor, id, update).await.into()
}

async fn update_property_now(
    db: &DatabaseConnection,
    actor: &Actor,
    id: PropertyId,
    update: &PropertyUpdate,
) -> DomainResult<property::Model> {
    require_manager(actor)?;
    if let Some(code) = &update.code {
        check_text("a code", code, MAX_CODE_CHARS)?;
    }
    let txn = crate::db::begin(db).await?;
    let row = txn
        .query_one_raw(statement(
            "SELECT project_id, code FROM property WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            [id.0.into(), actor.workspace_id.0.into()],
        ))
        .await?
        .ok_or(DomainError::NotFound("property"))?;
    let project: uuid::Uuid = row.try_get("", "project_id")?;
    let old_code: String = row.try_get("", "code")?;
    if let Some(code) = update.code.as_ref().filter(|c| **c != old_code) {
        txn.execute_raw(statement(
            r#"
            UPDATE property SET code = $2, code_grandfathered = false, updated_at = clock_timestamp()
             WHERE id = $1
            "#,
            [id.0.into(), code.clone().into()],
        ))
        .await
        .map_err(|e| on_code_clash(e, || code_taken(code)))?;
        // The plot may have stood in the case-insensitive index for older
        // codes that differ from its old one only in case (grandfathered):
        // the oldest of them stands in for them now.
        txn.execute_raw(statement(
            r#"
            UPDATE property SET code_grandfathered = false
             WHERE id = (SELECT g.id FROM property g
                          WHERE g.project_id = $1 AND lower(g.code) = lower($2) AND g.code_grandfathered
                          ORDER BY g.id LIMIT 1)
               AND NOT EXISTS (SELECT 1 FROM property k
                                WHERE k.project_id = $1 AND lower(k.code) = lower($2)
                                  AND NOT k.code_grandfathered)
            "#,
            [project.into(), old_code.into()],
        ))
        .await?;
    }
    if let Some(price) = &update.price {
        txn.execute_raw(statement(
            "UPDATE property SET price = $2::numeric, updated_at = clock_timestamp() WHERE id = $1",
            [
                id.0.into(),
                price.as_ref().map(|p| p.as_str().to_owned()).into(),
            ],
        ))
        .await?;
    }
    txn.commit().await?;
    reads::properties_by_ids(db, actor.workspace_id, [id])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("property"))
}

/// Takes a plot off the market: managers and admins, and only a plot
/// nobody holds (a held one is `PropertyUnavailable`, with its status and
/// end). It locks the plot's row as reserve does, so a withdrawal and a
/// reserve of one plot run one after the other: exactly one of them wins.
/// Withdrawing twice is harmless.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, property.id = %id))]
pub async fn withdraw(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    id: PropertyId,
) -> Written<PropertyId> {
    if let Err(e) = require_manager(actor) {
        return Written::failed(e);
    }
    let answer = ask(
        db,
        "withdraw($1, $2, make_interval(secs => $3), $4)",
        [
            actor.workspace_id.0.into(),
            id.0.into(),
            secs(policy.ttl),
            count(policy.max_active_per_agent),
        ],
    )
    .await;
    plot_answer(answer)
}

/// Puts a withdrawn plot back on the market, AVAILABLE: managers and
/// admins. Restoring a plot that reads AVAILABLE is harmless; a held or
/// sold one is refused.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, property.id = %id))]
pub async fn restore(
    db: &DatabaseConnection,
    actor: &Actor,
    id: PropertyId,
) -> Written<PropertyId> {
    if let Err(e) = require_manager(actor) {
        return Written::failed(e);
    }
    let answer = ask(
        db,
        "restore($1, $2)",
        [actor.workspace_id.0.into(), id.0.into()],
    )
    .await;
    plot_answer(answer)
}

fn plot_answer(answer: DomainResult<crate::rules::Answer>) -> Written<PropertyId> {
    match answer {
        Ok(answer) => Written {
            result: match answer.verdict {
                Verdict::Withdrawn { property } | Verdict::Restored { property } => Ok(property),
                other => Err(other.into_error()),
            },
            effects: answer.effects,
        },
        Err(e) => Written::failed(e),
    }
}

/// The most data rows one `importProperties` call takes; larger files go
/// through the `import-properties` command, which streams them.
pub const MAX_IMPORT_ROWS: u64 = 10_000;

/// One data row of an import, checked: its line in the file (for errors),
/// its code, and its price if the file gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: u64,
    pub code: String,
    pub price: Option<Price>,
}

/// What an import did: plots added, and existing plots whose price it
/// changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub created: u64,
    pub updated: u64,
}

impl std::ops::AddAssign for Imported {
    fn add_assign(&mut self, other: Imported) {
        self.created += other.created;
        self.updated += other.updated;
    }
}

/// The rows of CSV text, read and checked as they come, a batch at a time,
/// so that a file of any size streams through. The header row names the
/// columns, in any order and case: `code`, and optionally `price`. Cells
/// are trimmed; blank lines are skipped. Every error names its line and
/// column: `line 17: price "12,5" is not a decimal`. A code may appear once
/// per file, compared without regard to case (as codes are in a project).
pub struct CsvRows<R> {
    reader: csv::Reader<std::io::Chain<R, &'static [u8]>>,
    code: usize,
    price: Option<usize>,
    record: csv::StringRecord,
    /// Every code so far, lower-cased, with its line.
    seen: HashMap<String, u64>,
    rows: u64,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row.
    pub fn new(input: R) -> DomainResult<Self> {
        // The newline after the input ends its last record like every other,
        // which is what a row's line is told from (see `line`).
        let mut reader = csv::ReaderBuilder::new().from_reader(input.chain(&b"\n"[..]));
        let header = reader.headers().map_err(|e| csv_error(e, 1))?.clone();
        if header.is_empty() {
            return Err(bad(
                "the CSV is empty: it needs a header row with the columns code and, optionally, price",
            ));
        }
        let (mut code, mut price) = (None, None);
        for (i, name) in header.iter().enumerate() {
            let column = match name.trim().to_lowercase().as_str() {
                "code" => &mut code,
                "price" => &mut price,
                _ => {
                    return Err(bad(format!(
                        "line 1: unknown column {name:?} (the columns are code and, optionally, price)"
                    )));
                }
            };
            if column.replace(i).is_some() {
                return Err(bad(format!("line 1: the column {name:?} appears twice")));
            }
        }
        let code = code.ok_or_else(|| {
            bad("line 1: the header row has no code column (the columns are code and, optionally, price)")
        })?;
        Ok(Self {
            reader,
            code,
            price,
            record: csv::StringRecord::new(),
            seen: HashMap::new(),
            rows: 0,
        })
    }

    /// Data rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the input read so far (for progress).
    pub fn bytes(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next checked row, or `None` at the end of the input.
    pub fn next_row(&mut self) -> DomainResult<Option<ImportRow>> {
        if !self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| csv_error(e, self.reader.position().line().saturating_sub(1)))?
        {
            return Ok(None);
        }
        self.rows += 1;
        let line = self.line();
        let at = |message: String| bad(format!("line {line}: {message}"));
        let code = self.record.get(self.code).unwrap_or_default().trim();
        check_text("code", code, MAX_CODE_CHARS).map_err(|e| at(e.to_string()))?;
        let price = match self.price.and_then(|i| self.record.get(i)).map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Price::parse(text).map_err(|e| at(format!("price {e}")))?),
        };
        if let Some(first) = self.seen.insert(code.to_lowercase(), line) {
            return Err(at(format!(
                "code {code:?} is given twice, also on line {first} (codes are compared without regard to case)"
            )));
        }
        Ok(Some(ImportRow {
            line,
            code: code.to_owned(),
            price,
        }))
    }

    /// The line the record just read began on. The reader tells where a
    /// record's reading began, which is before any blank lines it skipped,
    /// and where it ended: after its newline, and after those within it.
    fn line(&self) -> u64 {
        let within: usize = self.record.iter().map(|f| f.matches('\n').count()).sum();
        self.reader
            .position()
            .line()
            .saturating_sub(1 + within as u64)
    }

    /// Up to `max` next rows; empty at the end of the input.
    pub fn next_batch(&mut self, max: usize) -> DomainResult<Vec<ImportRow>> {
        let mut batch = Vec::with_capacity(max.min(10_000));
        while batch.len() < max {
            match self.next_row()? {
                Some(row) => batch.push(row),
                None => break,
            }
        }
        Ok(batch)
    }
}

fn bad(message: impl Into<String>) -> DomainError {
    DomainError::InvalidInput(message.into())
}

/// A record the reader refused, on `line`.
fn csv_error(err: csv::Error, line: u64) -> DomainError {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => bad(format!(
            "line {line}: {len} fields, where the header row has {expected_len}"
        )),
        csv::ErrorKind::Utf8 { .. } => bad(format!("line {line}: the text is not UTF-8")),
        _ => bad(format!("cannot read the CSV: {err}")),
    }
}

/// The project an import goes into, found by its id (and, for a person,
/// in their workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImportTarget {
    workspace_id: WorkspaceId,
    project_id: ProjectId,
}

/// An import in progress: one transaction, whatever its number of batches,
/// that counts the project's plots once when it commits (`crate::tally`)
/// rather than row by row.
pub struct Import {
    bulk: Bulk,
    target: ImportTarget,
}

impl Import {
    /// Begins an import into the project `project`: in `workspace` when
    /// given (a person's import), else wherever it is (an operator's, from
    /// the command line).
    pub async fn begin(
        db: &DatabaseConnection,
        project: ProjectId,
        workspace: Option<WorkspaceId>,
    ) -> DomainResult<Import> {
        let bulk = Bulk::begin(db, project).await?;
        let target = import_target(bulk.txn(), project, workspace).await?;
        Ok(Import { bulk, target })
    }

    /// Imports one batch of checked rows.
    pub async fn batch(&self, rows: &[ImportRow]) -> DomainResult<Imported> {
        import_batch(self.bulk.txn(), &self.target, rows).await
    }

    /// Counts the project's plots, and commits every batch.
    pub async fn commit(self) -> DomainResult<()> {
        Ok(self.bulk.commit().await?)
    }
}

/// The project `id` as an import's target: in `workspace` when given (a
/// person's import), else wherever it is (an operator's, from the command
/// line).
async fn import_target(
    conn: &impl ConnectionTrait,
    id: ProjectId,
    workspace: Option<WorkspaceId>,
) -> DomainResult<ImportTarget> {
    let row = conn
        .query_one_raw(statement(
            "SELECT workspace_id FROM project WHERE id = $1 AND ($2::uuid IS NULL OR workspace_id = $2)",
            [id.0.into(), workspace.map(|w| w.0).into()],
        ))
        .await?
        .ok_or(DomainError::NotFound("project"))?;
    Ok(ImportTarget {
        workspace_id: WorkspaceId(row.try_get("", "workspace_id")?),
        project_id: id,
    })
}

/// One batch of an import, as one statement: a row whose code the project
/// has (without regard to case; the exact spelling first, for codes kept
/// from before that rule) sets that plot's price when it gives one; any
/// other row adds a plot, AVAILABLE. The caller's transaction makes a whole
/// import all or none.
const IMPORT_BATCH: &str = r#"
WITH input AS (
  SELECT * FROM jsonb_to_recordset($3::jsonb) AS i(ord integer, id uuid, code text, price numeric)
),
found AS (
  SELECT DISTINCT ON (i.ord) i.ord, p.id
    FROM input i JOIN property p ON p.project_id = $2 AND lower(p.code) = lower(i.code)
   ORDER BY i.ord, p.code = i.code DESC, p.id
),
updated AS (
  UPDATE property p SET price = i.price, updated_at = clock_timestamp()
    FROM found f JOIN input i ON i.ord = f.ord
   WHERE p.id = f.id AND i.price IS NOT NULL AND p.price IS DISTINCT FROM i.price
  RETURNING p.id
),
created AS (
  INSERT INTO property (id, workspace_id, project_id, code, price)
  SELECT i.id, $1, $2, i.code, i.price FROM input i
   WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.ord = i.ord)
  RETURNING id
)
SELECT (SELECT count(*) FROM created) AS created, (SELECT count(*) FROM updated) AS updated
"#;

/// Imports one batch of checked rows into `target`, in the caller's
/// transaction.
async fn import_batch(
    conn: &impl ConnectionTrait,
    target: &ImportTarget,
    rows: &[ImportRow],
) -> DomainResult<Imported> {
    if rows.is_empty() {
        return Ok(Imported::default());
    }
    // Prices go as JSON strings, which PostgreSQL reads into numeric exactly.
    let input: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(ord, row)| {
            serde_json::json!({
                "ord": ord,
                "id": PropertyId::new(),
                "code": row.code,
                "price": row.price.as_ref().map(Price::as_str),
            })
        })
        .collect();
    let row = conn
        .query_one_raw(statement(
            IMPORT_BATCH,
            [
                target.workspace_id.0.into(),
                target.project_id.0.into(),
                serde_json::Value::Array(input).into(),
            ],
        ))
        .await
        .map_err(|e| {
            // Another call added one of these codes meanwhile.
            on_code_clash(e, || {
                bad("a code of this import was added to the project meanwhile; nothing was imported")
            })
        })?
        .ok_or_else(|| DbErr::Custom("the import answered no row".into()))?;
    let created: i64 = row.try_get("", "created")?;
    let updated: i64 = row.try_get("", "updated")?;
    Ok(Imported {
        created: u64::try_from(created).unwrap_or_default(),
        updated: u64::try_from(updated).unwrap_or_default(),
    })
}

/// Rows per statement of an import: large enough that a 100,000-row file
/// is twenty round trips, small enough that each statement stays well
/// under a second.
pub const IMPORT_BATCH_ROWS: usize = 5_000;

/// `importProperties`: adds or updates, by code, the plots of CSV text
/// (at most [`MAX_IMPORT_ROWS`] data rows) in a project of the actor's
/// workspace, all or none: managers and admins. The whole text is read and
/// checked before the transaction begins.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, project.id = %project_id))]
pub async fn import_properties(
    db: &DatabaseConnection,
    actor: &Actor,
    project_id: ProjectId,
    csv: &str,
) -> Written<Imported> {
    import_text(db, actor, project_id, csv).await.into()
}

async fn import_text(
    db: &DatabaseConnection,
    actor: &Actor,
    project_id: ProjectId,
    csv: &str,
) -> DomainResult<Imported> {
    require_manager(actor)?;
    let mut reader = CsvRows::new(csv.as_bytes())?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        if reader.rows() > MAX_IMPORT_ROWS {
            return Err(bad(format!(
                "line {}: more than {MAX_IMPORT_ROWS} rows; import larger files with the command `holdfast-server import-properties`",
                row.line
            )));
        }
        rows.push(row);
    }
    let import = Import::begin(db, project_id, Some(actor.workspace_id)).await?;
    let mut imported = Imported::default();
    for batch in rows.chunks(IMPORT_BATCH_ROWS) {
        imported += import.batch(batch).await?;
    }
    import.commit().await?;
    tracing::info!(
        created = imported.created,
        updated = imported.updated,
        "imported plots"
    );
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_plain_non_negative_decimals_with_at_most_two_decimals() {
        for ok in ["0", "12500000.00", "12.5", "007", "999999999999.99", "1.0"] {
            assert_eq!(Price::parse(ok).map(|p| p.0), Ok(ok.to_owned()), "{ok}");
        }
        let refused = [
            ("-1", "is negative"),
            ("-0.50", "is negative"),
            ("12.505", "more than 2 decimals"),
            ("12,5", "is not a decimal"),
            ("1e5", "is not a decimal"),
            ("1.5E3", "is not a decimal"),
            ("+5", "is not a decimal"),
            (" 5", "is not a decimal"),
            ("", "is not a decimal"),
            (".5", "is not a decimal"),
            ("5.", "is not a decimal"),
            ("1_000", "is not a decimal"),
            ("NaN", "is not a decimal"),
            ("Infinity", "is not a decimal"),
            ("1000000000000", "too large"),
        ];
        for (text, why) in refused {
            let err = Price::parse(text).expect_err(text).to_string();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.starts_with(&format!("{text:?}")), "{err}");
        }
    }

    fn rows(csv: &str) -> DomainResult<Vec<ImportRow>> {
        let mut reader = CsvRows::new(csv.as_bytes())?;
        reader.next_batch(usize::MAX)
    }

    fn error(csv: &str) -> String {
        rows(csv).expect_err("refused").to_string()
    }

    #[test]
    fn a_csv_names_its_columns_in_any_order_and_case() {
        let got = rows("Price, CODE\n 12.50 , A-1\n\n,B-2\n").expect("rows");
        assert_eq!(
            got,
            [
                ImportRow {
                    line: 2,
                    code: "A-1".into(),
                    price: Some(Price("12.50".into()))
                },
                ImportRow {
                    line: 4,
                    code: "B-2".into(),
                    price: None
                },
            ]
        );
        assert_eq!(rows("code\nA-1\n").expect("rows")[0].price, None);
    }

    #[test]
    fn every_csv_error_names_its_line_and_column() {
        assert_eq!(
            error("code,price\nA-1,1\nA-2,\"12,5\"\n"),
            "line 3: price \"12,5\" is not a decimal (write it with digits and a point, such as 12500000.00)"
        );
        assert!(error("code,price\nA-1,-3\n").starts_with("line 2: price \"-3\" is negative"));
        assert!(error("code\nA-1\n\"\"\n").starts_with("line 3: code must not be empty"));
        assert!(
            error("code\nA-1\nB-1\na-1\n")
                .starts_with("line 4: code \"a-1\" is given twice, also on line 2")
        );
        assert!(error("code,price\nA-1,1,2\n").starts_with("line 2: 3 fields"));
        assert!(error("code,area\nA-1,3\n").starts_with("line 1: unknown column \"area\""));
        assert!(error("price\n3\n").starts_with("line 1: the header row has no code column"));
        assert!(error("code,Code\nA,B\n").starts_with("line 1: the column \"Code\" appears twice"));
        assert!(error("").starts_with("the CSV is empty"));
    }
}
