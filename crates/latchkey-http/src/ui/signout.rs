//! `/ui/logout` (the built-in logout provider), `/ui/signed-out`, `/ui/sessions` ("Your
//! sessions") and `/`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::entropy::EntropyExt as _;
use latchkey_core::oauth::logout::SessionView;
use latchkey_core::platform::PlatformError;
use latchkey_core::platform::consent::csp_origin;
use latchkey_types::routes::public;
use serde::Deserialize;

use super::{Console, Form, Nav, ago, error_page, see_other};
use crate::cookies;
use crate::pages::{render, render_with_form_targets};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LogoutQuery {
    logout_challenge: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub platform: String,
    /// The app that asked, for an RP-initiated logout.
    pub asking: Option<String>,
    /// The apps that will be signed out.
    pub apps: Vec<String>,
    pub challenge: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    pub platform: String,
}

fn binding(form_cookie: &str, challenge: &str) -> String {
    format!("{form_cookie}\0{challenge}")
}

fn flow_error(e: latchkey_core::oauth::flow::FlowError) -> Response {
    error_page(&PlatformError::Flow(e))
}

/// `GET /ui/logout?logout_challenge=`: "Sign out of <platform>?", naming the apps.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LogoutQuery>,
) -> Response {
    let request = match state.engine.logout_request(&q.logout_challenge).await {
        Ok(r) => r,
        Err(e) => return flow_error(e),
    };
    let apps = match state.engine.logout_participants(&q.logout_challenge).await {
        Ok(a) => a,
        Err(e) => return flow_error(e),
    };
    let secure = state.secure();
    let existing = cookies::get(&headers, cookies::FORM, secure).filter(|v| v.len() == 43);
    let value = existing
        .clone()
        .unwrap_or_else(|| state.deps.entropy.token());
    let name = |n: &str, id: &str| {
        if n.is_empty() {
            id.to_owned()
        } else {
            n.to_owned()
        }
    };
    // The form's POST ends, after redirects, at the app's post-logout URI or the signed-out
    // page: browsers hold every redirect after a form's POST to its form-action.
    let targets: Vec<String> = request
        .client
        .as_ref()
        .and_then(|c| c.post_logout_redirect_uris.clone())
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(
            state.engine.settings().post_logout_url.as_str(),
        ))
        .filter_map(csp_origin)
        .collect();
    let page = LogoutPage {
        platform: state.platform.settings().name.clone(),
        asking: request.client.map(|c| {
            name(
                c.client_name.as_deref().unwrap_or_default(),
                c.client_id.as_deref().unwrap_or_default(),
            )
        }),
        apps: apps
            .iter()
            .map(|p| name(&p.client_name, &p.client_id))
            .collect(),
        csrf: state
            .platform
            .form_token("logout", &binding(&value, &q.logout_challenge)),
        challenge: q.logout_challenge,
    };
    let mut res = render_with_form_targets(StatusCode::OK, &page, &targets);
    if existing.is_none() {
        cookies::set(res.headers_mut(), cookies::FORM, secure, value, None);
    }
    res
}

/// `POST /ui/logout`: the logout provider's answer (with a `logout_challenge`), or the console's
/// "Sign out" (without).
pub async fn post(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let Some(challenge) = form.get("logout_challenge").filter(|c| !c.is_empty()) else {
        return match Console::from_headers(&headers, &state, public::UI_APPS).await {
            Ok(console) => super::login::logout(State(state), console, form).await,
            Err(res) => res,
        };
    };
    let secure = state.secure();
    let form_cookie = cookies::get(&headers, cookies::FORM, secure).unwrap_or_default();
    if let Err(e) = state.platform.check_form_token(
        "logout",
        &binding(&form_cookie, challenge),
        form.get("csrf_token").unwrap_or_default(),
    ) {
        return error_page(&e);
    }
    if form.get("decision") != Some("sign_out") {
        return match state.engine.reject_logout(challenge).await {
            Ok(()) => see_other(public::UI_APPS),
            Err(e) => flow_error(e),
        };
    }
    let redirect_to = match state.engine.accept_logout(challenge).await {
        Ok(r) => r.redirect_to,
        Err(e) => return flow_error(e),
    };
    // The platform's own pages sign out too; the engine's session ends on the verifier.
    let mut res = see_other(&redirect_to);
    if let Ok(console) = Console::from_headers(&headers, &state, public::UI_APPS).await {
        if let Err(e) = state.platform.end_console_session(&console.session).await {
            return error_page(&e);
        }
        cookies::clear(res.headers_mut(), cookies::CONSOLE, secure);
    }
    res
}

