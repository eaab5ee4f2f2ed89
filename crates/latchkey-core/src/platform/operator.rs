//! The operator console: suspend and reinstate apps, review restricted scopes, read the audit
//! log. Account admins read their accounts' audit entries.

use super::apps::AppView;
use super::model::Role;
use super::{Platform, PlatformError, Principal};
use crate::audit::{AuditEntry, AuditFilter};
use crate::client::ClientStatus;
use crate::store::write_scope_withdrawal;

/// `scope` without `token`.
fn without(scope: &latchkey_types::Scope, token: &str) -> latchkey_types::Scope {
    latchkey_types::Scope::from_tokens(scope.iter().filter(|s| *s != token)).unwrap_or_default()
}

const AUDIT_PAGE: u32 = 200;

fn operator(principal: &Principal) -> Result<(), PlatformError> {
    if principal.user.is_operator && principal.token_accounts.is_none() {
        Ok(())
    } else {
        Err(PlatformError::Forbidden(
            "only the platform's operators may do this".into(),
        ))
    }
}

impl Platform {
    /// Every app, newest first (operators only).
    pub async fn all_apps(&self, principal: &Principal) -> Result<Vec<AppView>, PlatformError> {
        operator(principal)?;
        let mut tx = self.deps.store.read().await?;
        let profiles = tx.apps().list_all(500).await?;
        let mut out = Vec::with_capacity(profiles.len());
        for p in profiles {
            out.push(self.view(tx.as_mut(), p).await?);
        }
        Ok(out)
    }

