//! `/ui/login` and `/ui/logout`: the built-in login provider.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::entropy::EntropyExt as _;
use latchkey_core::platform::PlatformError;
use latchkey_core::platform::consent::csp_origin;
use latchkey_core::platform::login::LoginStart;
use latchkey_core::secret::SecretString;
use latchkey_types::routes::public;
use serde::Deserialize;

use super::{Console, Form, PeerIp, error_page, see_other};
use crate::cookies;
use crate::pages::render_with_form_targets;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    login_challenge: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub platform: String,
    pub app_name: Option<String>,
    pub challenge: String,
    pub next: String,
    pub email: String,
    pub error: Option<String>,
    pub csrf: String,
}

/// Where a login goes next: a path of the platform's own pages, with its query. Anything else —
/// another site, a backslash a browser may read as a slash, or a value that cannot be sent as a
/// `Location` (CR, LF, spaces, other control or non-ASCII characters, which a browser sends
/// percent-encoded) — goes to the default page.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| {
        n.starts_with("/ui/") && !n.contains('\\') && n.bytes().all(|b| b.is_ascii_graphic())
    })
    .unwrap_or(public::UI_APPS)
    .to_owned()
}

/// Origins the login form's POST may end at: the app's redirect URIs (when consent is
/// skipped) and an external consent app.
fn form_targets(state: &AppState, redirect_uris: &[String]) -> Vec<String> {
    redirect_uris
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(
            state.engine.settings().consent_url.as_str(),
        ))
        .filter_map(csp_origin)
        .collect()
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    mut page: LoginPage,
    redirect_uris: &[String],
) -> Response {
    let secure = state.secure();
    let existing = cookies::get(headers, cookies::FORM, secure).filter(|v| v.len() == 43);
    let value = existing
        .clone()
        .unwrap_or_else(|| state.deps.entropy.token());
    page.csrf = state.platform.form_token("login", &value);
    let mut res = render_with_form_targets(status, &page, &form_targets(state, redirect_uris));
    if existing.is_none() {
        cookies::set(res.headers_mut(), cookies::FORM, secure, value, None);
    }
    res
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let blank = LoginPage {
        platform: state.platform.settings().name.clone(),
        app_name: None,
        challenge: String::new(),
        next: safe_next(q.next.as_deref()),
        email: String::new(),
        error: None,
        csrf: String::new(),
    };
    let Some(challenge) = q.login_challenge else {
        return page(&state, &headers, StatusCode::OK, blank, &[]);
    };
    match state.platform.login_start(&challenge).await {
        Ok(LoginStart::Skip {
            redirect_to,
            cookie,
        }) => {
            let mut res = see_other(&redirect_to);
            if let Some(c) = cookie {
                cookies::set(
                    res.headers_mut(),
                    cookies::CONSOLE,
                    state.secure(),
                    c.value.into_exposed(),
                    c.max_age,
                );
            }
            res
        }
        Ok(LoginStart::Form { request }) => {
            let uris = request.client.redirect_uris.clone().unwrap_or_default();
            let login = LoginPage {
                app_name: request.client.client_name.clone().filter(|n| !n.is_empty()),
                email: request.oidc_context.login_hint.clone().unwrap_or_default(),
                challenge,
                ..blank
            };
            page(&state, &headers, StatusCode::OK, login, &uris)
        }
        Err(e) => error_page(&e),
    }
}

pub async fn post(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let secure = state.secure();
    let binding = cookies::get(&headers, cookies::FORM, secure).unwrap_or_default();
    if let Err(e) = state.platform.check_form_token(
        "login",
        &binding,
        form.get("csrf_token").unwrap_or_default(),
    ) {
        return error_page(&e);
    }
    let challenge = form.get("login_challenge").filter(|c| !c.is_empty());
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = SecretString::new(form.get("password").unwrap_or_default());
    let remember = form.checked("remember");
    match state
        .platform
        .login(challenge, &email, password, remember, peer)
        .await
    {
        Ok(done) => {
            let to = if challenge.is_some() {
                done.redirect_to
            } else {
                safe_next(form.get("next"))
            };
            let mut res = see_other(&to);
            cookies::set(
                res.headers_mut(),
                cookies::CONSOLE,
                secure,
                done.cookie.value.into_exposed(),
                done.cookie.max_age,
            );
            res
        }
        Err(e @ (PlatformError::BadCredentials | PlatformError::Throttled { .. })) => {
            let status = crate::error::platform_status(&e);
            // The form is shown again for the same flow: it keeps the app's name and the
            // origins its next POST may end at.
            let client = match challenge {
                Some(c) => state.engine.login_request(c).await.ok().map(|r| r.client),
                None => None,
            };
            let uris = client
                .as_ref()
                .and_then(|c| c.redirect_uris.clone())
                .unwrap_or_default();
            let again = LoginPage {
                platform: state.platform.settings().name.clone(),
                app_name: client.and_then(|c| c.client_name).filter(|n| !n.is_empty()),
                challenge: challenge.unwrap_or_default().to_owned(),
                next: safe_next(form.get("next")),
                email,
                error: Some(super::capitalize(&e.to_string()) + "."),
                csrf: String::new(),
            };
            let retry_after = match e {
                PlatformError::Throttled { retry_after } => Some(retry_after.max(1)),
                _ => None,
            };
            let mut res = page(&state, &headers, status, again, &uris);
            if let Some(secs) = retry_after {
                res.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(secs),
                );
            }
            res
        }
        Err(e) => error_page(&e),
    }
}

pub async fn logout(State(state): State<AppState>, console: Console, form: Form) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    if let Err(e) = state.platform.logout(&console.session).await {
        return error_page(&e);
    }
    let mut res = see_other(public::UI_LOGIN);
    cookies::clear(res.headers_mut(), cookies::CONSOLE, state.secure());
    res.into_response()
}
