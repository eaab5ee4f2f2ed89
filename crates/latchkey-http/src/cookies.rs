//! The browser cookies of the authorization flow: the CSRF binding and the login session.
//! Both are `HttpOnly`, `SameSite=Lax` (they must come back on the top-level redirects from the
//! login and consent apps), and `Secure` with the `__Host-` prefix when the issuer is https.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use latchkey_core::oauth::authorize::{BrowserCookies, SessionCookie};

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
    let mut out = BrowserCookies::default();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for c in Cookie::split_parse(value).flatten() {
            if c.name() == csrf_name {
                out.csrf = Some(c.value().to_owned());
            } else if c.name() == session_name {
                out.session = Some(c.value().to_owned());
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
    csrf: Option<String>,
    session: Option<SessionCookie>,
) {
    if let Some(value) = csrf {
        append(headers, &build(name(CSRF, secure), value, secure));
    }
    match session {
        Some(SessionCookie::Set { value, max_age }) => {
            let mut c = build(name(SESSION, secure), value, secure);
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
