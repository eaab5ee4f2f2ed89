//! `latchkey serve --demo`: a small world a newcomer can click through at once. Seeding is
//! idempotent: what exists is left as it is.

use latchkey_types::platform::AppInput;

use super::model::{AccountKind, Role, Visibility};
use super::{Platform, PlatformError};
use crate::audit::Actor;
use crate::secret::SecretString;
use crate::store::StoreError;

pub const PLATFORM_ACCOUNT: &str = "platform";
pub const ACME_ACCOUNT: &str = "acme";
pub const ACME_LABS_ACCOUNT: &str = "acme-labs";
pub const TOOLSMITH_ACCOUNT: &str = "toolsmith";

pub const OPERATOR_EMAIL: &str = "operator@platform.test";
pub const ACME_EMAIL: &str = "alice@acme.test";
pub const TOOLSMITH_EMAIL: &str = "dev@toolsmith.test";

pub const PUBLIC_APP: &str = "Toolsmith Deploy";
pub const PRIVATE_APP: &str = "Toolsmith Insights";
pub const UNVERIFIED_APP: &str = "Toolsmith Sync";
pub const PUBLIC_APP_DOMAIN: &str = "toolsmith.example";

/// What the demo holds, for printing.
#[derive(Debug, Clone)]
pub struct DemoWorld {
    /// (email, what they are)
    pub users: Vec<(String, String)>,
    /// (name, client id, what it is)
    pub apps: Vec<(String, String, String)>,
}