    /// Suspends (or reinstates) an app: a suspended app's tokens stop working at once and it
    /// cannot start new flows. Works on any client, console-made or not.
    pub async fn set_suspended(
        &self,
        principal: &Principal,
        client_id: &str,
        suspended: bool,
    ) -> Result<(), PlatformError> {
        operator(principal)?;
        let mut tx = self.deps.store.begin().await?;
        let mut client = tx
            .clients()
            .get(client_id)
            .await?
            .ok_or(PlatformError::NotFound("the app"))?;
        client.status = if suspended {
            ClientStatus::Suspended
        } else {
            ClientStatus::Active
        };
        client.updated_at = self.deps.clock.now();
        tx.clients().update(&client).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            client.owner_account_id.as_deref(),
            if suspended {
                "client.suspend"
            } else {
                "client.reinstate"
            },
            ("client", client_id),
            serde_json::json!({ "name": client.name }),
        )
        .await?;
        if suspended {
            tx.revocation_log()
                .append(
                    crate::revocations::RevocationKind::ClientSuspended,
                    &crate::revocations::RevokedIds::client(client_id),
                    client.updated_at,
                )
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Approves (or refuses) a restricted scope an app asked for.
    pub async fn review_scope(
        &self,
        principal: &Principal,
        client_id: &str,
        scope: &str,
        approve: bool,
    ) -> Result<(), PlatformError> {
        operator(principal)?;
        let mut tx = self.deps.store.begin().await?;
        let mut profile = tx
            .apps()
            .get(client_id)
            .await?
            .ok_or(PlatformError::NotFound("the app"))?;
        if !profile.requested_restricted.iter().any(|s| s == scope) {
            return Err(PlatformError::invalid(
                "scope",
                format!("the app did not ask for {scope}"),
            ));
        }
        let now = self.deps.clock.now();
        if approve {
            if !profile.approved_restricted.iter().any(|s| s == scope) {
                profile.approved_restricted.push(scope.to_owned());
            }
        } else {
            // Withdrawn everywhere at once: the registration, the grants that held it, and the
            // live tokens that carry it.
            profile.requested_restricted.retain(|s| s != scope);
            profile.approved_restricted.retain(|s| s != scope);
            profile.required_scopes = without(&profile.required_scopes, scope);
            profile.optional_scopes = without(&profile.optional_scopes, scope);
            let mut client = tx
                .clients()
                .get(client_id)
                .await?
                .ok_or(PlatformError::NotFound("the app"))?;
            if client.scope.contains(scope) {
                client.scope = without(&client.scope, scope);
                client.updated_at = now;
                tx.clients().update(&client).await?;
            }
            let entry = AuditEntry {
                id: self.deps.ordered_id(),
                occurred_at: now,
                actor: principal.actor(),
                account_id: Some(profile.account_id.clone()),
                action: "grant.scope_withdrawn".into(),
                target_kind: "grant".into(),
                target_id: String::new(),
                details: serde_json::json!({ "client_id": client_id, "scope": scope }),
            };
            write_scope_withdrawal(tx.as_mut(), client_id, scope, now, &entry).await?;
        }
        profile.updated_at = now;
        tx.apps().update(&profile).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(&profile.account_id),
            if approve {
                "client.scope_approved"
            } else {
                "client.scope_refused"
            },
            ("client", client_id),
            serde_json::json!({ "scope": scope }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The audit log: everything for operators; an account's entries for its admins. Each entry
    /// comes with the names a person reads: the acting user's email, the target app's or user's
    /// name, when they still exist.
    pub async fn audit_log(
        &self,
        principal: &Principal,
        account_id: Option<&str>,
    ) -> Result<Vec<AuditRow>, PlatformError> {
        match account_id {
            None => operator(principal)?,
            Some(a) => {
                if !principal.user.is_operator {
                    principal.require(a, Role::Admin)?;
                }
            }
        }
        let filter = AuditFilter {
            account_id: account_id.map(str::to_owned),
            ..AuditFilter::default()
        };
        let mut tx = self.deps.store.read().await?;
        let entries = tx.audit().list(&filter, AUDIT_PAGE).await?;
        // An account's admins see their own members by email. A user of another account (one
        // who authorized an app this account publishes) is named only as the app learned them:
        // by email if the grant included `email`, otherwise by the subject the app was given.
        let members: Option<std::collections::HashSet<String>> = match account_id {
            Some(a) if !principal.user.is_operator => Some(
                tx.accounts()
                    .members(a)
                    .await?
                    .into_iter()
                    .map(|m| m.user.id)
                    .collect(),
            ),
            _ => None,
        };
        let mut names: std::collections::HashMap<(String, String), Option<String>> =
            std::collections::HashMap::new();
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let actor_key = entry
                .actor
                .id
                .clone()
                .map(|id| (entry.actor.kind.clone(), id));
            let target_key = (entry.target_kind.clone(), entry.target_id.clone());
            for key in actor_key.iter().chain(std::iter::once(&target_key)) {
                if !names.contains_key(key) {
                    let name = match key.0.as_str() {
                        "user" => tx.accounts().user(&key.1).await?.map(|u| u.email),
                        "client" => tx.clients().get(&key.1).await?.map(|c| c.name),
                        _ => None,
                    };
                    names.insert(key.clone(), name);
                }
            }
            let outsider = entry.actor.kind == "user"
                && members
                    .as_ref()
                    .is_some_and(|m| entry.actor.id.as_ref().is_none_or(|id| !m.contains(id)));
            let email_granted = entry
                .details
                .get("scope")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|s| s.split(' ').any(|t| t == "email"));
            let actor = match (&actor_key, &entry.actor.id) {
                (Some(_), Some(id)) if outsider && !email_granted => format!("user {id}"),
                (Some(key), Some(id)) => names
                    .get(key)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| id.clone()),
                _ => entry.actor.kind.clone(),
            };
            let target = names.get(&target_key).cloned().flatten();
            rows.push(AuditRow {
                actor,
                target,
                entry,
            });
        }
        Ok(rows)
    }
}

/// An audit entry as a person reads it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// The acting user's email, or the kind of actor (`cli`, `admin_api`, `system` …).
    pub actor: String,
    /// The target's name, when it has one and still exists.
    pub target: Option<String>,
    pub entry: AuditEntry,
}
