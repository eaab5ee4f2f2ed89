//! Reading a row's columns by name, the same way for both drivers that read SQLite: sqlx's
//! `AnyRow` and rusqlite's `Row` (see `inline_reader.rs`), so that a record is decoded in one
//! place whichever driver fetched it.

use latchkey_core::store::StoreError;
use sqlx::Row as _;

use crate::error::map_err;

pub(crate) trait Columns {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
}

impl Columns for sqlx::any::AnyRow {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.try_get(name).map_err(map_err)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.try_get(name).map_err(map_err)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.try_get(name).map_err(map_err)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(name).map_err(map_err)
    }
}

fn column_err(name: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("{name}: {e}"))
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.get(name).map_err(|e| column_err(name, &e))
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name).map_err(|e| column_err(name, &e))
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.get(name).map_err(|e| column_err(name, &e))
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name).map_err(|e| column_err(name, &e))
    }
}