fn exists<T>(r: Result<T, PlatformError>) -> Result<(), PlatformError> {
    match r {
        Ok(_) | Err(PlatformError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Platform {
    /// Seeds the demo. Every demo user gets `password` when created.
    pub async fn seed_demo(&self, password: &SecretString) -> Result<DemoWorld, PlatformError> {
        let actor = Actor {
            kind: "system".into(),
            id: Some("demo".into()),
        };
        for (id, name, kind) in [
            (
                PLATFORM_ACCOUNT,
                format!("{} (platform)", self.settings.name),
                AccountKind::Platform,
            ),
            (ACME_ACCOUNT, "Acme".to_owned(), AccountKind::Customer),
            (
                ACME_LABS_ACCOUNT,
                "Acme Labs".to_owned(),
                AccountKind::Customer,
            ),
            (
                TOOLSMITH_ACCOUNT,
                "Toolsmith Labs".to_owned(),
                AccountKind::Customer,
            ),
        ] {
            exists(self.create_account(Some(id), &name, kind, &actor).await)?;
        }
        for (email, name, operator) in [
            (OPERATOR_EMAIL, "Olivia Operator", true),
            (ACME_EMAIL, "Alice Acme", false),
            (TOOLSMITH_EMAIL, "Dev Toolsmith", false),
        ] {
            exists(
                self.create_user(email, name, password.clone(), operator, &actor)
                    .await,
            )?;
        }
        for (account, email, role) in [
            (PLATFORM_ACCOUNT, OPERATOR_EMAIL, Role::Owner),
            (ACME_ACCOUNT, ACME_EMAIL, Role::Owner),
            (ACME_LABS_ACCOUNT, ACME_EMAIL, Role::Developer),
            (TOOLSMITH_ACCOUNT, TOOLSMITH_EMAIL, Role::Owner),
        ] {
            self.add_member(account, email, role, &actor).await?;
        }

        let dev = self
            .deps
            .store
            .read()
            .await?
            .accounts()
            .user_by_email(TOOLSMITH_EMAIL)
            .await?
            .ok_or(PlatformError::NotFound("the demo developer"))?;
        let dev = self.principal(dev).await?;
        let mut existing = self.list_apps(&dev, TOOLSMITH_ACCOUNT).await?;
        let find = |apps: &[super::apps::AppView], name: &str| {
            apps.iter().find(|a| a.client.name == name).cloned()
        };
        let mut public = find(&existing, PUBLIC_APP);
        if public.is_none() {
            let (view, _) = self
                .create_app(
                    &dev,
                    TOOLSMITH_ACCOUNT,
                    &AppInput {
                        name: Some(PUBLIC_APP.into()),
                        description: Some(
                            "Deploys your sites and Workers from the command line.".into(),
                        ),
                        app_type: Some("native".into()),
                        logo_uri: Some(format!("https://{PUBLIC_APP_DOMAIN}/logo.png")),
                        client_uri: Some(format!("https://{PUBLIC_APP_DOMAIN}/")),
                        policy_uri: Some(format!("https://{PUBLIC_APP_DOMAIN}/privacy")),
                        tos_uri: Some(format!("https://{PUBLIC_APP_DOMAIN}/terms")),
                        contacts: Some(vec!["support@toolsmith.example".into()]),
                        redirect_uris: Some(vec!["http://127.0.0.1/callback".into()]),
                        scopes: Some(vec![
                            "openid".into(),
                            "offline_access".into(),
                            "account.read".into(),
                            "dns.read".into(),
                        ]),
                        optional_scopes: Some(vec!["workers.read".into()]),
                        ..AppInput::default()
                    },
                )
                .await?;
            // The demo cannot publish a TXT record: it marks the domain verified itself, then
            // adds the sensitive scope and goes public through the ordinary path.
            let mut profile = view.profile.clone();
            profile.domain = Some(PUBLIC_APP_DOMAIN.into());
            profile.verification_token = Some("demo".into());
            profile.domain_verified_at = Some(self.deps.clock.now());
            let mut tx = self.deps.store.begin().await?;
            match tx.apps().update(&profile).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(PlatformError::Conflict("the demo domain is taken".into()));
                }
                other => other?,
            };
            self.audit(
                tx.as_mut(),
                &actor,
                Some(TOOLSMITH_ACCOUNT),
                "client.domain_verified",
                ("client", &profile.client_id),
                serde_json::json!({ "domain": PUBLIC_APP_DOMAIN, "demo": true }),
            )
            .await?;
            tx.commit().await?;
            let view = self
                .update_app(
                    &dev,
                    TOOLSMITH_ACCOUNT,
                    &profile.client_id,
                    &AppInput {
                        optional_scopes: Some(vec!["dns.write".into(), "workers.read".into()]),
                        visibility: Some(Visibility::Public.as_str().into()),
                        ..AppInput::default()
                    },
                )
                .await?;
            public = Some(view);
        }
        if find(&existing, PRIVATE_APP).is_none() {
            let (view, _) = self
                .create_app(
                    &dev,
                    TOOLSMITH_ACCOUNT,
                    &AppInput {
                        name: Some(PRIVATE_APP.into()),
                        description: Some("Usage dashboards, in private beta.".into()),
                        app_type: Some("web".into()),
                        client_uri: Some("https://insights.toolsmith-beta.example/".into()),
                        redirect_uris: Some(vec![
                            "https://insights.toolsmith-beta.example/callback".into(),
                            "http://127.0.0.1/insights/callback".into(),
                        ]),
                        scopes: Some(vec!["openid".into(), "account.read".into()]),
                        optional_scopes: Some(vec!["workers.read".into()]),
                        ..AppInput::default()
                    },
                )
                .await?;
            existing.push(view);
        }
        // Only where the operator lets unverified apps go public.
        if !self.settings.public_apps_need_verified_domain
            && find(&existing, UNVERIFIED_APP).is_none()
        {
            // Public before its domain is verified: capped in users, and outsiders are warned.
            let (view, _) = self
                .create_app(
                    &dev,
                    TOOLSMITH_ACCOUNT,
                    &AppInput {
                        name: Some(UNVERIFIED_APP.into()),
                        description: Some(
                            "Keeps DNS records in sync with a Git repository.".into(),
                        ),
                        app_type: Some("native".into()),
                        logo_uri: Some("https://sync.toolsmith-beta.example/logo.png".into()),
                        client_uri: Some("https://sync.toolsmith-beta.example/".into()),
                        redirect_uris: Some(vec!["http://127.0.0.1/sync/callback".into()]),
                        scopes: Some(vec!["openid".into(), "dns.read".into()]),
                        ..AppInput::default()
                    },
                )
                .await?;
            let view = self
                .update_app(
                    &dev,
                    TOOLSMITH_ACCOUNT,
                    &view.client.id,
                    &AppInput {
                        visibility: Some(Visibility::Public.as_str().into()),
                        ..AppInput::default()
                    },
                )
                .await?;
            existing.push(view);
        }
        let private = find(&existing, PRIVATE_APP);
        let unverified = find(&existing, UNVERIFIED_APP);
        let mut apps = Vec::new();
        if let Some(p) = public {
            apps.push((
                p.client.name.clone(),
                p.client.id.clone(),
                "public, verified (toolsmith.example), a CLI with PKCE and a loopback redirect"
                    .into(),
            ));
        }
        if let Some(p) = private {
            apps.push((
                p.client.name.clone(),
                p.client.id.clone(),
                "private, unverified, a web app of Toolsmith Labs".into(),
            ));
        }
        if let Some(p) = unverified {
            apps.push((
                p.client.name.clone(),
                p.client.id.clone(),
                "public but unverified: capped in users, outsiders are warned first".into(),
            ));
        }
        Ok(DemoWorld {
            users: vec![
                (
                    ACME_EMAIL.into(),
                    "Acme's owner, developer in Acme Labs: start here".into(),
                ),
                (
                    TOOLSMITH_EMAIL.into(),
                    "owner of Toolsmith Labs, the third-party publisher".into(),
                ),
                (
                    OPERATOR_EMAIL.into(),
                    "the platform's operator (/ui/admin)".into(),
                ),
            ],
            apps,
        })
    }
}
