//! `/admin/oauth2/auth/requests/{login,consent}` with `/accept` and `/reject` (Hydra v2).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::flow::FlowError;
use latchkey_types::device::AcceptDeviceUserCode;
use latchkey_types::flow::{AcceptConsent, AcceptLogin, RedirectTo, RejectRequest};
use serde::Deserialize;

use crate::error::{ApiError, flow_status};
use crate::extract::{Json, Query};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginChallenge {
    login_challenge: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChallenge {
    consent_challenge: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceChallenge {
    device_challenge: String,
}

/// A handled challenge answers 410 with where the browser should start again, as Hydra does.
fn flow_error(e: FlowError) -> Response {
    let status = flow_status(&e);
    match e {
        FlowError::Handled { redirect_to } => {
            (status, axum::Json(RedirectTo { redirect_to })).into_response()
        }
        FlowError::Store(s) => ApiError::from(s).into_response(),
        FlowError::NotFound => {
            ApiError::not_found("The challenge is unknown or has expired.").into_response()
        }
        other => ApiError::new(other.code(), other.to_string())
            .with_status(status)
            .into_response(),
    }
}

fn answer<T: serde::Serialize>(r: Result<T, FlowError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => flow_error(e),
    }
}

pub async fn login(State(s): State<AppState>, Query(q): Query<LoginChallenge>) -> Response {
    answer(s.engine.login_request(&q.login_challenge).await)
}

pub async fn accept_login(
    State(s): State<AppState>,
    Query(q): Query<LoginChallenge>,
    Json(body): Json<AcceptLogin>,
) -> Response {
    answer(s.engine.accept_login(&q.login_challenge, &body).await)
}

pub async fn reject_login(
    State(s): State<AppState>,
    Query(q): Query<LoginChallenge>,
    Json(body): Json<RejectRequest>,
) -> Response {
    answer(s.engine.reject_login(&q.login_challenge, &body).await)
}

pub async fn consent(State(s): State<AppState>, Query(q): Query<ConsentChallenge>) -> Response {
    answer(s.engine.consent_request(&q.consent_challenge).await)
}

pub async fn accept_consent(
    State(s): State<AppState>,
    Query(q): Query<ConsentChallenge>,
    Json(body): Json<AcceptConsent>,
) -> Response {
    answer(s.engine.accept_consent(&q.consent_challenge, &body).await)
}

pub async fn reject_consent(
    State(s): State<AppState>,
    Query(q): Query<ConsentChallenge>,
    Json(body): Json<RejectRequest>,
) -> Response {
    answer(s.engine.reject_consent(&q.consent_challenge, &body).await)
}

pub async fn accept_device(
    State(s): State<AppState>,
    Query(q): Query<DeviceChallenge>,
    Json(body): Json<AcceptDeviceUserCode>,
) -> Response {
    answer(
        s.engine
            .accept_device_user_code(&q.device_challenge, &body)
            .await,
    )
}
