//! The built-in device verification page (`/ui/device`): the user enters the code their device
//! shows; before any login or consent, the page says which app is asking, with the publisher's
//! shield, and the user chooses to go on.

use latchkey_types::device::AcceptDeviceUserCode;
use latchkey_types::flow::RedirectTo;

use super::consent::Shield;
use super::policy::AppStanding;
use super::{Platform, PlatformError};

/// The app a user code belongs to, as the device page shows it before the login.
#[derive(Debug, Clone)]
pub struct DeviceAppView {
    pub app_name: String,
    pub logo_uri: String,
    pub shield: Shield,
    /// The verified (or claimed) publisher domain.
    pub publisher_domain: Option<String>,
    pub owner_account: Option<String>,
    /// The scopes the device asks for.
    pub scopes: Vec<String>,
    /// Where the browser goes to sign in and consent (the device verifier).
    pub continue_to: String,
}

impl Platform {
    /// Checks the user code entered for `challenge` ([`crate::oauth::Engine::accept_device_user_code`]:
    /// wrong codes count against the challenge and the address) and describes the app it
    /// belongs to.
    pub async fn device_enter(
        &self,
        challenge: &str,
        user_code: &str,
    ) -> Result<DeviceAppView, PlatformError> {
        let RedirectTo { redirect_to } = self
            .engine
            .accept_device_user_code(
                challenge,
                &AcceptDeviceUserCode {
                    user_code: user_code.to_owned(),
                },
            )
            .await?;
        let verifier = url::Url::parse(&redirect_to)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "device_verifier")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        let code = self
            .engine
            .device_code_of_verifier(&verifier)
            .await?
            .ok_or(PlatformError::NotFound("the device request"))?;
        let mut r = self.deps.store.read().await?;
        let app = AppStanding::load(r.as_mut(), &code.client_id)
            .await?
            .ok_or(PlatformError::NotFound("the app"))?;
        drop(r);
        let shield = app.shield();
        let client = &app.client;
        let publisher_domain = app
            .profile
            .as_ref()
            .and_then(|p| p.domain.clone().filter(|_| p.is_verified()))
            .or_else(|| {
                url::Url::parse(&client.client_uri)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
            });
        Ok(DeviceAppView {
            app_name: if client.name.is_empty() {
                client.id.clone()
            } else {
                client.name.clone()
            },
            logo_uri: client.logo_uri.clone(),
            shield,
            publisher_domain,
            owner_account: app.owner.map(|a| a.name),
            scopes: code.data.scope.to_vec(),
            continue_to: redirect_to,
        })
    }
}
