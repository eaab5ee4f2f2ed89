//! Resource indicators (RFC 8707): the resource servers tokens may be issued for, and the
//! `resource` parameter, mapped onto the audience machinery Hydra has (a client's `audience`,
//! the `audience` parameter, the consent's `grant_access_token_audience`). A token's `aud` is
//! the resources and audiences it was asked for; its scope is what those resources accept.

use latchkey_types::Scope;
use latchkey_types::routes::public;
use serde::Serialize;

use super::params::Params;
use crate::client::Client;
use crate::config::ResourceConfig;

/// Longest `resource` value accepted.
pub const MAX_RESOURCE_LEN: usize = 2048;
/// Most `resource` parameters in one request.
pub const MAX_RESOURCES: usize = 16;

/// One resource server (`[[resources]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceServer {
    /// The resource identifier: an absolute URI without a fragment.
    pub uri: String,
    /// Its name, as the consent screen shows it.
    pub name: String,
    /// The catalog scopes it accepts.
    pub scopes: Vec<String>,
}

/// Why a `resource` (or `audience`) was refused: `invalid_target`, except an audience outside
/// the client's, which stays Hydra's `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("The resource {0} is not an absolute URI.")]
    NotAbsolute(String),
    #[error("The resource {0} has a fragment.")]
    Fragment(String),
    #[error("A resource is longer than {MAX_RESOURCE_LEN} characters.")]
    TooLong,
    #[error("At most {MAX_RESOURCES} resources may be requested at once.")]
    TooMany,
    #[error("The resource {0} is not a resource server of this authorization server.")]
    Unknown(String),
    #[error("The resource {0} was not granted.")]
    NotGranted(String),
    #[error("The client may not request the audience {0}.")]
    AudienceNotAllowed(String),
}

/// The declared resource servers. The platform's own API (`/api/v1`) is always one of them.
#[derive(Debug, Clone, Default)]
pub struct ResourceServers(Vec<ResourceServer>);

impl ResourceServers {
    /// The configured resources, and the platform API's (`apps.write`) under `issuer`.
    pub fn from_config(resources: &[ResourceConfig], issuer: &str, platform: &str) -> Self {
        let mut list = vec![ResourceServer {
            uri: api_resource(issuer),
            name: format!("{platform} API"),
            scopes: vec![crate::platform::catalog::APPS_WRITE.to_owned()],
        }];
        list.extend(resources.iter().map(|r| ResourceServer {
            uri: r.uri.clone(),
            name: r.name.clone(),
            scopes: r.scopes.clone(),
        }));
        Self(list)
    }

    pub fn all(&self) -> &[ResourceServer] {
        &self.0
    }

    pub fn get(&self, uri: &str) -> Option<&ResourceServer> {
        self.0.iter().find(|r| r.uri == uri)
    }

