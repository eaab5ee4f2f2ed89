// Helpers shared by the tests: the Hydra admin SDK, an openid-client relying party for a client,
// and the authorization code flow played by a browser and a login/consent app.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Configuration as HydraConfiguration, OAuth2Api } from '@ory/hydra-client';
import * as oidc from 'openid-client';

import { Browser } from './browser.mjs';
import { LOGIN_URL, CONSENT_URL } from './latchkey.mjs';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** Ory's admin client, pointed at Latchkey's admin listener (directly: axios would otherwise
 * honour proxy variables from the environment, even for loopback). */
export function hydraAdmin(adminUrl) {
  return new OAuth2Api(new HydraConfiguration({ basePath: adminUrl, baseOptions: { proxy: false } }));
}

/** A unique suffix, so that the tests of one run never share a subject or client name. */
export function unique(prefix) {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** Creates a confidential client (client_secret_basic, code + refresh) with the Hydra SDK. */
export async function createCodeClient(hydra, overrides = {}) {
  const { data } = await hydra.createOAuth2Client({
    oAuth2Client: {
      client_name: unique('interop-node'),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      scope: 'openid offline_access email profile',
      token_endpoint_auth_method: 'client_secret_basic',
      ...overrides,
    },
  });
  return data;
}

/** openid-client's configuration for `client`: discovery against the issuer, client_secret_basic,
 * plain http allowed (loopback issuer), and ID token signatures checked against the JWKS. */
export async function relyingParty(issuer, client) {
  const config = await oidc.discovery(
    new URL(issuer),
    client.client_id,
    { client_secret: client.client_secret },
    oidc.ClientSecretBasic(client.client_secret),
    { execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks] },
  );
  return config;
}

/** The query of an absolute URL as a plain object. */
export function query(url) {
  return Object.fromEntries(new URL(url).searchParams);
}

/** A GET that must redirect; returns the absolute Location. */
export async function expectRedirect(browser, url, what) {
  const res = await browser.get(url);
  assert.ok(
    res.status === 302 || res.status === 303,
    `${what}: expected a redirect, got ${res.status}: ${res.body.slice(0, 500)}`,
  );
  assert.ok(res.location, `${what}: redirect without Location`);
  return res.location;
}

/**
 * Runs the authorization code flow up to the redirect back to the client:
 * openid-client builds the authorization URL (PKCE S256, state, nonce); the browser follows
 * /oauth2/auth → login URL; the login app (Hydra SDK) accepts; the browser brings the
 * login_verifier back → consent URL; the consent app accepts; the browser brings the
 * consent_verifier back → redirect_uri with code, state and iss.
 *
 * `login(request)` and `consent(request)` return the accept bodies (or `{ reject: body }`).
 * Resolves to `{ callback, codeVerifier, state, nonce, loginRequest, consentRequest }`.
 */
export async function authorize(
  { config, hydra, browser = new Browser(), scope = 'openid offline_access email', params = {} },
  { login, consent },
) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...params,
  });

  const toLogin = await expectRedirect(browser, url, 'authorization endpoint');
  assert.ok(toLogin.startsWith(`${LOGIN_URL}?`), `expected the login URL, got ${toLogin}`);
  const loginChallenge = query(toLogin).login_challenge;
  assert.ok(loginChallenge, 'login_challenge in the login URL');

  const { data: loginRequest } = await hydra.getOAuth2LoginRequest({ loginChallenge });
  const loginAnswer = await login(loginRequest);
  const { data: loginRedirect } = loginAnswer.reject
    ? await hydra.rejectOAuth2LoginRequest({ loginChallenge, rejectOAuth2Request: loginAnswer.reject })
    : await hydra.acceptOAuth2LoginRequest({ loginChallenge, acceptOAuth2LoginRequest: loginAnswer });
  assert.equal(typeof loginRedirect.redirect_to, 'string');
  if (loginAnswer.reject) {
    return { callback: await expectRedirect(browser, loginRedirect.redirect_to, 'login verifier'), codeVerifier, state, nonce, loginRequest };
  }

  const toConsent = await expectRedirect(browser, loginRedirect.redirect_to, 'login verifier');
  assert.ok(toConsent.startsWith(`${CONSENT_URL}?`), `expected the consent URL, got ${toConsent}`);
  const consentChallenge = query(toConsent).consent_challenge;
  assert.ok(consentChallenge, 'consent_challenge in the consent URL');

  const { data: consentRequest } = await hydra.getOAuth2ConsentRequest({ consentChallenge });
  const consentAnswer = await consent(consentRequest);
  const { data: consentRedirect } = consentAnswer.reject
    ? await hydra.rejectOAuth2ConsentRequest({ consentChallenge, rejectOAuth2Request: consentAnswer.reject })
    : await hydra.acceptOAuth2ConsentRequest({ consentChallenge, acceptOAuth2ConsentRequest: consentAnswer });
  assert.equal(typeof consentRedirect.redirect_to, 'string');

  const callback = await expectRedirect(browser, consentRedirect.redirect_to, 'consent verifier');
  return { callback, codeVerifier, state, nonce, loginRequest, consentRequest, browser };
}

/** The usual login and consent app: accept `subject`, grant everything requested, put `email`
 * in the ID token and a claim in the access token. */
export function acceptAll(subject, { remember = false } = {}) {
  return {
    login: (req) => ({
      subject,
      remember,
      remember_for: remember ? 3600 : undefined,
      acr: 'urn:latchkey:interop:pwd',
      amr: ['pwd'],
      context: { login_app: 'interop-node' },
    }),
    consent: (req) => ({
      grant_scope: req.requested_scope,
      grant_access_token_audience: req.requested_access_token_audience,
      remember,
      remember_for: remember ? 3600 : undefined,
      session: {
        id_token: { email: `${subject}@example.com`, email_verified: true },
        access_token: { tenant: 'interop' },
      },
    }),
  };
}

/** Completes a flow with openid-client: validates the callback (state, iss), redeems the code
 * with the PKCE verifier and validates the ID token (signature, iss, aud, nonce, exp). */
export async function redeem(config, flow) {
  return oidc.authorizationCodeGrant(config, new URL(flow.callback), {
    pkceCodeVerifier: flow.codeVerifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
}

/** OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token, base64url. */
export function atHash(accessToken) {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** Awaits `promise`, which must fail with an HTTP error from the Hydra SDK (axios) of `status`;
 * returns the response body. */
export async function expectSdkError(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e.response, `expected an HTTP error, got ${e}`);
    assert.equal(e.response.status, status, `status of ${e.config?.method?.toUpperCase()} ${e.config?.url}: ${JSON.stringify(e.response.data)}`);
    return e.response.data;
  }
  assert.fail(`expected an HTTP ${status}, the call succeeded`);
}

/** Awaits `promise`, which must fail with openid-client's ResponseBodyError `error`. */
export async function expectOAuthError(promise, error) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof oidc.ResponseBodyError, `expected a ResponseBodyError, got ${e?.name}: ${e?.message}`);
    assert.equal(e.error, error, `error of ${JSON.stringify(e.cause)}`);
    return true;
  });
}
