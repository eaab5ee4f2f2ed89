//! `/ui/developer`: the developer console (the same services as the self-service API).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::platform::PlatformError;
use latchkey_core::platform::apps::AppView;
use latchkey_core::platform::catalog::CatalogScope;
use latchkey_core::platform::model::{Account, Role};
use latchkey_types::platform::AppInput;
use latchkey_types::routes::{fill, public};

use super::{Console, Form, Nav, error_page, see_other};
use crate::pages::render;
use crate::state::AppState;

/// One account's apps.
pub struct AccountApps {
    pub account: Account,
    pub role: &'static str,
    pub apps: Vec<AppView>,
}

#[derive(Template)]
#[template(path = "developer.html")]
pub struct IndexPage {
    pub nav: Nav,
    pub accounts: Vec<AccountApps>,
}

/// A catalog scope and how the app uses it.
pub struct ScopeChoice {
    pub scope: CatalogScope,
    /// `required`, `optional` or empty.
    pub usage: &'static str,
}

#[derive(Template)]
#[template(path = "developer_app.html")]
pub struct AppPage {
    pub nav: Nav,
    pub account: Account,
    /// `None` on the create form.
    pub app: Option<AppView>,
    pub input: AppInput,
    pub scopes: Vec<ScopeChoice>,
    pub error: Option<String>,
    pub notice: Option<String>,
    /// A secret to show once.
    pub secret: Option<String>,
    pub action_base: String,
}

// Helpers the template calls: askama passes references and calls them as methods.
#[allow(
    clippy::unused_self,
    clippy::trivially_copy_pass_by_ref,
    clippy::ref_option
)]
impl AppPage {
    fn field(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or_default()
    }
}

fn app_url(account_id: &str, client_id: &str) -> String {
    fill(public::UI_DEVELOPER_APP, &[account_id, client_id])
}

fn input_from(form: &Form, state: &AppState) -> AppInput {
    let lines = |name: &str, sep: char| -> Vec<String> {
        form.get(name)
            .unwrap_or_default()
            .split(sep)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut required = Vec::new();
    let mut optional = Vec::new();
    for s in state.platform.catalog().all() {
        match form.get(&format!("scope:{}", s.name)) {
            Some("required") => required.push(s.name.clone()),
            Some("optional") => optional.push(s.name.clone()),
            _ => {}
        }
    }
    let text = |name: &str| form.get(name).map(str::to_owned);
    AppInput {
        name: text("name"),
        description: text("description"),
        app_type: text("app_type"),
        logo_uri: text("logo_uri"),
        client_uri: text("client_uri"),
        policy_uri: text("policy_uri"),
        tos_uri: text("tos_uri"),
        contacts: Some(lines("contacts", ',')),
        redirect_uris: Some(lines("redirect_uris", '\n')),
        scopes: Some(required),
        optional_scopes: Some(optional),
        visibility: None,
    }
}

fn input_of(app: &AppView) -> AppInput {
    let c = &app.client;
    AppInput {
        name: Some(c.name.clone()),
        description: Some(app.profile.description.clone()),
        app_type: Some(app.profile.app_type.as_str().into()),
        logo_uri: Some(c.logo_uri.clone()),
        client_uri: Some(c.client_uri.clone()),
        policy_uri: Some(c.policy_uri.clone()),
        tos_uri: Some(c.tos_uri.clone()),
        contacts: Some(c.contacts.clone()),
        redirect_uris: Some(c.redirect_uris.clone()),
        scopes: Some(app.profile.required_scopes.to_vec()),
        optional_scopes: Some(app.profile.optional_scopes.to_vec()),
        visibility: None,
    }
}

fn choices(state: &AppState, input: &AppInput) -> Vec<ScopeChoice> {
    let has =
        |l: &Option<Vec<String>>, s: &str| l.as_ref().is_some_and(|l| l.iter().any(|x| x == s));
    state
        .platform
        .catalog()
        .all()
        .iter()
        .map(|s| ScopeChoice {
            usage: if has(&input.scopes, &s.name) {
                "required"
            } else if has(&input.optional_scopes, &s.name) {
                "optional"
            } else {
                ""
            },
            scope: s.clone(),
        })
        .collect()
}

struct Shown {
    error: Option<String>,
    notice: Option<String>,
    secret: Option<String>,
}

fn app_page(
    state: &AppState,
    console: &Console,
    account: Account,
    app: Option<AppView>,
    input: Option<AppInput>,
    shown: Shown,
) -> Response {
    let input = input
        .or_else(|| app.as_ref().map(input_of))
        .unwrap_or_default();
    let status = if shown.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let action_base = match &app {
        Some(a) => app_url(&account.id, &a.client.id),
        None => fill(public::UI_DEVELOPER_NEW, &[&account.id]),
    };
    render(
        status,
        &AppPage {
            nav: console.nav(state, "developer"),
            scopes: choices(state, &input),
            account,
            app,
            input,
            error: shown.error,
            notice: shown.notice,
            secret: shown.secret,
            action_base,
        },
    )
}

fn account_of(console: &Console, account_id: &str) -> Result<Account, PlatformError> {
    console
        .principal
        .require(account_id, Role::Developer)
        .map(|m| m.account.clone())
}

pub async fn index(State(state): State<AppState>, console: Console) -> Response {
    let mut accounts = Vec::new();
    for m in console
        .principal
        .memberships
        .iter()
        .filter(|m| m.role.at_least(Role::Developer))
    {
        match state
            .platform
            .list_apps(&console.principal, &m.account.id)
            .await
        {
            Ok(apps) => accounts.push(AccountApps {
                account: m.account.clone(),
                role: m.role.as_str(),
                apps,
            }),
            Err(e) => return error_page(&e),
        }
    }
    render(
        StatusCode::OK,
        &IndexPage {
            nav: console.nav(&state, "developer"),
            accounts,
        },
    )
}

pub async fn new_form(
    State(state): State<AppState>,
    console: Console,
    Path(account_id): Path<String>,
) -> Response {
    match account_of(&console, &account_id) {
        Ok(account) => app_page(
            &state,
            &console,
            account,
            None,
            None,
            Shown {
                error: None,
                notice: None,
                secret: None,
            },
        ),
        Err(e) => error_page(&e),
    }
}

pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Path(account_id): Path<String>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    let account = match account_of(&console, &account_id) {
        Ok(a) => a,
        Err(e) => return error_page(&e),
    };
    let input = input_from(&form, &state);
    match state
        .platform
        .create_app(&console.principal, &account_id, &input)
        .await
    {
        Ok((app, secret)) => {
            let notice = Some("The app was created. It is private: only members of this account can authorize it.".into());
            let secret = secret.map(latchkey_core::secret::SecretString::into_exposed);
            app_page(
                &state,
                &console,
                account,
                Some(app),
                None,
                Shown {
                    error: None,
                    notice,
                    secret,
                },
            )
        }
        Err(e @ PlatformError::Invalid { .. }) => app_page(
            &state,
            &console,
            account,
            None,
            Some(input),
            Shown {
                error: Some(e.to_string()),
                notice: None,
                secret: None,
            },
        ),
        Err(e) => error_page(&e),
    }
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path((account_id, client_id)): Path<(String, String)>,
) -> Response {
    match state
        .platform
        .get_app(&console.principal, &account_id, &client_id)
        .await
    {
        Ok(app) => app_page(
            &state,
            &console,
            app.account.clone(),
            Some(app),
            None,
            Shown {
                error: None,
                notice: None,
                secret: None,
            },
        ),
        Err(e) => error_page(&e),
    }
}

