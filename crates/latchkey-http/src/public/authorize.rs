//! `GET|POST /oauth2/auth`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::authorize::AuthorizeOutcome;
use latchkey_types::ErrorCode;

use crate::extract::BrowserParams;
use crate::pages::ErrorPage;
use crate::state::AppState;
use crate::{ApiError, cookies};

/// `GET|POST`: the parameters come from the query or the form body ([`BrowserParams`]).
pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    BrowserParams {
        params,
        redirect: redirect_status,
    }: BrowserParams,
) -> Response {
    let secure = state.engine.settings().secure_cookies();
    let outcome = state
        .engine
        .authorize(&params, &cookies::read(&headers, secure))
        .await;
    respond(outcome, secure, redirect_status)
}

/// The browser's answer to a step of a flow: a redirect with its cookies, or an error page.
pub(crate) fn respond(
    outcome: Result<AuthorizeOutcome, latchkey_core::store::StoreError>,
    secure: bool,
    redirect_status: StatusCode,
) -> Response {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return ErrorPage::response(
                ApiError::from(e).code,
                "The server could not complete the request. Try again in a moment.".into(),
            );
        }
    };
    match outcome {
        AuthorizeOutcome::Redirect {
            location,
            csrf,
            session,
        } => {
            let Ok(location) = HeaderValue::from_str(&location) else {
                return ErrorPage::response(
                    ErrorCode::ServerError,
                    "The redirect could not be built.".into(),
                );
            };
            let mut res = redirect_status.into_response();
            let h = res.headers_mut();
            h.insert(header::LOCATION, location);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            cookies::write(h, secure, csrf, session);
            res
        }
        AuthorizeOutcome::ErrorPage(error) => ErrorPage::response(error.code(), error.to_string()),
    }
}
