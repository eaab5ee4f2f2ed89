//! The device authorization grant (RFC 8628), wire-compatible with Hydra v25.4+.
//!
//! 1. The device asks `POST /oauth2/device/auth` ([`Engine::device_authorization`]) and shows
//!    the user code; it polls the token endpoint ([`Engine::device_code_grant`]).
//! 2. The user opens `GET /oauth2/device/verify` ([`Engine::device_verify`]): a device challenge
//!    is made, and the browser goes to the verification page (`urls.device.verification`).
//! 3. The page submits the user code: `PUT /admin/oauth2/auth/requests/device/accept`
//!    ([`Engine::accept_device_user_code`]) answers with the way back to the verify endpoint,
//!    carrying a `device_verifier`.
//! 4. That verifier starts an ordinary login and consent flow (the same [`FlowRecord`]s, see
//!    [`AuthRequest::device_code`]); it ends by authorizing the device code instead of issuing
//!    an authorization code, and at `urls.device.success`.
//!
//! Device codes are `lk_dc_` tokens, stored by hash; user codes are stored as a hash of their
//! normalised form. Every state change is one conditional statement ([`DeviceRepository`]), and
//! the polling interval, the guesses per challenge and per address live in the database, so they
//! hold across replicas.
//!
//! [`FlowRecord`]: super::flow::FlowRecord
//! [`DeviceRepository`]: crate::store::DeviceRepository

use latchkey_types::device::{AcceptDeviceUserCode, DeviceAuthorizationResponse};
use latchkey_types::flow::{OidcContext, RedirectTo};
use latchkey_types::routes::public;
use latchkey_types::{Scope, Secret};
use serde::{Deserialize, Serialize};

use super::Engine;
use super::authorize::{AuthorizeOutcome, BrowserCookies, page, with_param};
use super::error::{AuthorizeError, TokenError};
use super::flow::{AuthRequest, FlowError};
use super::issue::Issue;
use super::params::Params;
use super::records::{AuthorizationCode, CodeData};
use super::token::{Failure, Issued, Target, get, require};
use crate::client::{Client, GrantType};
use crate::clock::UnixTime;
use crate::crypto::{OpaqueToken, TokenHash, TokenKind, lookup_hash, lookup_key};
use crate::entropy::{Entropy, EntropyExt as _};
use crate::secret::SecretString;
use crate::store::{
    DeviceAcceptance, DeviceRedemption, Exchanged, StoreError, Tx, unit, write_device_acceptance,
    write_device_redemption,
};
use crate::throttle::Limit;

/// RFC 8628 §6.1: 20 consonants, no vowels (no words), no look-alikes of digits.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (about 34.6 bits).
pub const USER_CODE_LEN: usize = 8;
/// Wrong user codes one device challenge may be answered with.
pub const MAX_GUESSES_PER_CHALLENGE: i64 = 5;
/// Wrong user codes one address may enter within [`GUESS_WINDOW`] seconds.
pub const MAX_GUESSES_PER_ADDRESS: i64 = 20;
pub const GUESS_WINDOW: i64 = 3600;
/// Added to a device code's interval at each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;

/// Where a device code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodeState {
    /// Shown to the user; nobody entered it yet.
    Pending,
    /// A user entered it; the login and consent run.
    Verified,
    /// The consent was given: the next poll gets the tokens.
    Authorized,
    /// The login or consent was rejected.
    Denied,
    /// Redeemed for tokens.
    Used,
}

impl DeviceCodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Authorized => "authorized",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Verified,
            Self::Authorized,
            Self::Denied,
            Self::Used,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The authorization a consent gave a device code: what its tokens are minted from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    pub grant_id: String,
    pub family_id: String,
    pub data: CodeData,
}

/// What a device code carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCodeData {
    pub scope: Scope,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<DeviceAuthorization>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: TokenHash,
    pub user_code_hash: String,
    pub client_id: String,
    pub state: DeviceCodeState,
    pub data: DeviceCodeData,
    /// The least seconds between two polls.
    pub poll_interval: i64,
    pub polled_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// One visit of the device verification page.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceChallenge {
    pub challenge_hash: String,
    /// Hash of the browser's CSRF cookie: the login starts only in the browser that came.
    pub csrf: String,
    /// The address the browser came from, for the guesses per address.
    pub address: String,
    pub failures: i64,
    pub device_code_hash: Option<String>,
    pub verifier_hash: Option<String>,
    pub verifier_used_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A new user code, shown as `XXXX-XXXX`.
