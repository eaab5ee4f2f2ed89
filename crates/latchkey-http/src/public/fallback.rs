//! The pages shown when no login or consent app is configured.

use axum::http::StatusCode;
use axum::response::Response;

use crate::pages::{FallbackPage, render};

pub async fn login() -> Response {
    render(
        StatusCode::OK,
        &FallbackPage {
            heading: "No login app is configured",
            description: "The authorization server received a sign-in request, but no login app is set up to authenticate the user.",
            setting: "urls.login",
            what: "login",
            param: "login_challenge",
        },
    )
}

pub async fn consent() -> Response {
    render(
        StatusCode::OK,
        &FallbackPage {
            heading: "No consent app is configured",
            description: "The user signed in, but no consent app is set up to ask them what to share with the application.",
            setting: "urls.consent",
            what: "consent",
            param: "consent_challenge",
        },
    )
}
