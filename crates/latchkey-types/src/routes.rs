//! Every path Latchkey serves, in one place: the router, the discovery document, templates and
//! tests use these constants, so they cannot drift apart.

/// Public listener.
pub mod public {
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const JWKS: &str = "/.well-known/jwks.json";
    pub const AUTHORIZE: &str = "/oauth2/auth";
    pub const TOKEN: &str = "/oauth2/token";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const INTROSPECT: &str = "/oauth2/introspect";
    pub const USERINFO: &str = "/userinfo";
    pub const LOGOUT: &str = "/oauth2/sessions/logout";
    pub const FALLBACK_LOGIN: &str = "/oauth2/fallbacks/login";
    pub const FALLBACK_CONSENT: &str = "/oauth2/fallbacks/consent";
    pub const FALLBACK_ERROR: &str = "/oauth2/fallbacks/error";
    pub const STYLESHEET: &str = "/ui/assets/latchkey.css";
    pub const HEALTH_ALIVE: &str = "/health/alive";
    pub const HEALTH_READY: &str = "/health/ready";
}

/// Admin listener (Hydra v2 paths).
pub mod admin {
    pub const CLIENTS: &str = "/admin/clients";
    pub const CLIENT: &str = "/admin/clients/{id}";
    pub const LOGIN_REQUEST: &str = "/admin/oauth2/auth/requests/login";
    pub const LOGIN_ACCEPT: &str = "/admin/oauth2/auth/requests/login/accept";
    pub const LOGIN_REJECT: &str = "/admin/oauth2/auth/requests/login/reject";
    pub const CONSENT_REQUEST: &str = "/admin/oauth2/auth/requests/consent";
    pub const CONSENT_ACCEPT: &str = "/admin/oauth2/auth/requests/consent/accept";
    pub const CONSENT_REJECT: &str = "/admin/oauth2/auth/requests/consent/reject";
    pub const CONSENT_SESSIONS: &str = "/admin/oauth2/auth/sessions/consent";
    pub const LOGIN_SESSIONS: &str = "/admin/oauth2/auth/sessions/login";
    pub const INTROSPECT: &str = "/admin/oauth2/introspect";
    pub const TOKENS: &str = "/admin/oauth2/tokens";
    pub const KEY_SET: &str = "/admin/keys/{set}";
    pub const METRICS: &str = "/admin/metrics/prometheus";
    pub const VERSION: &str = "/admin/version";
    pub const HEALTH_ALIVE: &str = "/admin/health/alive";
    pub const HEALTH_READY: &str = "/admin/health/ready";
}

/// Joins a base URL (no trailing slash needed) and a route path.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn join_handles_trailing_slash() {
        assert_eq!(super::join("http://a/", "/x"), "http://a/x");
        assert_eq!(super::join("http://a", "/x"), "http://a/x");
    }
}
