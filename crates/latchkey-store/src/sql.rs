//! What the repositories need of a database connection, the same for both engines: parameters
//! bound by position (`$1`, `$2`, … on both engines), and columns read by name.

use std::borrow::Cow;

use latchkey_core::store::StoreError;

/// One bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Param<'a> {
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    Int(i64),
    OptInt(Option<i64>),
}

impl Param<'_> {
    /// The parameter, owning its text: for a statement sent to SQLite's writer thread.
    pub(crate) fn into_owned(self) -> Param<'static> {
        match self {
            Self::Text(v) => Param::Text(Cow::Owned(v.into_owned())),
            Self::OptText(v) => Param::OptText(v.map(|v| Cow::Owned(v.into_owned()))),
            Self::Int(v) => Param::Int(v),
            Self::OptInt(v) => Param::OptInt(v),
        }
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(Cow::Borrowed(v.as_str()))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Self::Text(Cow::Owned(v))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::OptText(v.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Param<'_> {
    fn from(v: Option<String>) -> Self {
        Self::OptText(v.map(Cow::Owned))
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Self::OptInt(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<u32> for Param<'_> {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

/// The parameters of a statement, in the order of `$1`, `$2`, …
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$($crate::sql::Param::from($p)),*]
    };
}
pub(crate) use params;

/// A row's columns, read by name, whichever driver fetched it.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    /// Every column of the row, in order, as JSON: integers, text or null (what the schema
    /// holds); for copying rows whatever their table (export).
    fn values(&self) -> Result<Vec<serde_json::Value>, StoreError>;
}

/// Decodes one row into a record. A plain function, so that a read sent to SQLite's writer
/// thread can take it along.
pub(crate) type Decode<T> = fn(&dyn Columns) -> Result<T, StoreError>;

fn column_err(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{name}: {e}"))
}

impl Columns for rusqlite::Row<'_> {
    fn values(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        use rusqlite::types::ValueRef;
        let mut out = Vec::new();
        for i in 0..self.as_ref().column_count() {
            let v = self.get_ref(i).map_err(|e| column_err("column", e))?;
            out.push(match v {
                ValueRef::Null => serde_json::Value::Null,
                ValueRef::Integer(n) => n.into(),
                ValueRef::Real(f) => f.into(),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    String::from_utf8_lossy(t).into_owned().into()
                }
            });
        }
        Ok(out)
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.get(name).map_err(|e| column_err(name, e))
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name).map_err(|e| column_err(name, e))
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.get(name).map_err(|e| column_err(name, e))
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name).map_err(|e| column_err(name, e))
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn values(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        use sqlx::{Column as _, TypeInfo as _};
        let mut out = Vec::new();
        for (i, c) in sqlx::Row::columns(self).iter().enumerate() {
            let name = c.name();
            let v = match c.type_info().name() {
                "INT8" => sqlx::Row::try_get::<Option<i64>, _>(self, i).map(|v| v.map(Into::into)),
                "INT4" => sqlx::Row::try_get::<Option<i32>, _>(self, i).map(|v| v.map(Into::into)),
                "BOOL" => sqlx::Row::try_get::<Option<bool>, _>(self, i).map(|v| v.map(Into::into)),
                _ => sqlx::Row::try_get::<Option<String>, _>(self, i).map(|v| v.map(Into::into)),
            }
            .map_err(|e| column_err(name, e))?;
            out.push(v.unwrap_or(serde_json::Value::Null));
        }
        Ok(out)
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        sqlx::Row::try_get(self, name).map_err(|e| column_err(name, e))
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::Row::try_get(self, name).map_err(|e| column_err(name, e))
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_int(name)?
            .ok_or_else(|| column_err(name, "unexpected NULL"))
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        // BIGINT columns and counts are INT8; a few are INT4.
        match sqlx::Row::try_get::<Option<i64>, _>(self, name) {
            Ok(v) => Ok(v),
            Err(_) => sqlx::Row::try_get::<Option<i32>, _>(self, name)
                .map(|v| v.map(i64::from))
                .map_err(|e| column_err(name, e)),
        }
    }
}

/// The JSON of a text column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A value as the JSON of a text column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// An enumeration stored as text.
pub(crate) fn parse_enum<T>(
    column: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{column}: unknown value {text:?}")))
}