pub async fn action(
    State(state): State<AppState>,
    console: Console,
    Path((account_id, client_id, action)): Path<(String, String, String)>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    let (p, who) = (&state.platform, &console.principal);
    let (a, c) = (account_id.as_str(), client_id.as_str());
    let mut secret = None;
    let mut input = None;
    let result = match action.as_str() {
        "update" => {
            let i = input_from(&form, &state);
            input = Some(i.clone());
            p.update_app(who, a, c, &AppInput { app_type: None, ..i }).await.map(|v| (v, "Saved."))
        }
        "publish" => {
            let i = AppInput { visibility: Some("public".into()), ..AppInput::default() };
            p.update_app(who, a, c, &i).await.map(|v| (v, "The app is public: any user can now authorize it."))
        }
        "rotate" => p.rotate_secret(who, a, c).await.map(|(v, s)| {
            secret = Some(s.into_exposed());
            (v, "A new secret was issued. The old one keeps working until you confirm the rotation.")
        }),
        "confirm-rotation" => p.confirm_rotation(who, a, c).await.map(|v| (v, "Rotation confirmed: the old secret no longer works.")),
        "verify" => p.verify_domain(who, a, c).await.map(|v| {
            let msg = if v.profile.is_verified() { "The domain is verified and now locked to this app." } else { "Publish the TXT record below, then check again." };
            (v, msg)
        }),
        "request-scope" => {
            let scope = form.get("scope").unwrap_or_default().to_owned();
            p.request_scope(who, a, c, &scope).await.map(|v| (v, "Requested: an operator will review it."))
        }
        "delete" => {
            return match p.delete_app(who, a, c).await {
                Ok(()) => see_other(public::UI_DEVELOPER),
                Err(e) => error_page(&e),
            };
        }
        _ => Err(PlatformError::NotFound("this action")),
    };
    match result {
        Ok((app, notice)) => app_page(
            &state,
            &console,
            app.account.clone(),
            Some(app),
            None,
            Shown {
                error: None,
                notice: Some(notice.into()),
                secret,
            },
        ),
        Err(e @ (PlatformError::Invalid { .. } | PlatformError::Conflict(_))) => {
            match p.get_app(who, a, c).await {
                Ok(app) => app_page(
                    &state,
                    &console,
                    app.account.clone(),
                    Some(app),
                    input,
                    Shown {
                        error: Some(super::capitalize(&e.to_string())),
                        notice: None,
                        secret: None,
                    },
                ),
                Err(e) => error_page(&e),
            }
        }
        Err(e) => error_page(&e),
    }
}
