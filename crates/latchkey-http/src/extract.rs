//! Extractors whose rejections are errors in the API's own JSON shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// How deep a JSON body may nest (objects and arrays).
pub const MAX_JSON_DEPTH: usize = 32;

/// True when no object or array in `json` nests deeper than `max` (brackets inside strings do
/// not count). Malformed input passes: the parser refuses it next.
pub fn depth_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// A JSON body. Refuses other content types, malformed JSON and, through the target type's
/// `deny_unknown_fields`, unknown fields — each with a message that says which.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json")
                    || m.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::invalid_request(
                "The request body must be JSON (Content-Type: application/json).",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::invalid_request("The request body is too large.")
                        .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    ApiError::invalid_request(format!("The request body could not be read: {e}"))
                }
            })?;
        if !depth_within(&bytes, MAX_JSON_DEPTH) {
            return Err(ApiError::invalid_request(format!(
                "The request body nests deeper than {MAX_JSON_DEPTH} levels."
            )));
        }
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::invalid_request(format!("The request body is not valid: {e}")))
    }
}

/// Query parameters, refused with an `invalid_request` that says why.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|e| {
            ApiError::invalid_request(format!("The query parameters are not valid: {e}"))
        })
    }
}

/// The parameters of a browser's request to `/oauth2/auth` or `/oauth2/sessions/logout`: the
/// query of a GET, or the form body of a POST (OIDC Core §3.1.2.1), and the status that sends
/// that browser on (302 after a GET, 303 after a POST). Anything unreadable is an error page.
pub struct BrowserParams {
    pub params: latchkey_core::oauth::params::Params,
    pub redirect: axum::http::StatusCode,
}

impl<S: Send + Sync> FromRequest<S> for BrowserParams {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::http::{Method, StatusCode};
        use latchkey_types::ErrorCode;

        use crate::pages::ErrorPage;
        let refuse = |why: String| ErrorPage::response(ErrorCode::InvalidRequest, why);
        let (encoded, redirect) = if req.method() == Method::POST {
            let body = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| refuse(format!("The request body could not be read: {e}.")))?;
            let text = String::from_utf8(body.to_vec())
                .map_err(|_| refuse("The request is not valid UTF-8.".into()))?;
            (text, StatusCode::SEE_OTHER)
        } else {
            (
                req.uri().query().unwrap_or_default().to_owned(),
                StatusCode::FOUND,
            )
        };
        let params = latchkey_core::oauth::params::Params::parse(&encoded)
            .map_err(|e| refuse(format!("The request is not valid: {e}.")))?;
        Ok(Self { params, redirect })
    }
}

#[cfg(test)]
mod tests {
    use super::depth_within;

    #[test]
    fn depth_counts_nesting_but_not_brackets_in_strings() {
        assert!(depth_within(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!depth_within(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(depth_within(br#"{"a":"[[[[[[\"]]]"}"#, 1));
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(!depth_within(deep.as_bytes(), 32));
    }
}