    /// The audience a request asks for: its `audience` words, each within the client's (Hydra),
    /// then its `resource` values, each a declared resource server or within the client's
    /// audience (RFC 8707). Duplicates are dropped, the order kept.
    pub fn requested(&self, params: &Params, client: &Client) -> Result<Vec<String>, TargetError> {
        let mut out: Vec<String> = Vec::new();
        for a in audience_words(params) {
            if !client.audience.contains(&a) {
                return Err(TargetError::AudienceNotAllowed(a));
            }
            if !out.contains(&a) {
                out.push(a);
            }
        }
        for r in resource_values(params)? {
            if self.get(&r).is_none() && !client.audience.contains(&r) {
                return Err(TargetError::Unknown(r));
            }
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The audience of an access token asked for at the token endpoint, out of `granted`: the
    /// `audience` words and `resource` values, each among those granted (RFC 8707 §2.2, RFC 8693
    /// §2.1), or all of `granted`.
    pub fn narrowed(
        &self,
        params: &Params,
        granted: &[String],
    ) -> Result<Vec<String>, TargetError> {
        let mut asked = audience_words(params);
        asked.extend(resource_values(params)?);
        if asked.is_empty() {
            return Ok(granted.to_vec());
        }
        let mut out: Vec<String> = Vec::new();
        for r in asked {
            if !granted.contains(&r) {
                return Err(if self.get(&r).is_none() {
                    TargetError::Unknown(r)
                } else {
                    TargetError::NotGranted(r)
                });
            }
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// `scope` as far as `audience` accepts it. When the audience names declared resource
    /// servers, a scope that some resource server accepts is kept only if one of those named
    /// does; scopes no resource server claims (`openid`, `offline_access`, …) are kept.
    pub fn scope_for(&self, scope: &Scope, audience: &[String]) -> Scope {
        let named: Vec<&ResourceServer> = audience.iter().filter_map(|a| self.get(a)).collect();
        if named.is_empty() {
            return scope.clone();
        }
        let claimed = |s: &str| self.0.iter().any(|r| r.scopes.iter().any(|x| x == s));
        let accepted = |s: &str| named.iter().any(|r| r.scopes.iter().any(|x| x == s));
        let kept: Vec<&str> = scope
            .iter()
            .filter(|s| accepted(s) || !claimed(s))
            .collect();
        Scope::from_tokens(kept).unwrap_or_default()
    }

    /// The names of the declared resource servers in `audience`, for the consent screen.
    pub fn names<'a>(&'a self, audience: &'a [String]) -> impl Iterator<Item = &'a ResourceServer> {
        audience.iter().filter_map(|a| self.get(a))
    }
}

/// The platform API's resource identifier under `issuer`.
pub fn api_resource(issuer: &str) -> String {
    latchkey_types::routes::join(issuer.trim_end_matches('/'), public::API_ROOT)
}

fn audience_words(params: &Params) -> Vec<String> {
    params
        .pairs()
        .iter()
        .filter(|(k, _)| k == "audience")
        .flat_map(|(_, v)| v.split(' '))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every `resource` value, each checked to be an absolute URI without a fragment.
pub fn resource_values(params: &Params) -> Result<Vec<String>, TargetError> {
    let values: Vec<&str> = params
        .pairs()
        .iter()
        .filter(|(k, v)| k == "resource" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if values.len() > MAX_RESOURCES {
        return Err(TargetError::TooMany);
    }
    values.into_iter().map(check_resource).collect()
}

/// A resource identifier as RFC 8707 §2 has it: absolute, without a fragment.
pub fn check_resource(value: &str) -> Result<String, TargetError> {
    if value.len() > MAX_RESOURCE_LEN {
        return Err(TargetError::TooLong);
    }
    let shown = || value.chars().take(200).collect::<String>();
    if value.contains('#') {
        return Err(TargetError::Fragment(shown()));
    }
    match url::Url::parse(value) {
        Ok(u) if !u.cannot_be_a_base() && !value.chars().any(char::is_whitespace) => {
            Ok(value.to_owned())
        }
        _ => Err(TargetError::NotAbsolute(shown())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers() -> ResourceServers {
        ResourceServers::from_config(
            &[ResourceConfig {
                uri: "https://mcp.example.com/mcp".into(),
                name: "Example MCP server".into(),
                scopes: vec!["dns.read".into(), "dns.write".into()],
            }],
            "https://id.example.com",
            "Example",
        )
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())))
    }

    fn client(audience: &[&str]) -> Client {
        crate::client::test_client(
            "c1",
            &serde_json::json!({ "redirect_uris": ["https://a.example/cb"], "audience": audience }),
        )
    }

    #[test]
    fn resources_are_absolute_without_fragments_and_known() {
        let s = servers();
        let c = client(&["https://hydra-style.example"]);
        assert_eq!(
            s.requested(&params(&[("resource", "https://mcp.example.com/mcp")]), &c),
            Ok(vec!["https://mcp.example.com/mcp".to_owned()])
        );
        for (value, expected) in [
            (
                "https://mcp.example.com/mcp#x",
                TargetError::Fragment("https://mcp.example.com/mcp#x".into()),
            ),
            ("/mcp", TargetError::NotAbsolute("/mcp".into())),
            ("mailto:x", TargetError::NotAbsolute("mailto:x".into())),
            (
                "https://other.example/mcp",
                TargetError::Unknown("https://other.example/mcp".into()),
            ),
        ] {
            assert_eq!(
                s.requested(&params(&[("resource", value)]), &c),
                Err(expected),
                "{value}"
            );
        }
        // A resource in the client's audience is the same mechanism as Hydra's audience.
        assert!(
            s.requested(&params(&[("resource", "https://hydra-style.example")]), &c)
                .is_ok()
        );
        assert_eq!(
            s.requested(&params(&[("audience", "https://nope.example")]), &c),
            Err(TargetError::AudienceNotAllowed(
                "https://nope.example".into()
            ))
        );
    }

    #[test]
    fn a_token_request_narrows_to_granted_resources_only() {
        let s = servers();
        let granted = vec![
            "https://mcp.example.com/mcp".to_owned(),
            api_resource("https://id.example.com"),
        ];
        assert_eq!(s.narrowed(&params(&[]), &granted), Ok(granted.clone()));
        assert_eq!(
            s.narrowed(
                &params(&[("resource", "https://mcp.example.com/mcp")]),
                &granted
            ),
            Ok(vec!["https://mcp.example.com/mcp".to_owned()])
        );
        assert_eq!(
            s.narrowed(
                &params(&[("resource", "https://mcp.example.com/mcp")]),
                &granted[1..]
            ),
            Err(TargetError::NotGranted(
                "https://mcp.example.com/mcp".into()
            ))
        );
        assert_eq!(
            s.narrowed(&params(&[("resource", "https://x.example/")]), &granted),
            Err(TargetError::Unknown("https://x.example/".into()))
        );
    }

    #[test]
    fn scopes_are_what_the_named_resources_accept() {
        let s = servers();
        let scope = Scope::parse("openid offline_access dns.read apps.write").expect("scope");
        let mcp = vec!["https://mcp.example.com/mcp".to_owned()];
        assert_eq!(
            s.scope_for(&scope, &mcp).to_string(),
            "openid offline_access dns.read"
        );
        let api = vec![api_resource("https://id.example.com")];
        assert_eq!(
            s.scope_for(&scope, &api).to_string(),
            "openid offline_access apps.write"
        );
        assert_eq!(s.scope_for(&scope, &[]), scope);
        let hydra = vec!["https://hydra-style.example".to_owned()];
        assert_eq!(s.scope_for(&scope, &hydra), scope);
    }
}
