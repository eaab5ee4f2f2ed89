//! `/admin/oauth2/auth/sessions/{consent,login}`, `/admin/oauth2/introspect` and
//! `/admin/oauth2/tokens`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_core::audit::Actor;
use latchkey_types::flow::ConsentSession;
use latchkey_types::token::Introspection;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Query;
use crate::oauth::{OAuthForm, no_store};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConsent {
    subject: String,
    #[serde(default)]
    login_session_id: Option<String>,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

pub async fn list_consent(
    State(s): State<AppState>,
    Query(q): Query<ListConsent>,
) -> Result<axum::Json<Vec<ConsentSession>>, ApiError> {
    let _ = (&q.page_size, &q.page_token);
    let mut sessions = s.engine.consent_sessions(&q.subject).await?;
    if let Some(sid) = &q.login_session_id {
        sessions.retain(|c| &c.consent_request.login_session_id == sid);
    }
    Ok(axum::Json(sessions))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeConsent {
    subject: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    all: Option<bool>,
    #[serde(default)]
    consent_request_id: Option<String>,
}

pub async fn revoke_consent(
    State(s): State<AppState>,
    Query(q): Query<RevokeConsent>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::admin_api();
    match (&q.client, q.all == Some(true), &q.consent_request_id) {
        (Some(client), false, None) => {
            s.engine
                .revoke_consent_sessions(&q.subject, Some(client), &actor)
                .await?;
        }
        (None, true, None) => {
            s.engine
                .revoke_consent_sessions(&q.subject, None, &actor)
                .await?;
        }
        (None, false, Some(id)) => {
            s.engine
                .revoke_consent_request(&q.subject, id, &actor)
                .await?;
        }
        _ => {
            return Err(ApiError::invalid_request(
                "Give exactly one of client, all=true or consent_request_id.",
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeLogin {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    sid: Option<String>,
}

pub async fn revoke_login(
    State(s): State<AppState>,
    Query(q): Query<RevokeLogin>,
) -> Result<StatusCode, ApiError> {
    match (&q.subject, &q.sid) {
        (Some(subject), None) => {
            s.engine.revoke_login_sessions(subject).await?;
        }
        (None, Some(sid)) => {
            s.engine.revoke_login_session(sid).await?;
        }
        _ => return Err(ApiError::invalid_request("Give either subject or sid.")),
    }
    crate::backchannel::wake();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    client_id: String,
}

pub async fn revoke_tokens(
    State(s): State<AppState>,
    Query(q): Query<RevokeTokens>,
) -> Result<StatusCode, ApiError> {
    s.engine
        .revoke_client_tokens(&q.client_id, &Actor::admin_api())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn introspect(
    State(s): State<AppState>,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    if let Some(dup) = params.first_duplicate() {
        return Err(ApiError::invalid_request(format!(
            "The parameter {dup} was given more than once."
        )));
    }
    let token = params
        .get("token")
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::invalid_request("The request has no token."))?;
    let scope = params.get("scope").ok().flatten();
    let result: Introspection = s.engine.introspect(token, scope).await?;
    let mut res = axum::Json(result).into_response();
    no_store(res.headers_mut());
    Ok(res)
}
