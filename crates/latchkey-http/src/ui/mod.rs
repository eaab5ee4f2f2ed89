//! The platform's pages: the built-in login and consent provider, connected apps, the developer
//! console and the operator console. Each handler reads the form, calls one platform service and
//! renders a page; the rules live in `latchkey_core::platform`.

mod admin;
mod connected;
mod consent;
mod developer;
mod device;
mod login;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use latchkey_core::platform::model::ConsoleSession;
use latchkey_core::platform::{PlatformError, Principal};
use latchkey_types::routes::public;

use crate::cookies;
use crate::pages::render;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(public::UI_HOME, get(home))
        .route(public::UI_LOGIN, get(login::get).post(login::post))
        .route(public::UI_LOGOUT, post(login::logout))
        .route(public::UI_CONSENT, get(consent::get).post(consent::post))
        .route(public::UI_DEVICE, get(device::get).post(device::post))
        .route(public::UI_DEVICE_SUCCESS, get(device::success))
        .route(public::UI_APPS, get(connected::get))
        .route(public::UI_APP_REVOKE, post(connected::revoke))
        .route(public::UI_DEVELOPER, get(developer::index))
        .route(
            public::UI_DEVELOPER_NEW,
            get(developer::new_form).post(developer::create),
        )
        .route(public::UI_DEVELOPER_APP, get(developer::show))
        .route(public::UI_DEVELOPER_ACTION, post(developer::action))
        .route(public::UI_ADMIN, get(admin::get))
        .route(public::UI_ADMIN_APP_ACTION, post(admin::app_action))
        .route(public::UI_ADMIN_ACCOUNT_POLICY, post(admin::account_policy))
}

async fn home() -> Redirect {
    Redirect::to(public::UI_APPS)
}

/// The navigation bar of the console pages.
pub struct Nav {
    pub platform: String,
    pub email: String,
    pub operator: bool,
    pub admin: bool,
    pub developer: bool,
    pub csrf: String,
    pub current: &'static str,
}

/// A signed-in user on a console page; anyone else is sent to the login page.
pub struct Console {
    pub session: ConsoleSession,
    pub principal: Principal,
}

impl Console {
    pub fn csrf(&self, state: &AppState) -> String {
        state.platform.form_token("console", &self.session.id)
    }

    pub fn check_csrf(&self, state: &AppState, form: &Form) -> Result<(), PlatformError> {
        state.platform.check_form_token(
            "console",
            &self.session.id,
            form.get("csrf_token").unwrap_or_default(),
        )
    }

    pub fn nav(&self, state: &AppState, current: &'static str) -> Nav {
        use latchkey_core::platform::model::Role;
        let p = &self.principal;
        Nav {
            platform: state.platform.settings().name.clone(),
            email: p.user.email.clone(),
            operator: p.user.is_operator,
            admin: p.memberships.iter().any(|m| m.role.at_least(Role::Admin)),
            developer: p
                .memberships
                .iter()
                .any(|m| m.role.at_least(Role::Developer)),
            csrf: self.csrf(state),
            current,
        }
    }
}

/// The way to the login page, coming back to `page` (a path and its query, such as the consent
/// page's `consent_challenge`) afterwards.
fn to_login(page: &str) -> Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", page);
    Redirect::to(&format!("{}?{}", public::UI_LOGIN, q.finish())).into_response()
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
        let Some(cookie) = cookies::get(&parts.headers, cookies::CONSOLE, state.secure()) else {
            return Err(to_login(&path));
        };
        match state.platform.session(&cookie).await {
            Ok(Some((session, principal))) => Ok(Self { session, principal }),
            Ok(None) => Err(to_login(&path)),
            Err(e) => Err(error_page(&e)),
        }
    }
}

/// The peer's address, when the server knows it (it does behind `serve`; in-process tests
/// have none).
pub struct PeerIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A form body, every field kept in order (checkbox lists repeat their name).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes(&bytes).map(Form).map_err(|_| {
            error_page(&PlatformError::invalid(
                "form",
                "the form could not be read",
            ))
        })
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub heading: String,
    pub message: String,
    pub back: Option<(String, String)>,
}

/// A page that says what went wrong.
pub fn error_page(e: &PlatformError) -> Response {
    if let PlatformError::Store(s)
    | PlatformError::Flow(latchkey_core::oauth::flow::FlowError::Store(s)) = e
    {
        tracing::error!(error = %s, "platform page failed");
    }
    let status = crate::error::platform_status(e);
    let (heading, message) = match e {
        PlatformError::Flow(latchkey_core::oauth::flow::FlowError::Handled { .. }) => (
            "This request was already handled",
            "The sign-in or consent form was already submitted. Go back to the application and start again."
                .to_owned(),
        ),
        PlatformError::Flow(latchkey_core::oauth::flow::FlowError::NotFound) => (
            "This request has expired",
            "The sign-in request is unknown or has expired. Go back to the application and start again."
                .to_owned(),
        ),
        PlatformError::Store(_) | PlatformError::Internal(_) => (
            "Something went wrong on our side",
            "The server could not complete the request. Try again in a moment.".to_owned(),
        ),
        PlatformError::Forbidden(_) | PlatformError::Csrf => ("Not allowed", e.to_string()),
        PlatformError::NotFound(_) => ("Not found", format!("{}.", capitalize(&e.to_string()))),
        _ => ("The request could not be completed", capitalize(&e.to_string())),
    };
    render(
        status,
        &MessagePage {
            heading: heading.into(),
            message,
            back: None,
        },
    )
}

pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A 303 to `location` (after a POST).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Relative time for people: "3 minutes ago".
pub fn ago(now: i64, then: i64) -> String {
    let d = (now - then).max(0);
    match d {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", d / 60),
        3600..86_400 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}
