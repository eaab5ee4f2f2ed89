//! `GET /admin/revocations?after=&limit=`: a page of the revocation log.

use axum::extract::State;
use latchkey_core::revocations::{PageError, RevocationEntry, page, parse_cursor, parse_limit};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

/// Both taken as text, so that garbage gets this module's message rather than a parser's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRevocations {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct RevocationPage {
    entries: Vec<RevocationEntry>,
    last_cursor: i64,
    next_after: i64,
}

fn refused(e: PageError) -> ApiError {
    match e {
        PageError::Invalid(why) => ApiError::invalid_request(why),
        PageError::Store(s) => s.into(),
    }
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListRevocations>,
) -> Result<axum::Json<RevocationPage>, ApiError> {
    let after = q
        .after
        .as_deref()
        .map_or(Ok(0), parse_cursor)
        .map_err(refused)?;
    let limit = parse_limit(q.limit.as_deref()).map_err(refused)?;
    let (entries, last_cursor) = page(s.engine.deps().store.as_ref(), after, limit)
        .await
        .map_err(refused)?;
    let next_after = entries.last().map_or(after, |e| e.cursor);
    Ok(axum::Json(RevocationPage {
        entries,
        last_cursor,
        next_after,
    }))
}
