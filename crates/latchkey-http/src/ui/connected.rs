//! `/ui/apps`: the apps the user authorized, with one-click revocation.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::platform::connected::ConnectedApp;
use latchkey_types::routes::public;

use super::{Console, Form, Nav, ago, error_page, see_other};
use crate::pages::render;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "connected.html")]
pub struct ConnectedPage {
    pub nav: Nav,
    pub apps: Vec<ConnectedApp>,
    pub now: i64,
}

// Helpers the template calls: askama passes references and calls them as methods.
#[allow(
    clippy::unused_self,
    clippy::trivially_copy_pass_by_ref,
    clippy::ref_option
)]
impl ConnectedPage {
    fn ago(&self, t: &i64) -> String {
        ago(self.now, *t)
    }

    fn last_used(&self, a: &ConnectedApp) -> String {
        a.grant.last_used_at.map_or_else(
            || "not used yet".to_owned(),
            |t| format!("last used {}", ago(self.now, t)),
        )
    }

    fn revoke_url(&self, client_id: &str) -> String {
        latchkey_types::routes::fill(public::UI_APP_REVOKE, &[client_id])
    }
}

pub async fn get(State(state): State<AppState>, console: Console) -> Response {
    match state.platform.connected_apps(&console.principal).await {
        Ok(apps) => render(
            StatusCode::OK,
            &ConnectedPage {
                nav: console.nav(&state, "apps"),
                apps,
                now: state.deps.clock.now(),
            },
        ),
        Err(e) => error_page(&e),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
    form: Form,
) -> Response {
    if let Err(e) = console.check_csrf(&state, &form) {
        return error_page(&e);
    }
    match state
        .platform
        .revoke_connected_app(&console.principal, &client_id)
        .await
    {
        Ok(()) => see_other(public::UI_APPS),
        Err(e) => error_page(&e),
    }
}
