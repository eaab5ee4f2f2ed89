//! The developer console: apps owned by accounts, created and managed by their developers.

use latchkey_types::Scope;
use latchkey_types::client::OAuth2Client;
use latchkey_types::platform::{AppInput, AppOutput, VerificationRecord};

use super::dns::expected_value;
use super::model::{Account, AccountKind, AppProfile, AppType, Role, Visibility};
use super::names::{escaped, fold_name, name_refusal, refuse_format_characters};
use super::{Platform, PlatformError, Principal};
use crate::client::{Client, ClientStatus, client_from_wire};
use crate::clock::rfc3339;
use crate::entropy::EntropyExt as _;
use crate::revocations::{RevocationKind, RevokedIds};
use crate::secret::SecretString;
use crate::store::{StoreError, Tx};

const MAX_APP_NAME: usize = 80;
const MAX_DESCRIPTION: usize = 1000;
/// Apps one account may have.
const MAX_APPS_PER_ACCOUNT: usize = 100;

/// An app with everything the console shows about it.
#[derive(Debug, Clone)]
pub struct AppView {
    pub client: Client,
    pub profile: AppProfile,
    pub account: Account,
    pub user_count: i64,
    /// Users the app may have while it is unverified (`None`: no cap).
    pub user_cap: Option<i64>,
    pub has_rotated_secret: bool,
}

impl AppView {
    pub fn verification(&self) -> Option<VerificationRecord> {
        match (&self.profile.domain, &self.profile.verification_token) {
            (Some(domain), Some(token)) if !self.profile.is_verified() => {
                Some(VerificationRecord {
                    name: domain.clone(),
                    record_type: "TXT".into(),
                    value: expected_value(token),
                })
            }
            _ => None,
        }
    }