pub fn new_user_code(entropy: &dyn Entropy) -> String {
    let mut out = String::with_capacity(USER_CODE_LEN + 1);
    let mut chars = 0;
    while chars < USER_CODE_LEN {
        let [b] = entropy.array::<1>();
        // 240 = 12 × 20: rejection sampling keeps every letter equally likely.
        if b >= 240 {
            continue;
        }
        if chars == USER_CODE_LEN / 2 {
            out.push('-');
        }
        out.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
        chars += 1;
    }
    out
}

/// A user code as entered: case-insensitive, dashes and spaces ignored. `None` unless it is
/// [`USER_CODE_LEN`] letters of the alphabet.
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The normalised code shown the usual way, `XXXX-XXXX`.
fn display_user_code(normalized: &str) -> String {
    let (a, b) = normalized.split_at(USER_CODE_LEN / 2);
    format!("{a}-{b}")
}

/// The storage key of a normalised user code.
pub fn user_code_key(normalized: &str) -> String {
    lookup_hash(&format!("device-user-code:{normalized}"))
}

/// The scope and audience a device asks for: the scope within its client's, the audience its
/// `audience` and `resource` values ([`super::resources::ResourceServers::requested`]), the scope
/// as far as those resources accept it.
fn device_request(
    resources: &super::resources::ResourceServers,
    params: &Params,
    client: &Client,
) -> Result<(Scope, Vec<String>), TokenError> {
    let scope = Scope::parse(get(params, "scope")?.unwrap_or_default()).map_err(|e| {
        TokenError::ScopeMalformed {
            reason: e.to_string(),
        }
    })?;
    if let Some(s) = scope.difference(&client.scope).next() {
        return Err(TokenError::ScopeNotAllowed {
            scope: s.to_owned(),
        });
    }
    let audience = resources.requested(params, client)?;
    Ok((resources.scope_for(&scope, &audience), audience))
}

fn address_key(address: &str) -> String {
    format!("device-user-code:{address}")
}

