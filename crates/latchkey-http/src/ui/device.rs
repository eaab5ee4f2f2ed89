//! `/ui/device` and `/ui/device/success`: the built-in device verification provider (RFC 8628).
//! The user enters the code the device shows; the page says which app asks, with its publisher's
//! shield, before the login and the consent.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::oauth::flow::FlowError;
use latchkey_core::platform::PlatformError;
use latchkey_core::platform::device::DeviceAppView;
use latchkey_types::routes::public;
use serde::Deserialize;

use super::{Form, error_page};
use crate::pages::render;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct DeviceQuery {
    device_challenge: Option<String>,
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub struct SuccessQuery {
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    pub platform: String,
    pub challenge: String,
    pub user_code: String,
    pub csrf: String,
    pub error: Option<String>,
    pub view: Option<DeviceAppView>,
    pub initial: String,
}

#[derive(Template)]
#[template(path = "device_success.html")]
pub struct SuccessPage {
    pub platform: String,
    pub denied: bool,
}

fn page(
    state: &AppState,
    challenge: String,
    user_code: &str,
    error: Option<String>,
    view: Option<DeviceAppView>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let initial = view
        .as_ref()
        .and_then(|v| v.app_name.chars().next())
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    render(
        status,
        &DevicePage {
            platform: state.platform.settings().name.clone(),
            csrf: state.platform.form_token("device", &challenge),
            challenge,
            user_code: user_code.chars().take(16).collect(),
            error,
            view,
            initial,
        },
    )
}

pub async fn get(State(state): State<AppState>, Query(q): Query<DeviceQuery>) -> Response {
    // Without a challenge (a bookmark, a typed address), get one first.
    let Some(challenge) = q.device_challenge.filter(|c| !c.is_empty()) else {
        return Redirect::to(public::DEVICE_VERIFY).into_response();
    };
    page(&state, challenge, &q.user_code, None, None)
}

pub async fn post(State(state): State<AppState>, form: Form) -> Response {
    let challenge = form.get("device_challenge").unwrap_or_default().to_owned();
    let user_code = form.get("user_code").unwrap_or_default().to_owned();
    if let Err(e) = state.platform.check_form_token(
        "device",
        &challenge,
        form.get("csrf_token").unwrap_or_default(),
    ) {
        return error_page(&e);
    }
    match state.platform.device_enter(&challenge, &user_code).await {
        Ok(view) => page(&state, challenge, "", None, Some(view)),
        Err(PlatformError::Flow(e @ FlowError::UserCodeInvalid)) => {
            page(&state, challenge, &user_code, Some(e.to_string()), None)
        }
        Err(PlatformError::Flow(FlowError::Handled { .. } | FlowError::NotFound)) => {
            // This visit is spent or expired: start a new one.
            Redirect::to(public::DEVICE_VERIFY).into_response()
        }
        Err(e) => error_page(&e),
    }
}

pub async fn success(State(state): State<AppState>, Query(q): Query<SuccessQuery>) -> Response {
    render(
        StatusCode::OK,
        &SuccessPage {
            platform: state.platform.settings().name.clone(),
            denied: q.error.is_some(),
        },
    )
}
