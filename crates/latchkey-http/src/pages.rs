//! Server-rendered pages: the templates, their assets, and the headers every page carries.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_types::ErrorCode;

/// The stylesheet, served by the binary: no external assets.
pub const STYLESHEET: &str = include_str!("../assets/latchkey.css");

/// The policy of every page: nothing from elsewhere, no script, no framing, forms only to us.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Renders a template as a page with the page headers.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    render_with_form_targets(status, page, &[])
}

/// A page whose forms may end, after redirects, at one of `origins` (the client's validated
/// redirect URIs): browsers apply `form-action` to every redirect that follows a form's POST, so
/// the login and consent forms must allow the app they send the user back to.
pub fn render_with_form_targets(
    status: StatusCode,
    page: &impl Template,
    origins: &[String],
) -> Response {
    let csp = if origins.is_empty() {
        HeaderValue::from_static(PAGE_CSP)
    } else {
        let extra: Vec<&str> = origins
            .iter()
            .map(String::as_str)
            .filter(|o| {
                o.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~:/*[]".contains(&b))
            })
            .collect();
        let policy = PAGE_CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {}", extra.join(" ")),
        );
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(PAGE_CSP))
    };
    match page.render() {
        Ok(html) => {
            let mut res = (status, axum::response::Html(html)).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub heading: &'static str,
    pub description: String,
    pub code: &'static str,
}

impl ErrorPage {
    pub fn response(code: ErrorCode, description: String) -> Response {
        let heading = match code {
            ErrorCode::InvalidClient => "This application is not available",
            ErrorCode::AccessDenied => "The sign-in could not continue",
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
                "Something went wrong on our side"
            }
            _ => "The sign-in request is not valid",
        };
        let status = match code {
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        render(
            status,
            &Self {
                heading,
                description,
                code: code.as_str(),
            },
        )
    }
}

pub async fn stylesheet() -> Response {
    let mut res = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