/// `GET /ui/signed-out`: where a logout ends without an app to go back to.
pub async fn signed_out(State(state): State<AppState>) -> Response {
    render(
        StatusCode::OK,
        &SignedOutPage {
            platform: state.platform.settings().name.clone(),
        },
    )
}

/// `GET /`: the signed-in go to their connected apps, everyone else to the sign-in page.
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match Console::from_headers(&headers, &state, public::UI_APPS).await {
        Ok(_) => Redirect::to(public::UI_APPS).into_response(),
        Err(_) => Redirect::to(public::UI_LOGIN).into_response(),
    }
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub nav: Nav,
    pub sessions: Vec<SessionView>,
    pub now: i64,
    /// The id of this browser's session, when it has one.
    pub current: Option<String>,
}

// Helpers the template calls: askama passes references and calls them as methods.
#[allow(clippy::unused_self, clippy::trivially_copy_pass_by_ref)]
impl SessionsPage {
    fn ago(&self, t: &i64) -> String {
        ago(self.now, *t)
    }

    fn last_active(&self, s: &SessionView) -> String {
        s.session.last_active_at.map_or_else(
            || "not active since".to_owned(),
            |t| format!("last active {}", ago(self.now, t)),
        )
    }

    fn user_agent(&self, s: &SessionView) -> String {
        s.session
            .data
            .user_agent
            .clone()
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// A short name for the browser and system, from what its user agent says.
    fn device(&self, s: &SessionView) -> String {
        device_name(s.session.data.user_agent.as_deref().unwrap_or_default())
    }

    fn app_names(&self, s: &SessionView) -> String {
        s.apps
            .iter()
            .map(|a| {
                if a.client_name.is_empty() {
                    a.client_id.clone()
                } else {
                    a.client_name.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn is_current(&self, s: &SessionView) -> bool {
        self.current.as_deref() == Some(s.session.id.as_str())
    }

    fn end_url(&self, sid: &str) -> String {
        latchkey_types::routes::fill(public::UI_SESSION_END, &[sid])
    }
}

/// "Chrome on Linux" from a user agent; "Unknown browser" when it says nothing we know.
pub fn device_name(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "Unknown browser".to_owned(),
    }
}

/// `GET /ui/sessions`: "Your sessions".
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    console: Console,
) -> Response {
    let cookie = cookies::read(&headers, state.secure()).session;
    match state.engine.sessions_of(&console.principal.user.id).await {
        Ok(sessions) => render(
            StatusCode::OK,
            &SessionsPage {
                nav: console.nav(&state, "sessions"),
                current: cookie.and_then(|c| {
                    let hash = latchkey_core::crypto::lookup_key(c.expose());
                    sessions
                        .iter()
                        .find(|s| s.session.cookie_hash == hash)
                        .map(|s| s.session.id.clone())
                }),
                sessions,
                now: state.deps.clock.now(),
            },
        ),
        Err(e) => error_page(&PlatformError::Store(e)),
    }
}

/// `POST /ui/sessions/{sid}/end`: signs one session out (with back-channel logouts).
pub async fn end(
    State(state): State<AppState>,
    console: Console,
    Path(sid): Path<String>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    match state
        .engine
        .end_own_session(&console.principal.user.id, &sid)
        .await
    {
        Ok(true) => {
            crate::backchannel::wake();
            see_other(public::UI_SESSIONS)
        }
        Ok(false) => error_page(&PlatformError::NotFound("the session")),
        Err(e) => error_page(&PlatformError::Store(e)),
    }
}

/// `POST /ui/sessions/end-all`: signs every session of the user out, this console's too.
pub async fn end_all(State(state): State<AppState>, console: Console, form: Form) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    if let Err(e) = state.platform.logout(&console.session).await {
        return error_page(&e);
    }
    crate::backchannel::wake();
    let mut res = see_other(public::UI_SIGNED_OUT);
    cookies::clear(res.headers_mut(), cookies::CONSOLE, state.secure());
    res
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn device_names() {
        assert_eq!(
            device_name(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
            ),
            "Chrome on Linux"
        );
        assert_eq!(
            device_name("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
            "Safari on iPhone"
        );
        assert_eq!(device_name(""), "Unknown browser");
    }
}
