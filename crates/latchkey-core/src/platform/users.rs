//! Users, accounts and memberships: created by the CLI and the demo, read by every page.

use super::model::{Account, AccountKind, Membership, Role, User};
use super::names::refuse_format_characters;
use super::password::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, hash_password, run_blocking};
use super::{Platform, PlatformError, Principal};
use crate::audit::Actor;
use crate::entropy::EntropyExt as _;
use crate::secret::SecretString;
use crate::store::StoreError;

const MAX_EMAIL_LEN: usize = 254;
const MAX_NAME_LEN: usize = 100;

/// Lower-cases and checks an email address (one `@`, something on both sides, no spaces).
pub fn normalize_email(email: &str) -> Result<String, PlatformError> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= MAX_EMAIL_LEN
        && e.split('@').count() == 2
        && !e.starts_with('@')
        && !e.ends_with('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(PlatformError::invalid("email", "is not an email address"))
    }
}

fn display_name(field: &str, name: &str) -> Result<String, PlatformError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME_LEN || n.chars().any(char::is_control) {
        return Err(PlatformError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LEN} printable characters"),
        ));
    }
    refuse_format_characters(field, n)?;
    Ok(n.to_owned())
}

impl Platform {
    /// Creates a user with a password (Argon2id, hashed off the async runtime).
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: SecretString,
        is_operator: bool,
        actor: &Actor,
    ) -> Result<User, PlatformError> {
        let email = normalize_email(email)?;
        let name = if name.trim().is_empty() {
            email.clone()
        } else {
            display_name("name", name)?
        };
        let len = password.expose().chars().count();
        if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
            return Err(PlatformError::invalid(
                "password",
                format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
            ));
        }
        let entropy = self.deps.entropy.clone();
        let hash = run_blocking(self.blocking.as_ref(), move || {
            hash_password(&password, entropy.as_ref())
        })
        .await
        .ok_or_else(|| PlatformError::Internal("password hashing did not complete".into()))?
        .map_err(PlatformError::Internal)?;
        let now = self.deps.clock.now();
        let user = User {
            id: self.deps.entropy.uuid().to_string(),
            email,
            name,
            password_hash: Some(hash),
            status: "active".into(),
            is_operator,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.deps.store.begin().await?;
        match tx.accounts().insert_user(&user).await {
            Err(StoreError::Conflict(_)) => {
                return Err(PlatformError::Conflict(
                    "a user with this email exists already".into(),
                ));
            }
            other => other?,
        }
        self.audit(
            tx.as_mut(),
            actor,
            None,
            "user.create",
            ("user", &user.id),
            serde_json::json!({ "email": user.email, "operator": is_operator }),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Creates an account. `id`: a chosen id (letters, digits, `-`), or a generated one.
    pub async fn create_account(
        &self,
        id: Option<&str>,
        name: &str,
        kind: AccountKind,
        actor: &Actor,
    ) -> Result<Account, PlatformError> {
        let name = display_name("name", name)?;
        let id = match id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > 64
                    || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(PlatformError::invalid(
                        "id",
                        "must be 1 to 64 letters, digits or dashes",
                    ));
                }
                id.to_owned()
            }
            None => self.deps.entropy.uuid().to_string(),
        };
        let now = self.deps.clock.now();
        let account = Account {
            id,
            name,
            kind,
            block_third_party_apps: false,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.deps.store.begin().await?;
        match tx.accounts().insert_account(&account).await {
            Err(StoreError::Conflict(_)) => {
                return Err(PlatformError::Conflict(
                    "an account with this id exists already".into(),
                ));
            }
            other => other?,
        }
        self.audit(
            tx.as_mut(),
            actor,
            Some(&account.id),
            "account.create",
            ("account", &account.id),
            serde_json::json!({ "name": account.name, "kind": kind.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Adds the user with `email` to an account with `role` (or changes their role).
    pub async fn add_member(
        &self,
        account_id: &str,
        email: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<(Account, User), PlatformError> {
        let email = normalize_email(email)?;
        let mut tx = self.deps.store.begin().await?;
        let account = tx
            .accounts()
            .account(account_id)
            .await?
            .ok_or(PlatformError::NotFound("the account"))?;
        let user = tx
            .accounts()
            .user_by_email(&email)
            .await?
            .ok_or(PlatformError::NotFound("a user with this email"))?;
        tx.accounts()
            .upsert_membership(&Membership {
                account_id: account.id.clone(),
                user_id: user.id.clone(),
                role,
                created_at: self.deps.clock.now(),
            })
            .await?;
        self.audit(
            tx.as_mut(),
            actor,
            Some(&account.id),
            "account.member_set",
            ("user", &user.id),
            serde_json::json!({ "email": user.email, "role": role.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok((account, user))
    }

    /// An account admin blocks (or allows) new grants of public third-party apps to the account.
    pub async fn set_third_party_policy(
        &self,
        principal: &Principal,
        account_id: &str,
        block: bool,
    ) -> Result<(), PlatformError> {
        principal.require(account_id, Role::Admin)?;
        let mut tx = self.deps.store.begin().await?;
        if !tx
            .accounts()
            .set_block_third_party_apps(account_id, block, self.deps.clock.now())
            .await?
        {
            return Err(PlatformError::NotFound("the account"));
        }
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            if block {
                "account.third_party_apps_blocked"
            } else {
                "account.third_party_apps_allowed"
            },
            ("account", account_id),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An account admin revokes every grant of a third-party app that reaches the account (it
    /// names the account, or all accounts), given by any member: the grant and its tokens go,
    /// with an audit entry each. Returns how many grants.
    pub async fn revoke_third_party_grants(
        &self,
        principal: &Principal,
        account_id: &str,
    ) -> Result<usize, PlatformError> {
        principal.require(account_id, Role::Admin)?;
        let mut r = self.deps.store.read().await?;
        let members = r.accounts().members(account_id).await?;
        let mut targets = Vec::new();
        for member in &members {
            for grant in r.grants().list_active(&member.user.id).await? {
                let reaches = grant.accounts.iter().any(|a| a == "*" || a == account_id);
                let Some(app) =
                    super::policy::AppStanding::load(r.as_mut(), &grant.client_id).await?
                else {
                    continue;
                };
                let own = app.client.owner_account_id.as_deref() == Some(account_id);
                if reaches && !app.first_party() && !own {
                    targets.push((member.user.id.clone(), grant.client_id));
                }
            }
        }
        drop(r);
        let mut revoked = 0;
        for (subject, client_id) in targets {
            revoked += self
                .engine
                .revoke_consent_sessions(&subject, Some(&client_id), &principal.actor())
                .await?;
        }
        Ok(revoked)
    }
}
