//! Every path Latchkey serves, in one place: the router, the discovery document, templates and
//! tests use these constants, so they cannot drift apart.

/// Public listener.
pub mod public {
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// The discovery documents of an issuer with a path (RFC 8414 §3.1).
    pub const OPENID_CONFIGURATION_FOR_PATH: &str = "/.well-known/openid-configuration/{*path}";
    pub const OAUTH_AUTHORIZATION_SERVER_FOR_PATH: &str =
        "/.well-known/oauth-authorization-server/{*path}";
    /// RFC 9728 protected resource metadata, by the resource's path.
    pub const PROTECTED_RESOURCE_FOR_PATH: &str = "/.well-known/oauth-protected-resource/{*path}";
    pub const AUTHORIZE: &str = "/oauth2/auth";
    pub const TOKEN: &str = "/oauth2/token";
    pub const REVOKE: &str = "/oauth2/revoke";
    pub const INTROSPECT: &str = "/oauth2/introspect";
    pub const USERINFO: &str = "/userinfo";
    pub const LOGOUT: &str = "/oauth2/sessions/logout";
    /// RFC 7591 dynamic client registration, and RFC 7592 management of one registration.
    pub const REGISTER: &str = "/oauth2/register";
    pub const REGISTER_CLIENT: &str = "/oauth2/register/{client_id}";
    pub const DEVICE_AUTHORIZATION: &str = "/oauth2/device/auth";
    pub const DEVICE_VERIFY: &str = "/oauth2/device/verify";
    pub const STYLESHEET: &str = "/ui/assets/latchkey.css";
    pub const HEALTH_ALIVE: &str = "/health/alive";
    pub const HEALTH_READY: &str = "/health/ready";

    // The platform's pages: the built-in login and consent provider and the consoles.
    pub const UI_HOME: &str = "/ui";
    pub const UI_LOGIN: &str = "/ui/login";
    pub const UI_LOGOUT: &str = "/ui/logout";
    pub const UI_CONSENT: &str = "/ui/consent";
    pub const UI_DEVICE: &str = "/ui/device";
    pub const UI_DEVICE_SUCCESS: &str = "/ui/device/success";
    pub const UI_APPS: &str = "/ui/apps";
    pub const UI_APP_REVOKE: &str = "/ui/apps/{client_id}/revoke";
    pub const UI_DEVELOPER: &str = "/ui/developer";
    pub const UI_DEVELOPER_NEW: &str = "/ui/developer/{account_id}/new";
    pub const UI_DEVELOPER_APP: &str = "/ui/developer/{account_id}/apps/{client_id}";
    pub const UI_DEVELOPER_ACTION: &str = "/ui/developer/{account_id}/apps/{client_id}/{action}";
    pub const UI_ADMIN: &str = "/ui/admin";
    pub const UI_ADMIN_APP_ACTION: &str = "/ui/admin/apps/{client_id}/{action}";
    pub const UI_ADMIN_ACCOUNT_POLICY: &str = "/ui/admin/accounts/{account_id}/policy";

    // The self-service API.
    pub const API_APPS: &str = "/api/v1/accounts/{account_id}/apps";
    pub const API_APP: &str = "/api/v1/accounts/{account_id}/apps/{client_id}";
    pub const API_APP_ROTATE_SECRET: &str =
        "/api/v1/accounts/{account_id}/apps/{client_id}/rotate_secret";
    pub const API_APP_VERIFICATION: &str =
        "/api/v1/accounts/{account_id}/apps/{client_id}/verification";
    pub const API_APP_SCOPE_REQUESTS: &str =
        "/api/v1/accounts/{account_id}/apps/{client_id}/scope_requests";
    pub const API_CATALOG: &str = "/api/v1/catalog";
    /// The self-service API's root: its resource identifier is the issuer with this path.
    pub const API_ROOT: &str = "/api/v1";
    /// RFC 9728 protected resource metadata of the self-service API.
    pub const API_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource/api/v1";
    /// The OpenAPI description of the self-service API.
    pub const API_OPENAPI: &str = "/api/v1/openapi.json";

    /// Every route of the self-service API, for the test that holds its OpenAPI description to
    /// the router.
    pub const API_ALL: &[&str] = &[
        API_APPS,
        API_APP,
        API_APP_ROTATE_SECRET,
        API_APP_VERIFICATION,
        API_APP_SCOPE_REQUESTS,
        API_CATALOG,
        API_OPENAPI,
    ];
}

/// A route with its `{name}` parameters filled in, in order.
pub fn fill(route: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(route.len());
    let mut rest = route;
    let mut values = values.iter();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let v = values.next().copied().unwrap_or_default();
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
    pub const DEVICE_ACCEPT: &str = "/admin/oauth2/auth/requests/device/accept";
    pub const CONSENT_SESSIONS: &str = "/admin/oauth2/auth/sessions/consent";
    pub const LOGIN_SESSIONS: &str = "/admin/oauth2/auth/sessions/login";
    pub const INTROSPECT: &str = "/admin/oauth2/introspect";
    pub const TOKENS: &str = "/admin/oauth2/tokens";
    /// The revocation log (Latchkey's own).
    pub const REVOCATIONS: &str = "/admin/revocations";
    pub const KEY_SET: &str = "/admin/keys/{set}";
    pub const TRUST_ISSUERS: &str = "/admin/trust/grants/jwt-bearer/issuers";
    pub const TRUST_ISSUER: &str = "/admin/trust/grants/jwt-bearer/issuers/{id}";
    pub const METRICS: &str = "/admin/metrics/prometheus";
    pub const VERSION: &str = "/admin/version";
    pub const HEALTH_ALIVE: &str = "/admin/health/alive";
    pub const HEALTH_READY: &str = "/admin/health/ready";
    /// The OpenAPI description of the admin API.
    pub const OPENAPI: &str = "/admin/openapi.json";
    /// The resource servers of the configuration (RFC 8707).
    pub const RESOURCES: &str = "/admin/resources";

    /// Every route of the admin listener, for the test that holds its OpenAPI description to
    /// the router.
    pub const ALL: &[&str] = &[
        RESOURCES,
        CLIENTS,
        CLIENT,
        LOGIN_REQUEST,
        LOGIN_ACCEPT,
        LOGIN_REJECT,
        CONSENT_REQUEST,
        CONSENT_ACCEPT,
        CONSENT_REJECT,
        DEVICE_ACCEPT,
        CONSENT_SESSIONS,
        LOGIN_SESSIONS,
        INTROSPECT,
        TOKENS,
        REVOCATIONS,
        KEY_SET,
        TRUST_ISSUERS,
        TRUST_ISSUER,
        METRICS,
        VERSION,
        HEALTH_ALIVE,
        HEALTH_READY,
        OPENAPI,
    ];
}

/// Joins a base URL (no trailing slash needed) and a route path.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_encodes_parameters() {
        assert_eq!(
            super::fill(super::public::API_APP, &["acme", "a b"]),
            "/api/v1/accounts/acme/apps/a%20b"
        );
    }

    #[test]
    fn join_handles_trailing_slash() {
        assert_eq!(super::join("http://a/", "/x"), "http://a/x");
        assert_eq!(super::join("http://a", "/x"), "http://a/x");
    }
}
