//! Clients we did not write, on real sockets: the `openidconnect` crate as the relying party
//! (discovery, code + PKCE, ID token validation, userinfo, refresh, revocation) and the `oauth2`
//! crate (client credentials, revocation). The test plays the login/consent app through the
//! admin API, as a Hydra login/consent app would.

use latchkey_store::testing::TestDatabase;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::reqwest;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyAdditionalClaims,
    IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RevocationUrl, Scope, TokenResponse as _, UserInfoClaims,
};
use serde_json::{Value, json};

use crate::support::{Served, engine_test};

const REDIRECT: &str = "http://127.0.0.1:53682/callback";

/// A client that trusts the test server's certificate and follows no redirect.
fn http(served: &Served) -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(served.ca_pem.as_bytes()).expect("certificate"),
        )
        .build()
        .expect("client")
}

/// The login/consent app: accepts through the admin API.
async fn accept(
    http: &reqwest::Client,
    admin: &str,
    kind: &str,
    challenge: &str,
    body: Value,
) -> String {
    let url =
        format!("{admin}/admin/oauth2/auth/requests/{kind}/accept?{kind}_challenge={challenge}");
    let res: Value = http
        .put(url)
        .json(&body)
        .send()
        .await
        .expect("accept")
        .json()
        .await
        .expect("json");
    res["redirect_to"].as_str().expect("redirect_to").to_owned()
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn follow(browser: &reqwest::Client, url: &str) -> String {
    let res = browser.get(url).send().await.expect("browser");
    assert!(res.status().is_redirection(), "{url}: {}", res.status());
    res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

engine_test!(openidconnect_crate_code_flow_refresh_userinfo_and_revoke);
async fn openidconnect_crate_code_flow_refresh_userinfo_and_revoke(db: TestDatabase) {
    let served = Served::start(db).await;
    let http = http(&served);
    let created: Value = http
        .post(format!("{}/admin/clients", served.admin))
        .json(&json!({
            "client_name": "RP", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access email",
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");

    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(served.public.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(created["client_id"].as_str().expect("id").into()),
        Some(ClientSecret::new(
            created["client_secret"].as_str().expect("secret").into(),
        )),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"))
    .set_revocation_url(
        RevocationUrl::new(format!("{}/oauth2/revoke", served.public)).expect("revocation"),
    );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser, with its cookies, through login and consent.
    let browser = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(served.ca_pem.as_bytes()).expect("certificate"),
        )
        .cookie_store(true)
        .build()
        .expect("browser");
    let to_login = follow(&browser, auth_url.as_str()).await;
    let back = accept(
        &http,
        &served.admin,
        "login",
        &param(&to_login, "login_challenge"),
        json!({"subject": "alice", "acr": "2"}),
    )
    .await;
    let to_consent = follow(&browser, &back).await;
    let back = accept(
        &http,
        &served.admin,
        "consent",
        &param(&to_consent, "consent_challenge"),
        json!({"grant_scope": ["openid", "offline_access", "email"], "session": {"id_token": {"email": "alice@example.test", "email_verified": true}}}),
    )
    .await;
    let callback = follow(&browser, &back).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    assert_eq!(param(&callback, "state"), *csrf.secret());
    assert_eq!(param(&callback, "iss"), served.public);

    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&callback, "code")))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), "alice");
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.test")
    );
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("2"));
    let alg = id_token.signing_alg().expect("alg");
    let verifier = client.id_token_verifier();
    let key = id_token.signing_key(&verifier).expect("key");
    let at_hash = AccessTokenHash::from_token(tokens.access_token(), alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&at_hash), "at_hash");

    let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), "alice");
    assert_eq!(info.email_verified(), Some(true));

    let refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .expect("refresh")
        .request_async(&http)
        .await
        .expect("refresh works");
    let new_refresh = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    // A retry of the spent token within the grace period gets the very same response.
    let again = client
        .exchange_refresh_token(&refresh)
        .expect("refresh")
        .request_async(&http)
        .await
        .expect("retry within the grace period");
    assert_eq!(
        again.refresh_token().map(|t| t.secret().clone()),
        Some(new_refresh.secret().clone())
    );
    assert_eq!(
        again.access_token().secret(),
        refreshed.access_token().secret()
    );

    // Revoking the refresh token revokes its family: the access token goes with it.
    let fresh = RefreshToken::new(new_refresh.secret().clone());
    client
        .revoke_token(fresh.into())
        .expect("revocation endpoint")
        .request_async(&http)
        .await
        .expect("revoke answers 200");
    let intro: Value = http
        .post(format!("{}/admin/oauth2/introspect", served.admin))
        .form(&[("token", refreshed.access_token().secret())])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    assert_eq!(intro["active"], false);
}

engine_test!(oauth2_crate_client_credentials_and_revocation);
async fn oauth2_crate_client_credentials_and_revocation(db: TestDatabase) {
    use oauth2::basic::BasicClient;
    use oauth2::{AuthUrl, StandardRevocableToken, TokenUrl};

    let served = Served::start(db).await;
    let http = http(&served);
    let created: Value = http
        .post(format!("{}/admin/clients", served.admin))
        .json(&json!({"client_name": "svc", "grant_types": ["client_credentials"], "scope": "dns.read dns.write"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let client = BasicClient::new(oauth2::ClientId::new(
        created["client_id"].as_str().expect("id").into(),
    ))
    .set_client_secret(oauth2::ClientSecret::new(
        created["client_secret"].as_str().expect("secret").into(),
    ))
    .set_auth_uri(AuthUrl::new(format!("{}/oauth2/auth", served.public)).expect("url"))
    .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", served.public)).expect("url"))
    .set_revocation_url(
        oauth2::RevocationUrl::new(format!("{}/oauth2/revoke", served.public)).expect("url"),
    );
    let token = client
        .exchange_client_credentials()
        .add_scope(oauth2::Scope::new("dns.read".into()))
        .request_async(&http)
        .await
        .expect("client credentials");
    assert_eq!(token.scopes().map(Vec::len), Some(1));
    let at = token.access_token().secret().clone();
    let introspect = |t: String| {
        let http = http.clone();
        let admin = served.admin.clone();
        async move {
            http.post(format!("{admin}/admin/oauth2/introspect"))
                .form(&[("token", t)])
                .send()
                .await
                .expect("i")
                .json::<Value>()
                .await
                .expect("j")
        }
    };
    assert_eq!(introspect(at.clone()).await["active"], true);
    client
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .expect("revocation endpoint")
        .request_async(&http)
        .await
        .expect("revoked");
    assert_eq!(introspect(at).await["active"], false);
    let denied = client
        .exchange_client_credentials()
        .add_scope(oauth2::Scope::new("admin".into()))
        .request_async(&http)
        .await;
    assert!(denied.is_err(), "invalid_scope");
}
