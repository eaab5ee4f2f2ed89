//! The browser cookies of the authorization flow: the CSRF binding and the login session.
//! Both are `HttpOnly`, `SameSite=Lax` (they must come back on the top-level redirects from the
//! login and consent apps), and `Secure` with the `__Host-` prefix when the issuer is https.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use latchkey_core::oauth::authorize::{BrowserCookies, SessionCookie};
use latchkey_core::secret::SecretString;

const CSRF: &str = "latchkey_csrf";
const SESSION: &str = "latchkey_session";

fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The flow's cookies from a request.
pub fn read(headers: &HeaderMap, secure: bool) -> BrowserCookies {
    let (csrf_name, session_name) = (name(CSRF, secure), name(SESSION, secure));
    let mut out = BrowserCookies {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ..BrowserCookies::default()
    };
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for c in Cookie::split_parse(value).flatten() {
            if c.name() == csrf_name {
                out.csrf = Some(SecretString::new(c.value()));
            } else if c.name() == session_name {
                out.session = Some(SecretString::new(c.value()));
            }
        }
    }
    out
}

fn build(name: String, value: String, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(secure);
    c
}

fn append(headers: &mut HeaderMap, c: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Adds the `Set-Cookie` headers the engine asked for.
pub fn write(
    headers: &mut HeaderMap,
    secure: bool,
    csrf: Option<SecretString>,
    session: Option<SessionCookie>,
) {
    if let Some(value) = csrf {
        append(
            headers,
            &build(name(CSRF, secure), value.into_exposed(), secure),
        );
    }
    match session {
        Some(SessionCookie::Set { value, max_age }) => {
            let mut c = build(name(SESSION, secure), value.into_exposed(), secure);
            c.set_max_age(cookie::time::Duration::seconds(max_age));
            append(headers, &c);
        }
        Some(SessionCookie::Clear) => {
            let mut c = build(name(SESSION, secure), String::new(), secure);
            c.make_removal();
            append(headers, &c);
        }
        None => {}
    }
}

/// The session cookie of the platform's pages.
pub const CONSOLE: &str = "latchkey_console";
/// A random value the login form's CSRF token is bound to, before anyone is signed in.
pub const FORM: &str = "latchkey_form";

/// The value of one cookie.
pub fn get(headers: &HeaderMap, base: &str, secure: bool) -> Option<String> {
    let wanted = name(base, secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v).flatten())
        .find(|c| c.name() == wanted)
        .map(|c| c.value().to_owned())
}

/// Sets a cookie; `max_age: None` makes it last as long as the browser session.
pub fn set(headers: &mut HeaderMap, base: &str, secure: bool, value: String, max_age: Option<i64>) {
    let mut c = build(name(base, secure), value, secure);
    if let Some(age) = max_age {
        c.set_max_age(cookie::time::Duration::seconds(age));
    }
    append(headers, &c);
}

/// Removes a cookie.
pub fn clear(headers: &mut HeaderMap, base: &str, secure: bool) {
    let mut c = build(name(base, secure), String::new(), secure);
    c.make_removal();
    append(headers, &c);
}
