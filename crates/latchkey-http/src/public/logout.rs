//! `GET|POST /oauth2/sessions/logout`: OIDC RP-initiated logout with Hydra's logout challenge.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::authorize::SessionCookie;
use latchkey_core::oauth::logout::LogoutOutcome;
use latchkey_types::ErrorCode;

use crate::extract::BrowserParams;
use crate::pages::{ErrorPage, PAGE_CSP, render};
use crate::state::AppState;
use crate::{ApiError, cookies};

/// The page that signs the browser out of the apps with a front-channel logout URI (each in a
/// hidden iframe), then goes on.
#[derive(Template)]
#[template(path = "signed_out_frames.html")]
struct FramesPage {
    frames: Vec<String>,
    destination: String,
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return ErrorPage::response(
            ErrorCode::ServerError,
            "The redirect could not be built.".into(),
        );
    };
    let mut res = status.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The origins of `frames`, for the page's `frame-src`.
fn frame_origins(frames: &[String]) -> String {
    let mut origins: Vec<String> = frames
        .iter()
        .filter_map(|f| url::Url::parse(f).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.dedup();
    origins.join(" ")
}

/// `GET|POST`: the parameters come from the query or the form body ([`BrowserParams`]).
pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    BrowserParams {
        params,
        redirect: redirect_status,
    }: BrowserParams,
) -> Response {
    let secure = state.secure();
    let outcome = match state
        .engine
        .logout(&params, &cookies::read(&headers, secure))
        .await
    {
        Ok(o) => o,
        Err(e) => {
            return ErrorPage::response(
                ApiError::from(e).code,
                "The server could not complete the request. Try again in a moment.".into(),
            );
        }
    };
    match outcome {
        LogoutOutcome::Redirect { location, csrf } => {
            let mut res = redirect(redirect_status, &location);
            cookies::write(res.headers_mut(), secure, csrf, None);
            res
        }
        LogoutOutcome::SignedOut {
            frames,
            destination,
        } => {
            crate::backchannel::wake();
            let mut res = if frames.is_empty() {
                redirect(redirect_status, &destination)
            } else {
                let origins = frame_origins(&frames);
                let mut res = render(
                    StatusCode::OK,
                    &FramesPage {
                        frames,
                        destination,
                    },
                );
                let csp = format!("{PAGE_CSP}; frame-src {origins}");
                if let Ok(v) = HeaderValue::from_str(&csp) {
                    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                }
                res
            };
            cookies::write(res.headers_mut(), secure, None, Some(SessionCookie::Clear));
            res
        }
        LogoutOutcome::ErrorPage(e) => ErrorPage::response(e.code(), e.to_string()),
    }
}
