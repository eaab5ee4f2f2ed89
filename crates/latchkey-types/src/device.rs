//! The device authorization grant (RFC 8628), as Hydra v25.4+ speaks it.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `POST /oauth2/device/auth`'s answer (RFC 8628 §3.2). The device code is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// `PUT /admin/oauth2/auth/requests/device/accept`'s body (Hydra's
/// `AcceptDeviceUserCodeRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptDeviceUserCode {
    #[serde(default)]
    pub user_code: String,
}
