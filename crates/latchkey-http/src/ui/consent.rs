//! `/ui/consent`: the built-in consent screen.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::platform::consent::{ConsentDecision, ConsentStart, ConsentView};
use serde::Deserialize;

use super::{Console, Form, error_page, see_other};
use crate::pages::render_with_form_targets;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ConsentQuery {
    consent_challenge: String,
    /// The user read the warning about an unverified app and chose to go on.
    #[serde(default)]
    proceed: Option<String>,
}

/// The warning shown before the consent screen of an unverified app of another account.
#[derive(Template)]
#[template(path = "unverified.html")]
pub struct UnverifiedPage {
    pub platform: String,
    pub v: ConsentView,
    pub challenge: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub platform: String,
    pub v: ConsentView,
    pub challenge: String,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub initial: String,
}

fn binding(console: &Console, challenge: &str) -> String {
    format!("{}\0{challenge}", console.session.id)
}

fn show(
    state: &AppState,
    console: &Console,
    v: ConsentView,
    challenge: String,
    error: Option<String>,
) -> Response {
    let origins = v.redirect_origins.clone();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = ConsentPage {
        platform: state.platform.settings().name.clone(),
        csrf: state
            .platform
            .form_token("consent", &binding(console, &challenge)),
        email: console.principal.user.email.clone(),
        initial: v
            .app_name
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
        v,
        challenge,
        error,
    };
    render_with_form_targets(status, &page, &origins)
}

pub async fn get(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<ConsentQuery>,
) -> Response {
    match state
        .platform
        .consent_start(&console.principal, &q.consent_challenge)
        .await
    {
        Ok(ConsentStart::Skip(r)) => see_other(&r.redirect_to),
        Ok(ConsentStart::Show(v)) if v.interstitial && q.proceed.as_deref() != Some("1") => {
            let origins = v.redirect_origins.clone();
            let page = UnverifiedPage {
                platform: state.platform.settings().name.clone(),
                csrf: state
                    .platform
                    .form_token("consent", &binding(&console, &q.consent_challenge)),
                v: *v,
                challenge: q.consent_challenge,
            };
            render_with_form_targets(StatusCode::OK, &page, &origins)
        }
        Ok(ConsentStart::Show(v)) => show(&state, &console, *v, q.consent_challenge, None),
        Err(e) => error_page(&e),
    }
}

pub async fn post(State(state): State<AppState>, console: Console, form: Form) -> Response {
    let challenge = form.get("consent_challenge").unwrap_or_default().to_owned();
    let token = form.get("csrf_token").unwrap_or_default();
    if let Err(e) =
        state
            .platform
            .check_form_token("consent", &binding(&console, &challenge), token)
    {
        return error_page(&e);
    }
    let p = &state.platform;
    let result = if form.get("decision") == Some("deny") {
        p.consent_deny(&console.principal, &challenge).await
    } else {
        let decision = ConsentDecision {
            optional_scopes: form.all("scope"),
            accounts: form.all("account"),
        };
        p.consent_accept(&console.principal, &challenge, &decision)
            .await
    };
    match result {
        Ok(r) => see_other(&r.redirect_to),
        Err(e @ latchkey_core::platform::PlatformError::Invalid { .. }) => {
            // Show the screen again with what was wrong.
            match p.consent_start(&console.principal, &challenge).await {
                Ok(ConsentStart::Show(v)) => {
                    show(&state, &console, *v, challenge, Some(e.to_string()))
                }
                _ => error_page(&e),
            }
        }
        Err(e) => error_page(&e),
    }
}