impl Engine {
    /// `POST /oauth2/device/auth` (RFC 8628 §3.1): a device code and a user code for an
    /// authenticated client registered for the device grant.
    pub async fn device_authorization(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<DeviceAuthorizationResponse, TokenError> {
        if let Some(dup) = params.first_duplicate() {
            return Err(TokenError::ParameterRepeated {
                name: dup.to_owned(),
            });
        }
        let mut tx = self.deps.store.begin().await?;
        let client = self
            .authenticate_client(tx.as_mut(), authorization, params)
            .await?;
        // A client assertion's jti is recorded whatever comes next.
        tx.commit().await?;
        self.throttle.check(Limit::TokenPerClient, &client.id)?;
        if !client.allows_grant(GrantType::DeviceCode) {
            return Err(TokenError::UnauthorizedClient);
        }
        let (scope, audience) = device_request(&self.settings.resources, params, &client)?;
        let now = self.deps.clock.now();
        let interval = self.settings.device_poll_interval;
        let device_code = self.deps.mint(TokenKind::DeviceCode);
        // A user code taken by a live device code is drawn again (rare: 20^8 codes).
        let mut attempts = 0;
        let user_code = loop {
            let user_code = new_user_code(self.deps.entropy.as_ref());
            let normalized = normalize_user_code(&user_code).unwrap_or_default();
            let record = DeviceCodeRecord {
                device_code_hash: device_code.hash.clone(),
                user_code_hash: user_code_key(&normalized),
                client_id: client.id.clone(),
                state: DeviceCodeState::Pending,
                data: DeviceCodeData {
                    scope: scope.clone(),
                    audience: audience.clone(),
                    authorization: None,
                },
                poll_interval: interval,
                polled_at: None,
                created_at: now,
                expires_at: now + self.settings.device_code_ttl,
            };
            let inserted = unit(self.deps.store.as_ref(), move |tx| {
                Box::pin(async move { tx.device_codes().insert_code(&record).await })
            })
            .await;
            match inserted {
                Ok(()) => break user_code,
                Err(StoreError::Conflict(_)) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let verification_uri = self.settings.url(public::DEVICE_VERIFY);
        Ok(DeviceAuthorizationResponse {
            device_code: Secret::from(device_code.value),
            verification_uri_complete: with_param(&verification_uri, "user_code", &user_code),
            user_code,
            verification_uri,
            expires_in: self.settings.device_code_ttl,
            interval,
        })
    }

    /// `GET /oauth2/device/verify`: with a `device_verifier`, starts the login of the device
    /// code the user entered; with a login or consent verifier, continues that flow (as the
    /// authorization endpoint does); otherwise a new device challenge, and the browser to the
    /// verification page (with the `user_code` it came with, from `verification_uri_complete`).
    pub async fn device_verify(
        &self,
        params: &Params,
        cookies: &BrowserCookies,
        address: &str,
    ) -> Result<AuthorizeOutcome, StoreError> {
        if let Some(dup) = params.first_duplicate() {
            return Ok(page(AuthorizeError::ParameterRepeated {
                name: dup.to_owned(),
            }));
        }
        if matches!(params.get("login_verifier"), Ok(Some(_)))
            || matches!(params.get("consent_verifier"), Ok(Some(_)))
        {
            return self.authorize(params, cookies).await;
        }
        if let Ok(Some(verifier)) = params.get("device_verifier") {
            return self.start_device_flow(verifier, cookies).await;
        }
        let now = self.deps.clock.now();
        let existing = cookies
            .csrf
            .as_ref()
            .map(SecretString::expose)
            .filter(|c| (32..=128).contains(&c.len()));
        let new_csrf = existing.is_none().then(|| self.deps.entropy.token());
        let csrf_value = existing
            .map(str::to_owned)
            .or_else(|| new_csrf.clone())
            .unwrap_or_default();
        let challenge = self.deps.mint_lookup_value();
        let record = DeviceChallenge {
            challenge_hash: challenge.key,
            csrf: lookup_hash(&csrf_value),
            address: address.chars().take(64).collect(),
            failures: 0,
            device_code_hash: None,
            verifier_hash: None,
            verifier_used_at: None,
            created_at: now,
            expires_at: now + self.settings.flow_ttl,
        };
        unit(self.deps.store.as_ref(), move |tx| {
            Box::pin(async move { tx.device_codes().insert_challenge(&record).await })
        })
        .await?;
        let mut location = with_param(
            &self.settings.device_verification_url,
            "device_challenge",
            &challenge.value,
        );
        if let Ok(Some(code)) = params.get("user_code")
            && let Some(code) = normalize_user_code(code)
        {
            location = with_param(&location, "user_code", &display_user_code(&code));
        }
        Ok(AuthorizeOutcome::Redirect {
            location,
            csrf: new_csrf.map(SecretString::from),
            session: None,
        })
    }

    /// The browser is back with a device verifier: the login and consent flow of its device
    /// code starts, in the browser that answered the challenge.
    async fn start_device_flow(
        &self,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let expired = || page(AuthorizeError::LinkExpired);
        if verifier.len() > 128 {
            return Ok(expired());
        }
        let verifier_hash = lookup_key(verifier);
        let Some(challenge) = self
            .deps
            .store
            .read()
            .await?
            .device_codes()
            .challenge_by_verifier(&verifier_hash)
            .await?
        else {
            return Ok(expired());
        };
        let csrf_ok = cookies
            .csrf
            .as_ref()
            .map(SecretString::expose)
            .is_some_and(|c| {
                crate::secret::ct_eq(lookup_hash(c).as_bytes(), challenge.csrf.as_bytes())
            });
        if !csrf_ok {
            return Ok(page(AuthorizeError::OtherBrowser));
        }
        let now = self.deps.clock.now();
        let Some(device_hash) = challenge
            .device_code_hash
            .filter(|_| challenge.expires_at > now)
        else {
            return Ok(expired());
        };
        let device_hash = TokenHash(device_hash);
        let Some(code) = self
            .deps
            .store
            .read()
            .await?
            .device_codes()
            .code(&device_hash)
            .await?
            .filter(|c| c.state == DeviceCodeState::Verified && c.expires_at > now)
        else {
            return Ok(expired());
        };
        let Some(client) = self.deps.store.client(&code.client_id).await? else {
            return Ok(page(AuthorizeError::UnknownClient));
        };
        if !client.is_active() {
            return Ok(page(AuthorizeError::ClientSuspended));
        }
        let used = unit(self.deps.store.as_ref(), move |tx| {
            Box::pin(async move { tx.device_codes().use_verifier(&verifier_hash, now).await })
        })
        .await?;
        if !used {
            return Ok(page(AuthorizeError::LoginLinkUsed));
        }
        // The flow's way back names the client, and where it ends (what a consent screen
        // shows as the place the user is sent to).
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &self.settings.device_success_url)
            .finish();
        let request = AuthRequest {
            client_id: client.id.clone(),
            // Where the flow ends: the device success page, with an error when it is denied.
            redirect_uri: self.settings.device_success_url.clone(),
            redirect_uri_given: false,
            scope: code.data.scope.clone(),
            audience: code.data.audience.clone(),
            state: None,
            nonce: None,
            code_challenge: None,
            // Hydra never skips the consent of a device flow: the user must see what the
            // device gets.
            prompt: vec!["consent".into()],
            max_age: None,
            oidc: OidcContext::default(),
            query,
            device_code: Some(device_hash.0),
        };
        self.begin_flow(request, cookies).await
    }

    /// The device code a device verifier (from [`Engine::accept_device_user_code`]) leads to,
    /// while it is live: what the device page shows before the login.
    pub async fn device_code_of_verifier(
        &self,
        verifier: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        if verifier.is_empty() || verifier.len() > 128 {
            return Ok(None);
        }
        let mut r = self.deps.store.read().await?;
        let Some(hash) = r
            .device_codes()
            .challenge_by_verifier(&lookup_key(verifier))
            .await?
            .and_then(|c| c.device_code_hash)
        else {
            return Ok(None);
        };
        let now = self.deps.clock.now();
        Ok(r.device_codes()
            .code(&TokenHash(hash))
            .await?
            .filter(|c| c.expires_at > now))
    }

    /// `PUT /admin/oauth2/auth/requests/device/accept`: the user code the user entered for a
    /// device challenge. A right one answers with the way to the login; a wrong, expired or used
    /// one is `invalid_request`, and counts against the challenge and the address it came from.
    pub async fn accept_device_user_code(
        &self,
        challenge: &str,
        body: &AcceptDeviceUserCode,
    ) -> Result<RedirectTo, FlowError> {
        if challenge.is_empty() || challenge.len() > 256 {
            return Err(FlowError::NotFound);
        }
        let challenge_hash = lookup_key(challenge);
        let now = self.deps.clock.now();
        let mut r = self.deps.store.read().await?;
        let record = r
            .device_codes()
            .challenge(&challenge_hash)
            .await?
            .filter(|c| c.expires_at > now)
            .ok_or(FlowError::NotFound)?;
        if record.verifier_hash.is_some() {
            return Err(FlowError::Handled {
                redirect_to: self.settings.url(public::DEVICE_VERIFY),
            });
        }
        let address = address_key(&record.address);
        let by_address = r.login_throttle().get(&address).await?;
        if record.failures >= MAX_GUESSES_PER_CHALLENGE
            || by_address.is_some_and(|t| {
                t.failures >= MAX_GUESSES_PER_ADDRESS && t.last_failure_at > now - GUESS_WINDOW
            })
        {
            return Err(FlowError::UserCodeGuessesExhausted);
        }
        let code = match normalize_user_code(&body.user_code) {
            Some(n) => {
                r.device_codes()
                    .code_by_user_code(&user_code_key(&n))
                    .await?
            }
            None => None,
        }
        .filter(|c| c.state == DeviceCodeState::Pending && c.expires_at > now);
        drop(r);
        if let Some(code) = code {
            let verifier = self.deps.mint_lookup_value();
            let acceptance = DeviceAcceptance {
                challenge_hash: challenge_hash.clone(),
                device_code: code.device_code_hash,
                verifier_hash: verifier.key,
                now,
            };
            let accepted = unit(self.deps.store.as_ref(), move |tx| {
                Box::pin(async move { write_device_acceptance(tx, &acceptance).await })
            })
            .await;
            match accepted {
                Ok(true) => {
                    return Ok(RedirectTo {
                        redirect_to: with_param(
                            &self.settings.url(public::DEVICE_VERIFY),
                            "device_verifier",
                            &verifier.value,
                        ),
                    });
                }
                // The challenge was answered by a request racing this one.
                Err(StoreError::Conflict(_)) => {
                    return Err(FlowError::Handled {
                        redirect_to: self.settings.url(public::DEVICE_VERIFY),
                    });
                }
                Ok(false) => {}
                Err(e) => return Err(e.into()),
            }
        }
        unit(self.deps.store.as_ref(), move |tx| {
            Box::pin(async move {
                tx.device_codes().count_failure(&challenge_hash).await?;
                tx.login_throttle().record_failure(&address, now).await?;
                Ok(())
            })
        })
        .await?;
        Err(FlowError::UserCodeInvalid)
    }

    /// The token endpoint's device grant (RFC 8628 §3.4, §3.5), for an authenticated client
    /// allowed it: the poll is recorded (one conditional statement: a poll sooner than the
    /// interval, or racing another, is `slow_down` and lengthens the interval), then the code's
    /// state answers — pending, denied, expired — or, once authorized, the code is redeemed for
    /// the tokens, once.
    pub(super) async fn device_code_grant(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        params: &Params,
    ) -> Result<Issued, Failure> {
        let token = require(params, "device_code")?;
        let hash = OpaqueToken::verify(TokenKind::DeviceCode, token, &self.deps.secrets)
            .map_err(|_| TokenError::DeviceCodeInvalid)?;
        let record = tx
            .device_codes()
            .code(&hash)
            .await
            .map_err(TokenError::from)?
            .ok_or(TokenError::DeviceCodeInvalid)?;
        if record.client_id != client.id {
            return Err(TokenError::DeviceCodeOfAnotherClient.into());
        }
        let now = self.deps.clock.now();
        match record.state {
            DeviceCodeState::Used => return Err(TokenError::DeviceCodeAlreadyUsed.into()),
            _ if record.expires_at <= now => return Err(TokenError::ExpiredToken.into()),
            DeviceCodeState::Denied => return Err(TokenError::AccessDenied.into()),
            _ => {}
        }
        let too_fast = record
            .polled_at
            .is_some_and(|last| now < last + record.poll_interval);
        let recorded = tx
            .device_codes()
            .record_poll(&hash, record.polled_at, now, too_fast)
            .await
            .map_err(TokenError::from)?;
        if too_fast || !recorded {
            return Err(TokenError::SlowDown.into());
        }
        let authorization = match (record.state, record.data.authorization) {
            (DeviceCodeState::Authorized, Some(a)) => a,
            (DeviceCodeState::Authorized, None) => {
                return Err(
                    TokenError::Internal("an authorized device code has no data".into()).into(),
                );
            }
            _ => return Err(TokenError::AuthorizationPending.into()),
        };
        let code = AuthorizationCode {
            code_hash: hash.clone(),
            client_id: client.id.clone(),
            grant_id: authorization.grant_id,
            family_id: authorization.family_id,
            data: authorization.data,
            created_at: record.created_at,
            expires_at: record.expires_at,
            consumed_at: None,
        };
        let data = &code.data;
        let issue = Issue {
            client,
            subject: &data.subject,
            scope: &data.scope,
            audience: &data.audience,
            claims: &data.claims,
            grant_id: Some(&code.grant_id),
            family_id: &code.family_id,
        };
        let minted = self.mint(&issue, &Target::whole(&data.scope, &data.audience), None)?;
        let redemption = DeviceRedemption {
            device_code: hash,
            client_id: client.id.clone(),
            grant_id: code.grant_id.clone(),
            access: minted.access,
            refresh: minted.refresh,
        };
        match write_device_redemption(tx, &redemption, now)
            .await
            .map_err(TokenError::from)?
        {
            Exchanged::Written => Ok(minted.issued),
            Exchanged::CodeUsed => Err(TokenError::DeviceCodeAlreadyUsed.into()),
            Exchanged::GrantRevoked => Err(TokenError::GrantRevoked.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn user_codes_follow_rfc_8628() {
        let entropy = SeededEntropy::new(7);
        for _ in 0..200 {
            let code = new_user_code(&entropy);
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            let normalized = normalize_user_code(&code).expect("valid");
            assert!(normalized.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(display_user_code(&normalized), code);
        }
    }

    #[test]
    fn user_codes_are_read_case_insensitively_without_dashes() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(
            normalize_user_code(" bcdf ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        // Vowels, digits, the wrong length: never a user code.
        for bad in [
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "",
            "BCDF_GHJK",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(
            user_code_key("BCDFGHJK"),
            user_code_key(&normalize_user_code("bcdf-ghjk").expect("valid"))
        );
    }
}
