//! Paging, Relay-style: page sizes, opaque cursors and a page before it takes
//! its GraphQL shape. A cursor is base64 of the keyset position the domain's
//! page reads take, so a client can pass it back but has no reason to look
//! inside.

use async_graphql::SimpleObject;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};

/// A page's length when `first` is not given.
pub const DEFAULT_PAGE: u64 = 20;
/// The longest page a client may ask for: `first` at most 100 (docs/API.md).
pub const MAX_PAGE: u64 = holdfast_domain::reads::MAX_PAGE;

/// The cost of a connection field for the complexity limit: its page length
/// times what each node costs.
pub fn complexity(first: Option<i32>, child: usize) -> usize {
    let first = first.map_or(DEFAULT_PAGE, |f| {
        u64::try_from(f).unwrap_or(0).min(MAX_PAGE)
    });
    usize::try_from(first)
        .unwrap_or(1)
        .max(1)
        .saturating_mul(child)
}

/// The page length a client asked for. Requests are checked before they
/// run (`limits.rs` calls [`check_first`]), so a resolver never refuses one:
/// a field that failed would be left out of its object, however non-null.
pub fn page_size(first: Option<i32>) -> ApiResult<u64> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) => check_first(i64::from(n)).map_err(ApiError::BadInput),
    }
}

/// A `first` argument's value, checked: the page length, or why not.
pub fn check_first(n: i64) -> Result<u64, String> {
    match u64::try_from(n) {
        Err(_) => Err("first must not be negative".into()),
        Ok(n) if n > MAX_PAGE => Err(format!(
            "first is {n}; a page holds at most {MAX_PAGE} items"
        )),
        Ok(n) => Ok(n),
    }
}

/// Parts are joined by a newline, which no code, id or time can contain
/// (the domain refuses control characters in codes).
const SEPARATOR: char = '\n';

pub fn encode_cursor(kind: &str, parts: &[&str]) -> String {
    let mut raw = String::from(kind);
    for part in parts {
        raw.push(SEPARATOR);
        raw.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(raw)
}

/// The parts of a cursor of `kind`; anything else is BAD_USER_INPUT.
pub fn decode_cursor(kind: &str, cursor: &str, parts: usize) -> ApiResult<Vec<String>> {
    let bad = || ApiError::BadInput(format!("{cursor:?} is not a cursor of this list"));
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut split = raw.split(SEPARATOR);
    if split.next() != Some(kind) {
        return Err(bad());
    }
    let out: Vec<String> = split.map(str::to_owned).collect();
    if out.len() != parts {
        return Err(bad());
    }
    Ok(out)
}

#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    pub has_previous_page: bool,
    pub has_next_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A page of nodes with their cursors, before it takes its GraphQL shape.
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub page_info: PageInfo,
}

impl<T> Page<T> {
    /// A page from `rows`, read with a limit of `first + 1` so that the extra
    /// row, dropped here, tells whether another page follows.
    pub fn new<M>(
        mut rows: Vec<M>,
        first: u64,
        after_given: bool,
        cursor: impl Fn(&M) -> String,
        node: impl Fn(M) -> T,
    ) -> Self {
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        let has_next_page = rows.len() > first;
        rows.truncate(first);
        let items: Vec<(String, T)> = rows.into_iter().map(|m| (cursor(&m), node(m))).collect();
        let page_info = PageInfo {
            has_previous_page: after_given,
            has_next_page,
            start_cursor: items.first().map(|(c, _)| c.clone()),
            end_cursor: items.last().map(|(c, _)| c.clone()),
        };
        Page { items, page_info }
    }

    /// The same page with each item turned into another.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            page_info: self.page_info,
        }
    }
}

/// A cursor at a time and an id (lists ordered by when their rows were made).
pub fn encode_time_cursor(kind: &str, at: DateTime<Utc>, id: impl std::fmt::Display) -> String {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    encode_cursor(kind, &[&at, &id.to_string()])
}

/// The time and id of a cursor of `kind`; anything else is BAD_USER_INPUT.
pub fn decode_time_cursor<Id: std::str::FromStr>(
    kind: &str,
    cursor: &str,
) -> ApiResult<(DateTime<Utc>, Id)> {
    let parts = decode_cursor(kind, cursor, 2)?;
    let bad = || ApiError::BadInput("malformed cursor".into());
    let at = DateTime::parse_from_rfc3339(&parts[0])
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    let id = parts[1].parse().map_err(|_| bad())?;
    Ok((at, id))
}
