//! Consent sessions (grants) and login sessions, as the admin API manages them.

use latchkey_types::flow::{ConsentRequest, ConsentSession, ConsentSessionClaims, OidcContext};
use serde_json::Value;

use super::Engine;
use super::records::Grant;
use crate::audit::{Actor, AuditEntry};
use crate::clock::rfc3339;
use crate::revocations::{RevocationKind, RevokedIds};
use crate::store::{SessionSelector, StoreError};

fn claims(v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| v.clone())
}

impl Engine {
    /// `GET /admin/oauth2/auth/sessions/consent?subject=`: the subject's active grants.
    pub async fn consent_sessions(&self, subject: &str) -> Result<Vec<ConsentSession>, StoreError> {
        let mut tx = self.deps.store.read().await?;
        let grants = tx.grants().list_active(subject).await?;
        let mut out = Vec::with_capacity(grants.len());
        for g in grants {
            let Some(client) = tx.clients().get(&g.client_id).await? else {
                continue;
            };
            out.push(consent_session(&g, client.to_wire()));
        }
        Ok(out)
    }

    /// `DELETE /admin/oauth2/auth/sessions/consent?subject=[&client=]`: revokes the grants and
    /// every token issued under them, in one transaction. Returns how many grants.
    pub async fn revoke_consent_sessions(
        &self,
        subject: &str,
        client_id: Option<&str>,
        actor: &Actor,
    ) -> Result<usize, StoreError> {
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.begin().await?;
        let revoked = tx
            .grants()
            .revoke_for_subject(subject, client_id, now)
            .await?;
        for grant_id in &revoked {
            let tokens = tx.tokens().revoke_grant(grant_id, now).await?;
            tx.audit()
                .append(&AuditEntry {
                    id: self.deps.ordered_id(),
                    occurred_at: now,
                    actor: actor.clone(),
                    account_id: None,
                    action: "grant.revoke".into(),
                    target_kind: "grant".into(),
                    target_id: grant_id.clone(),
                    details: serde_json::json!({ "subject": subject, "client_id": client_id, "tokens": tokens }),
                })
                .await?;
        }
        for grant_id in &revoked {
            tx.revocation_log()
                .append(
                    RevocationKind::ConsentSession,
                    &RevokedIds::grant(grant_id, client_id, Some(subject)),
                    now,
                )
                .await?;
        }
        tx.commit().await?;
        Ok(revoked.len())
    }

    /// `DELETE /admin/oauth2/auth/sessions/login?subject=`: ends the subject's login sessions,
    /// with back-channel logouts (see [`Engine::end_login_sessions`]).
    pub async fn revoke_login_sessions(&self, subject: &str) -> Result<u64, StoreError> {
        let written = self
            .end_login_sessions(
                SessionSelector::Subject(subject.to_owned()),
                RevocationKind::LoginSession,
            )
            .await?;
        Ok(written.ended.len() as u64)
    }

    /// `DELETE /admin/oauth2/auth/sessions/login?sid=`: ends one login session, with
    /// back-channel logouts (Hydra's headless logout).
    pub async fn revoke_login_session(&self, sid: &str) -> Result<bool, StoreError> {
        let Some(session) = self
            .deps
            .store
            .read()
            .await?
            .login_sessions()
            .get(sid)
            .await?
        else {
            return Ok(false);
        };
        let written = self
            .end_login_sessions(
                SessionSelector::One {
                    sid: session.id,
                    subject: session.subject,
                },
                RevocationKind::LoginSession,
            )
            .await?;
        Ok(!written.ended.is_empty())
    }

    /// Revokes the subject's grant recorded by one consent (`consent_request_id`), and its tokens.
    pub async fn revoke_consent_request(
        &self,
        subject: &str,
        consent_request_id: &str,
        actor: &Actor,
    ) -> Result<usize, StoreError> {
        let grants = self
            .deps
            .store
            .read()
            .await?
            .grants()
            .list_active(subject)
            .await?;
        let Some(grant) = grants
            .into_iter()
            .find(|g| g.data.consent_request_id == consent_request_id)
        else {
            return Ok(0);
        };
        self.revoke_consent_sessions(subject, Some(&grant.client_id), actor)
            .await
    }

    /// `DELETE /admin/oauth2/tokens?client_id=`: revokes every token of a client.
    pub async fn revoke_client_tokens(
        &self,
        client_id: &str,
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.begin().await?;
        let n = tx.tokens().revoke_client(client_id, now).await?;
        tx.audit()
            .append(&AuditEntry {
                id: self.deps.ordered_id(),
                occurred_at: now,
                actor: actor.clone(),
                account_id: None,
                action: "client.tokens_revoked".into(),
                target_kind: "client".into(),
                target_id: client_id.to_owned(),
                details: serde_json::json!({ "tokens": n }),
            })
            .await?;
        tx.revocation_log()
            .append(
                RevocationKind::ClientTokens,
                &RevokedIds::client(client_id),
                now,
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

fn consent_session(g: &Grant, client: latchkey_types::client::OAuth2Client) -> ConsentSession {
    ConsentSession {
        consent_request: ConsentRequest {
            challenge: g.data.consent_request_id.clone(),
            consent_request_id: g.data.consent_request_id.clone(),
            acr: g.data.acr.clone().unwrap_or_default(),
            amr: g.data.amr.clone(),
            client,
            context: g
                .data
                .context
                .clone()
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
            login_challenge: g.data.consent_request_id.clone(),
            login_session_id: g.login_session_id.clone().unwrap_or_default(),
            oidc_context: OidcContext::default(),
            request_url: g.data.request_url.clone(),
            requested_access_token_audience: g.data.requested_audience.clone(),
            requested_scope: g.data.requested_scope.clone(),
            skip: false,
            subject: g.subject.clone(),
        },
        consent_request_id: g.data.consent_request_id.clone(),
        grant_access_token_audience: g.audience.clone(),
        grant_scope: g.scope.to_vec(),
        handled_at: rfc3339(g.updated_at),
        remember: g.remember,
        remember_for: g.data.remember_for,
        session: ConsentSessionClaims {
            access_token: claims(&g.session_access_token),
            id_token: claims(&g.session_id_token),
        },
        accounts: Some(g.accounts.clone()).filter(|a| !a.is_empty()),
    }
}
