//! `latchkey serve --demo`: a small world a newcomer can click through at once. Seeding is
//! idempotent: what exists is left as it is.

use latchkey_types::platform::AppInput;

use super::apps::AppView;
use super::model::{AccountKind, Role, Visibility};
use super::{Platform, PlatformError, Principal};
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
        self.seed_accounts(&actor).await?;
        self.seed_users(password, &actor).await?;
        self.seed_memberships(&actor).await?;
        let dev = self.demo_developer().await?;
        let existing = self.list_apps(&dev, TOOLSMITH_ACCOUNT).await?;
        let find = |name: &str| existing.iter().find(|a| a.client.name == name).cloned();
        let public = match find(PUBLIC_APP) {
            Some(app) => app,
            None => self.seed_public_app(&dev, &actor).await?,
        };
        let private = match find(PRIVATE_APP) {
            Some(app) => app,
            None => self.seed_private_app(&dev).await?,
        };
        // Only where the operator lets unverified apps go public.
        let unverified = match find(UNVERIFIED_APP) {
            Some(app) => Some(app),
            None if !self.settings.public_apps_need_verified_domain => {
                Some(self.seed_unverified_app(&dev).await?)
            }
            None => None,
        };
        Ok(demo_world(&public, &private, unverified.as_ref()))
    }

    /// The platform's account and three customers.
    async fn seed_accounts(&self, actor: &Actor) -> Result<(), PlatformError> {
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
            exists(self.create_account(Some(id), &name, kind, actor).await)?;
        }
        Ok(())
    }

    /// The operator, Acme's owner and Toolsmith's developer, all with `password`.
    async fn seed_users(
        &self,
        password: &SecretString,
        actor: &Actor,
    ) -> Result<(), PlatformError> {
        for (email, name, operator) in [
            (OPERATOR_EMAIL, "Olivia Operator", true),
            (ACME_EMAIL, "Alice Acme", false),
            (TOOLSMITH_EMAIL, "Dev Toolsmith", false),
        ] {
            exists(
                self.create_user(email, name, password.clone(), operator, actor)
                    .await,
            )?;
        }
        Ok(())
    }

    /// Who is a member of which account, in which role.
    async fn seed_memberships(&self, actor: &Actor) -> Result<(), PlatformError> {
        for (account, email, role) in [
            (PLATFORM_ACCOUNT, OPERATOR_EMAIL, Role::Owner),
            (ACME_ACCOUNT, ACME_EMAIL, Role::Owner),
            (ACME_LABS_ACCOUNT, ACME_EMAIL, Role::Developer),
            (TOOLSMITH_ACCOUNT, TOOLSMITH_EMAIL, Role::Owner),
        ] {
            self.add_member(account, email, role, actor).await?;
        }
        Ok(())
    }

    /// Toolsmith's developer, who publishes the demo's apps.
    async fn demo_developer(&self) -> Result<Principal, PlatformError> {
        let dev = self
            .deps
            .store
            .read()
            .await?
            .accounts()
            .user_by_email(TOOLSMITH_EMAIL)
            .await?
            .ok_or(PlatformError::NotFound("the demo developer"))?;
        self.principal(dev).await
    }

    /// A public, verified CLI with a sensitive scope.
    async fn seed_public_app(
        &self,
        dev: &Principal,
        actor: &Actor,
    ) -> Result<AppView, PlatformError> {
        let (view, _) = self
            .create_app(
                dev,
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
        self.mark_demo_domain_verified(&view, actor).await?;
        self.update_app(
            dev,
            TOOLSMITH_ACCOUNT,
            &view.client.id,
            &AppInput {
                optional_scopes: Some(vec!["dns.write".into(), "workers.read".into()]),
                visibility: Some(Visibility::Public.as_str().into()),
                ..AppInput::default()
            },
        )
        .await
    }

    /// Marks [`PUBLIC_APP_DOMAIN`] verified for `app`, with its audit entry.
    async fn mark_demo_domain_verified(
        &self,
        app: &AppView,
        actor: &Actor,
    ) -> Result<(), PlatformError> {
        let mut profile = app.profile.clone();
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
            actor,
            Some(TOOLSMITH_ACCOUNT),
            "client.domain_verified",
            ("client", &profile.client_id),
            serde_json::json!({ "domain": PUBLIC_APP_DOMAIN, "demo": true }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A private web app in beta.
    async fn seed_private_app(&self, dev: &Principal) -> Result<AppView, PlatformError> {
        let (view, _) = self
            .create_app(
                dev,
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
        Ok(view)
    }

    /// A public app whose domain is not verified: capped in users, and outsiders are warned.
    async fn seed_unverified_app(&self, dev: &Principal) -> Result<AppView, PlatformError> {
        let (view, _) = self
            .create_app(
                dev,
                TOOLSMITH_ACCOUNT,
                &AppInput {
                    name: Some(UNVERIFIED_APP.into()),
                    description: Some("Keeps DNS records in sync with a Git repository.".into()),
                    app_type: Some("native".into()),
                    logo_uri: Some("https://sync.toolsmith-beta.example/logo.png".into()),
                    client_uri: Some("https://sync.toolsmith-beta.example/".into()),
                    redirect_uris: Some(vec!["http://127.0.0.1/sync/callback".into()]),
                    scopes: Some(vec!["openid".into(), "dns.read".into()]),
                    ..AppInput::default()
                },
            )
            .await?;
        self.update_app(
            dev,
            TOOLSMITH_ACCOUNT,
            &view.client.id,
            &AppInput {
                visibility: Some(Visibility::Public.as_str().into()),
                ..AppInput::default()
            },
        )
        .await
    }
}

/// What the demo holds, for printing.
fn demo_world(public: &AppView, private: &AppView, unverified: Option<&AppView>) -> DemoWorld {
    let app = |a: &AppView, what: &str| (a.client.name.clone(), a.client.id.clone(), what.into());
    let mut apps = vec![
        app(
            public,
            "public, verified (toolsmith.example), a CLI with PKCE and a loopback redirect",
        ),
        app(private, "private, unverified, a web app of Toolsmith Labs"),
    ];
    if let Some(u) = unverified {
        apps.push(app(
            u,
            "public but unverified: capped in users, outsiders are warned first",
        ));
    }
    DemoWorld {
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
    }
}