    pub fn to_output(&self, secret: Option<&SecretString>) -> AppOutput {
        let c = &self.client;
        let p = &self.profile;
        AppOutput {
            client_id: c.id.clone(),
            account_id: p.account_id.clone(),
            name: c.name.clone(),
            description: p.description.clone(),
            app_type: p.app_type.as_str().into(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str().into(),
            logo_uri: c.logo_uri.clone(),
            client_uri: c.client_uri.clone(),
            policy_uri: c.policy_uri.clone(),
            tos_uri: c.tos_uri.clone(),
            contacts: c.contacts.clone(),
            redirect_uris: c.redirect_uris.clone(),
            scopes: p.required_scopes.to_vec(),
            optional_scopes: p.optional_scopes.to_vec(),
            visibility: p.visibility.as_str().into(),
            status: c.status.as_str().into(),
            domain: p.domain.clone(),
            domain_verified: p.is_verified(),
            verification: self.verification(),
            has_rotated_secret: self.has_rotated_secret,
            pending_restricted_scopes: p.pending_restricted(),
            approved_restricted_scopes: p.approved_restricted.clone(),
            user_count: self.user_count,
            user_cap: self.user_cap,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            client_secret: secret.map(|s| latchkey_types::Secret::new(s.expose())),
        }
    }
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, PlatformError> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(PlatformError::invalid(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(PlatformError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(PlatformError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    refuse_format_characters(field, v)?;
    Ok(v.to_owned())
}

fn https_only(field: &str, value: &str) -> Result<(), PlatformError> {
    if value.is_empty() {
        return Ok(());
    }
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(()),
        _ => Err(PlatformError::invalid(
            field,
            "must be an https:// URL (images are only loaded over HTTPS)",
        )),
    }
}

fn scope_list(field: &str, list: &[String]) -> Result<Scope, PlatformError> {
    Scope::from_tokens(list).map_err(|e| PlatformError::invalid(field, e.to_string()))
}

/// The host of an https homepage: the publisher domain.
fn domain_of(client_uri: &str) -> Option<String> {
    url::Url::parse(client_uri)
        .ok()
        .filter(|u| u.scheme() == "https")
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
}

impl Platform {
    pub(crate) async fn view(
        &self,
        tx: &mut dyn Tx,
        profile: AppProfile,
    ) -> Result<AppView, PlatformError> {
        let client = tx
            .clients()
            .get(&profile.client_id)
            .await?
            .ok_or(PlatformError::NotFound("the app"))?;
        let account = tx
            .accounts()
            .account(&profile.account_id)
            .await?
            .ok_or(PlatformError::NotFound("the account"))?;
        let user_count = tx.apps().user_count(&client.id).await?;
        let has_rotated_secret = tx.clients().secrets(&client.id).await?.len() > 1;
        let user_cap = (!self.settings.public_apps_need_verified_domain
            && !profile.is_verified()
            && account.kind != AccountKind::Platform)
            .then_some(self.settings.unverified_user_cap);
        Ok(AppView {
            client,
            profile,
            account,
            user_count,
            user_cap,
            has_rotated_secret,
        })
    }

    /// The app `client_id` of `account_id`, if the principal may manage it. An app of another
    /// account is "not found", whoever asks.
    async fn owned(
        &self,
        tx: &mut dyn Tx,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<AppView, PlatformError> {
        principal.require(account_id, Role::Developer)?;
        let profile = tx
            .apps()
            .get(client_id)
            .await?
            .filter(|p| p.account_id == account_id)
            .ok_or(PlatformError::NotFound("the app"))?;
        self.view(tx, profile).await
    }

    /// The apps of an account.
    pub async fn list_apps(
        &self,
        principal: &Principal,
        account_id: &str,
    ) -> Result<Vec<AppView>, PlatformError> {
        principal.require(account_id, Role::Developer)?;
        let mut tx = self.deps.store.read().await?;
        let profiles = tx.apps().list_for_account(account_id).await?;
        let mut out = Vec::with_capacity(profiles.len());
        for p in profiles {
            out.push(self.view(tx.as_mut(), p).await?);
        }
        Ok(out)
    }

    pub async fn get_app(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<AppView, PlatformError> {
        let mut tx = self.deps.store.read().await?;
        self.owned(tx.as_mut(), principal, account_id, client_id)
            .await
    }

    /// Checks a name: [`name_refusal`], and no look-alike of an app users already trust — a
    /// public or verified app, or one of the platform's own.
    async fn check_name(
        &self,
        tx: &mut dyn Tx,
        name: &str,
        client_id: Option<&str>,
    ) -> Result<(), PlatformError> {
        if let Some(reason) = name_refusal(name, &self.settings.name) {
            return Err(PlatformError::invalid("name", reason));
        }
        let folded = fold_name(name);
        for (other, standing) in tx.apps().trusted_names(client_id).await? {
            if fold_name(&other) == folded {
                let standing = match standing.as_str() {
                    "verified" => "a verified app",
                    "public" => "a public app",
                    _ => "one of the platform's own apps",
                };
                return Err(PlatformError::invalid(
                    "name",
                    format!(
                        "looks like \"{}\", the name of {standing}; choose a name people cannot mistake for it",
                        escaped(&other)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Validates the scopes against the catalog and the app's standing.
    fn check_scopes(
        catalog: &super::catalog::Catalog,
        required: &Scope,
        optional: &Scope,
        verified: bool,
        approved: &[String],
    ) -> Result<(), PlatformError> {
        for (field, list) in [("scopes", required), ("optional_scopes", optional)] {
            for s in list.iter() {
                if let Some(reason) = catalog.refusal(s, verified, approved) {
                    return Err(PlatformError::invalid(field, reason));
                }
            }
        }
        if let Some(both) = required.iter().find(|s| optional.contains(s)) {
            return Err(PlatformError::invalid(
                "optional_scopes",
                format!("{both} is both required and optional"),
            ));
        }
        Ok(())
    }

    /// Builds the OAuth client of an app from its fields.
    fn client_for(
        app_type: AppType,
        fields: &AppFields,
        fixed: (String, i64, i64, ClientStatus, String),
    ) -> Result<Client, PlatformError> {
        let mut scope = fields.required.clone();
        for s in fields.optional.iter() {
            scope.insert(s);
        }
        let wire = OAuth2Client {
            client_name: Some(fields.name.clone()),
            redirect_uris: Some(fields.redirect_uris.clone()),
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            response_types: Some(vec!["code".into()]),
            scope: Some(scope.to_string()),
            token_endpoint_auth_method: Some(
                match app_type {
                    AppType::Web => "client_secret_basic",
                    AppType::Native => "none",
                }
                .into(),
            ),
            logo_uri: Some(fields.logo_uri.clone()),
            client_uri: Some(fields.client_uri.clone()),
            policy_uri: Some(fields.policy_uri.clone()),
            tos_uri: Some(fields.tos_uri.clone()),
            contacts: Some(fields.contacts.clone()),
            ..OAuth2Client::default()
        };
        let (id, created_at, updated_at, status, account) = fixed;
        client_from_wire(
            &wire,
            crate::client::Fixed {
                id,
                created_at,
                updated_at,
                status,
                owner_account_id: Some(account),
                origin: crate::client::ClientOrigin::Registered,
            },
        )
        .map_err(|m| PlatformError::Invalid {
            field: m.field,
            reason: m.reason,
        })
    }

    /// Creates an app owned by `account_id`. A web app's secret is returned, once.
    pub async fn create_app(
        &self,
        principal: &Principal,
        account_id: &str,
        input: &AppInput,
    ) -> Result<(AppView, Option<SecretString>), PlatformError> {
        principal.require(account_id, Role::Developer)?;
        let app_type = match input.app_type.as_deref() {
            None | Some("" | "web") => AppType::Web,
            Some("native") => AppType::Native,
            Some(_) => return Err(PlatformError::invalid("app_type", "must be web or native")),
        };
        if input.visibility.as_deref().is_some_and(|v| v != "private") {
            return Err(PlatformError::invalid(
                "visibility",
                "new apps are private; make the app public once it is ready",
            ));
        }
        let fields = AppFields::from_input(input, None)?;
        Self::check_scopes(
            &self.catalog,
            &fields.required,
            &fields.optional,
            false,
            &[],
        )?;
        let now = self.deps.clock.now();
        let id = self.deps.entropy.uuid().to_string();
        let client = Self::client_for(
            app_type,
            &fields,
            (
                id.clone(),
                now,
                now,
                ClientStatus::Active,
                account_id.into(),
            ),
        )?;
        let profile = AppProfile {
            client_id: id.clone(),
            account_id: account_id.to_owned(),
            description: fields.description.clone(),
            app_type,
            required_scopes: fields.required.clone(),
            optional_scopes: fields.optional.clone(),
            visibility: Visibility::Private,
            domain: None,
            verification_token: None,
            domain_verified_at: None,
            requested_restricted: vec![],
            approved_restricted: vec![],
            promoted_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.deps.store.begin().await?;
        if tx.apps().list_for_account(account_id).await?.len() >= MAX_APPS_PER_ACCOUNT {
            return Err(PlatformError::Conflict(format!(
                "an account may have at most {MAX_APPS_PER_ACCOUNT} apps"
            )));
        }
        self.check_name(tx.as_mut(), &client.name, None).await?;
        tx.clients().insert(&client).await?;
        let secret = if app_type == AppType::Web {
            let (secret, record) = self.engine.clients.new_secret(&id);
            tx.clients().insert_secret(&record).await?;
            Some(secret)
        } else {
            None
        };
        tx.apps().insert(&profile).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            "client.create",
            ("client", &id),
            serde_json::json!({ "name": client.name, "app_type": app_type.as_str() }),
        )
        .await?;
        let view = self.view(tx.as_mut(), profile).await?;
        tx.commit().await?;
        Ok((view, secret))
    }

    /// Changes an app's fields (those given). `visibility: public` goes public.
    pub async fn update_app(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
        input: &AppInput,
    ) -> Result<AppView, PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        let current = self
            .owned(tx.as_mut(), principal, account_id, client_id)
            .await?;
        if input
            .app_type
            .as_deref()
            .is_some_and(|t| t != current.profile.app_type.as_str())
        {
            return Err(PlatformError::invalid(
                "app_type",
                "cannot change; create another app",
            ));
        }
        let fields = AppFields::from_input(input, Some(&current))?;
        let mut profile = current.profile.clone();
        Self::check_scopes(
            &self.catalog,
            &fields.required,
            &fields.optional,
            profile.is_verified(),
            &profile.approved_restricted,
        )?;
        if let Some(domain) = profile.domain.as_ref().filter(|_| profile.is_verified())
            && domain_of(&fields.client_uri).as_ref() != Some(domain)
        {
            return Err(PlatformError::invalid(
                "client_uri",
                format!("the domain {domain} is verified and locked: the homepage must stay on it"),
            ));
        }
        let now = self.deps.clock.now();
        let client = Self::client_for(
            profile.app_type,
            &fields,
            (
                current.client.id.clone(),
                current.client.created_at,
                now,
                current.client.status,
                account_id.into(),
            ),
        )?;
        if client.name != current.client.name {
            self.check_name(tx.as_mut(), &client.name, Some(client_id))
                .await?;
        }
        profile.description = fields.description;
        profile.required_scopes = fields.required;
        profile.optional_scopes = fields.optional;
        profile.updated_at = now;
        // A new homepage domain restarts verification.
        if !profile.is_verified() && profile.domain != domain_of(&client.client_uri) {
            profile.domain = None;
            profile.verification_token = None;
        }
        let mut action = "client.update";
        match input.visibility.as_deref() {
            Some("public") if profile.visibility != Visibility::Public => {
                let missing: Vec<&str> = [
                    ("a logo", client.logo_uri.is_empty()),
                    ("a homepage", client.client_uri.is_empty()),
                    ("scopes", profile.all_scopes().is_empty()),
                    (
                        "a verified domain",
                        self.settings.public_apps_need_verified_domain && !profile.is_verified(),
                    ),
                ]
                .into_iter()
                .filter_map(|(what, missing)| missing.then_some(what))
                .collect();
                if !missing.is_empty() {
                    return Err(PlatformError::invalid(
                        "visibility",
                        format!("a public app needs {}", missing.join(", ")),
                    ));
                }
                profile.visibility = Visibility::Public;
                profile.promoted_at = Some(now);
                action = "client.publish";
            }
            Some("private") if profile.visibility == Visibility::Public => {
                return Err(PlatformError::invalid(
                    "visibility",
                    "a public app cannot become private again",
                ));
            }
            None | Some("" | "public" | "private") => {}
            Some(_) => {
                return Err(PlatformError::invalid(
                    "visibility",
                    "must be private or public",
                ));
            }
        }
        tx.clients().update(&client).await?;
        tx.apps().update(&profile).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            action,
            ("client", client_id),
            serde_json::json!({ "name": client.name }),
        )
        .await?;
        let view = self.view(tx.as_mut(), profile).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Issues a second secret; the old one keeps working until the rotation is confirmed.
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<(AppView, SecretString), PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        let current = self
            .owned(tx.as_mut(), principal, account_id, client_id)
            .await?;
        if current.profile.app_type != AppType::Web {
            return Err(PlatformError::Conflict(
                "public (native) apps have no secret to rotate".into(),
            ));
        }
        if current.has_rotated_secret {
            return Err(PlatformError::Conflict(
                "a rotation is in progress: confirm it (which removes the old secret) before rotating again".into(),
            ));
        }
        let (secret, mut record) = self.engine.clients.new_secret(client_id);
        // The confirmation keeps the newest secret, by creation time: a rotation in the same
        // second as the secret it replaces must still come after it (ids do not order them).
        if let Some(newest) = tx.clients().secrets(client_id).await?.first() {
            record.created_at = record.created_at.max(newest.created_at + 1);
        }
        tx.clients().insert_secret(&record).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            "client.secret_rotate",
            ("client", client_id),
            serde_json::json!({ "secret_id": record.id }),
        )
        .await?;
        let view = self.view(tx.as_mut(), current.profile).await?;
        tx.commit().await?;
        Ok((view, secret))
    }

    /// Confirms a rotation: only the newest secret stays.
    pub async fn confirm_rotation(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<AppView, PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        let current = self
            .owned(tx.as_mut(), principal, account_id, client_id)
            .await?;
        let secrets = tx.clients().secrets(client_id).await?;
        if secrets.len() < 2 {
            return Err(PlatformError::Conflict("no rotation is in progress".into()));
        }
        for old in &secrets[1..] {
            tx.clients().delete_secret(client_id, &old.id).await?;
        }
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            "client.secret_rotation_confirmed",
            ("client", client_id),
            serde_json::json!({ "removed": secrets.len() - 1 }),
        )
        .await?;
        let now = self.deps.clock.now();
        for old in &secrets[1..] {
            tx.revocation_log()
                .append(
                    RevocationKind::SecretRotatedOut,
                    &RevokedIds::secret(client_id, &old.id),
                    now,
                )
                .await?;
        }
        let view = self.view(tx.as_mut(), current.profile).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Starts domain verification (the homepage's host), or checks the TXT record when it was
    /// started. Once found, the domain is locked to the app.
    pub async fn verify_domain(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<AppView, PlatformError> {
        let current = self.get_app(principal, account_id, client_id).await?;
        if current.profile.is_verified() {
            return Ok(current);
        }
        let domain = domain_of(&current.client.client_uri).ok_or_else(|| {
            PlatformError::invalid(
                "client_uri",
                "set an https homepage first: its host is the domain to verify",
            )
        })?;
        let mut profile = current.profile.clone();
        let now = self.deps.clock.now();
        let started = profile.domain.as_deref() == Some(domain.as_str())
            && profile.verification_token.is_some();
        let mut action = "client.verification_started";
        if started {
            let token = profile.verification_token.clone().unwrap_or_default();
            let records = self.dns.txt(&domain).await.map_err(|e| {
                PlatformError::Conflict(format!("the DNS lookup of {domain} failed: {e}"))
            })?;
            if !records.iter().any(|r| r.trim() == expected_value(&token)) {
                return Err(PlatformError::Conflict(format!(
                    "no TXT record \"{}\" was found at {domain} yet; DNS changes can take a while to appear",
                    expected_value(&token)
                )));
            }
            profile.domain_verified_at = Some(now);
            action = "client.domain_verified";
        } else {
            profile.domain = Some(domain.clone());
            profile.verification_token = Some(self.deps.entropy.token());
        }
        profile.updated_at = now;
        let mut tx = self.deps.store.begin().await?;
        match tx.apps().update(&profile).await {
            Err(StoreError::Conflict(_)) => {
                return Err(PlatformError::Conflict(format!(
                    "{domain} is verified by another app already"
                )));
            }
            other => other?,
        };
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            action,
            ("client", client_id),
            serde_json::json!({ "domain": domain }),
        )
        .await?;
        let view = self.view(tx.as_mut(), profile).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Asks the operator for a restricted scope.
    pub async fn request_scope(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<AppView, PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        let current = self
            .owned(tx.as_mut(), principal, account_id, client_id)
            .await?;
        match self.catalog.get(scope) {
            Some(s) if s.sensitivity == crate::config::Sensitivity::Restricted => {}
            Some(_) => {
                return Err(PlatformError::invalid(
                    "scope",
                    format!("{scope} is not restricted: add it to the app directly"),
                ));
            }
            None => {
                return Err(PlatformError::invalid(
                    "scope",
                    format!("{scope} is not in the permission catalog"),
                ));
            }
        }
        let mut profile = current.profile;
        if !profile.requested_restricted.iter().any(|s| s == scope) {
            profile.requested_restricted.push(scope.to_owned());
            profile.updated_at = self.deps.clock.now();
            tx.apps().update(&profile).await?;
            self.audit(
                tx.as_mut(),
                &principal.actor(),
                Some(account_id),
                "client.scope_requested",
                ("client", client_id),
                serde_json::json!({ "scope": scope }),
            )
            .await?;
        }
        let view = self.view(tx.as_mut(), profile).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Deletes an app: every grant and token of it goes in the same transaction.
    pub async fn delete_app(
        &self,
        principal: &Principal,
        account_id: &str,
        client_id: &str,
    ) -> Result<(), PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        let current = self
            .owned(tx.as_mut(), principal, account_id, client_id)
            .await?;
        let now = self.deps.clock.now();
        let tokens = tx.tokens().revoke_client(client_id, now).await?;
        tx.clients().delete(client_id).await?;
        self.audit(
            tx.as_mut(),
            &principal.actor(),
            Some(account_id),
            "client.delete",
            ("client", client_id),
            serde_json::json!({
                "name": current.client.name,
                "users": current.user_count,
                "tokens_revoked": tokens,
            }),
        )
        .await?;
        tx.revocation_log()
            .append(
                RevocationKind::ClientDeleted,
                &RevokedIds::client(client_id),
                now,
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// An app's editable fields, validated, after applying a change to the current values.
struct AppFields {
    name: String,
    description: String,
    logo_uri: String,
    client_uri: String,
    policy_uri: String,
    tos_uri: String,
    contacts: Vec<String>,
    redirect_uris: Vec<String>,
    required: Scope,
    optional: Scope,
}

impl AppFields {
    fn from_input(input: &AppInput, current: Option<&AppView>) -> Result<Self, PlatformError> {
        let pick = |new: &Option<String>, old: Option<&String>| -> String {
            new.clone()
                .or_else(|| old.cloned())
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let c = current.map(|v| &v.client);
        let p = current.map(|v| &v.profile);
        let name = text(
            "name",
            &pick(&input.name, c.map(|c| &c.name)),
            MAX_APP_NAME,
            true,
        )?;
        let description = text(
            "description",
            &pick(&input.description, p.map(|p| &p.description)),
            MAX_DESCRIPTION,
            false,
        )?;
        let logo_uri = pick(&input.logo_uri, c.map(|c| &c.logo_uri));
        https_only("logo_uri", &logo_uri)?;
        let client_uri = pick(&input.client_uri, c.map(|c| &c.client_uri));
        let policy_uri = pick(&input.policy_uri, c.map(|c| &c.policy_uri));
        let tos_uri = pick(&input.tos_uri, c.map(|c| &c.tos_uri));
        for (field, v) in [
            ("client_uri", &client_uri),
            ("policy_uri", &policy_uri),
            ("tos_uri", &tos_uri),
        ] {
            https_only(field, v)?;
        }
        let contacts = input
            .contacts
            .clone()
            .or_else(|| c.map(|c| c.contacts.clone()))
            .unwrap_or_default();
        let redirect_uris = input
            .redirect_uris
            .clone()
            .or_else(|| c.map(|c| c.redirect_uris.clone()))
            .unwrap_or_default();
        if redirect_uris.is_empty() {
            return Err(PlatformError::invalid(
                "redirect_uris",
                "at least one redirect URI is required",
            ));
        }
        let required = match &input.scopes {
            Some(list) => scope_list("scopes", list)?,
            None => p.map(|p| p.required_scopes.clone()).unwrap_or_default(),
        };
        let optional = match &input.optional_scopes {
            Some(list) => scope_list("optional_scopes", list)?,
            None => p.map(|p| p.optional_scopes.clone()).unwrap_or_default(),
        };
        Ok(Self {
            name,
            description,
            logo_uri,
            client_uri,
            policy_uri,
            tos_uri,
            contacts,
            redirect_uris,
            required,
            optional,
        })
    }
}
