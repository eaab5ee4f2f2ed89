//! `/ui/admin`: the operator console (apps, review queue, audit log) and, for account admins,
//! their accounts' policy and audit log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::clock::rfc3339;
use latchkey_core::platform::PlatformError;
use latchkey_core::platform::apps::AppView;
use latchkey_core::platform::model::{Account, Role};
use latchkey_core::platform::operator::AuditRow;
use latchkey_types::routes::{fill, public};

use super::{Console, Form, Nav, error_page, see_other};
use crate::pages::render;
use crate::state::AppState;

pub struct AdminAccount {
    pub account: Account,
    pub audit: Vec<AuditRow>,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub nav: Nav,
    /// Operators only.
    pub apps: Vec<AppView>,
    pub audit: Vec<AuditRow>,
    pub accounts: Vec<AdminAccount>,
}

// Helpers the template calls: askama passes references and calls them as methods.
#[allow(
    clippy::unused_self,
    clippy::trivially_copy_pass_by_ref,
    clippy::ref_option
)]
impl AdminPage {
    fn time(&self, t: &i64) -> String {
        rfc3339(*t).replace('T', " ").replace('Z', " UTC")
    }

    fn app_action(&self, client_id: &str, action: &str) -> String {
        fill(public::UI_ADMIN_APP_ACTION, &[client_id, action])
    }

    fn policy_url(&self, account_id: &str) -> String {
        fill(public::UI_ADMIN_ACCOUNT_POLICY, &[account_id])
    }
}

pub async fn get(State(state): State<AppState>, console: Console) -> Response {
    let (p, who) = (&state.platform, &console.principal);
    let load = async {
        let (apps, audit) = if who.user.is_operator {
            (p.all_apps(who).await?, p.audit_log(who, None).await?)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut accounts = Vec::new();
        for m in who
            .memberships
            .iter()
            .filter(|m| m.role.at_least(Role::Admin))
        {
            accounts.push(AdminAccount {
                account: m.account.clone(),
                audit: p.audit_log(who, Some(&m.account.id)).await?,
            });
        }
        if !who.user.is_operator && accounts.is_empty() {
            return Err(PlatformError::Forbidden(
                "the admin console is for operators and account admins".into(),
            ));
        }
        Ok::<_, PlatformError>(AdminPage {
            nav: console.nav(&state, "admin"),
            apps,
            audit,
            accounts,
        })
    };
    match load.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(&e),
    }
}

pub async fn app_action(
    State(state): State<AppState>,
    console: Console,
    Path((client_id, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    let (p, who) = (&state.platform, &console.principal);
    let scope = form.get("scope").unwrap_or_default();
    let result = match action.as_str() {
        "suspend" => p.set_suspended(who, &client_id, true).await,
        "reinstate" => p.set_suspended(who, &client_id, false).await,
        "approve" => p.review_scope(who, &client_id, scope, true).await,
        "refuse" => p.review_scope(who, &client_id, scope, false).await,
        _ => Err(PlatformError::NotFound("this action")),
    };
    match result {
        Ok(()) => see_other(public::UI_ADMIN),
        Err(e) => error_page(&e),
    }
}

pub async fn account_policy(
    State(state): State<AppState>,
    console: Console,
    Path(account_id): Path<String>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    let (p, who) = (&state.platform, &console.principal);
    let result = if form.get("revoke_existing") == Some("1") {
        p.revoke_third_party_grants(who, &account_id)
            .await
            .map(|_| ())
    } else {
        p.set_third_party_policy(who, &account_id, form.get("block") == Some("1"))
            .await
    };
    match result {
        Ok(()) => see_other(public::UI_ADMIN),
        Err(e) => error_page(&e),
    }
}
