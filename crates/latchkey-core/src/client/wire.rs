//! The client in Hydra's JSON shape.

use latchkey_types::client::OAuth2Client;

use super::Client;
use crate::clock::rfc3339;
use crate::config::AccessTokenStrategy;

impl Client {
    /// The client as the admin API shows it (never with a secret).
    pub fn to_wire(&self) -> OAuth2Client {
        OAuth2Client {
            client_id: Some(self.id.clone()),
            client_name: Some(self.name.clone()),
            client_secret: None,
            client_secret_expires_at: Some(0),
            redirect_uris: Some(self.redirect_uris.clone()),
            post_logout_redirect_uris: Some(self.post_logout_redirect_uris.clone()),
            grant_types: Some(
                self.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            response_types: Some(self.response_types.clone()),
            scope: Some(self.scope.to_string()),
            audience: Some(self.audience.clone()),
            token_endpoint_auth_method: Some(self.token_endpoint_auth_method.as_str().to_owned()),
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg.clone(),
            id_token_signed_response_alg: self.id_token_signed_response_alg.clone(),
            userinfo_signed_response_alg: self.userinfo_signed_response_alg.clone(),
            jwks: self.jwks.clone(),
            owner: Some(self.owner.clone()),
            logo_uri: Some(self.logo_uri.clone()),
            client_uri: Some(self.client_uri.clone()),
            policy_uri: Some(self.policy_uri.clone()),
            tos_uri: Some(self.tos_uri.clone()),
            contacts: Some(self.contacts.clone()),
            metadata: Some(self.metadata.clone()),
            skip_consent: Some(self.skip_consent),
            skip_logout_consent: Some(self.skip_logout_consent),
            frontchannel_logout_uri: self.logout.frontchannel_uri.clone(),
            frontchannel_logout_session_required: Some(self.logout.frontchannel_session_required),
            backchannel_logout_uri: self.logout.backchannel_uri.clone(),
            backchannel_logout_session_required: Some(self.logout.backchannel_session_required),
            access_token_strategy: Some(
                match self.access_token_strategy {
                    None => "",
                    Some(AccessTokenStrategy::Opaque) => "opaque",
                    Some(AccessTokenStrategy::Jwt) => "jwt",
                }
                .to_owned(),
            ),
            subject_type: Some("public".to_owned()),
            created_at: Some(rfc3339(self.created_at)),
            updated_at: Some(rfc3339(self.updated_at)),
            device_authorization_grant_access_token_lifespan: self
                .device_lifespan
                .access
                .map(go_duration),
            device_authorization_grant_id_token_lifespan: self.device_lifespan.id.map(go_duration),
            device_authorization_grant_refresh_token_lifespan: self
                .device_lifespan
                .refresh
                .map(go_duration),
            ..OAuth2Client::default()
        }
    }
}

/// Seconds as Hydra writes a lifespan: a Go duration (`"1h0m0s"`, `"10m0s"`, `"30s"`).
fn go_duration(secs: i64) -> serde_json::Value {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    serde_json::Value::String(match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    })
}
