// The device authorization grant (RFC 8628, as Hydra v25.4+ speaks it) with clients we did not
// write: panva's openid-client as the CLI (initiateDeviceAuthorization,
// pollDeviceAuthorizationGrant) and Ory's Hydra SDK as the verification app
// (acceptUserCodeRequest) and the login/consent app. On SQLite, and on PostgreSQL when
// LATCHKEY_TEST_POSTGRES_URL is set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

import { Browser } from '../lib/browser.mjs';
import { CONSENT_URL, LOGIN_URL, engines, startLatchkey } from '../lib/latchkey.mjs';
import {
  acceptAll,
  createCodeClient,
  expectOAuthError,
  expectRedirect,
  expectSdkError,
  hydraAdmin,
  query,
  relyingParty,
  unique,
} from '../lib/flow.mjs';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

for (const engine of engines()) {
  describe(`The device grant on ${engine}`, () => {
    let server;
    let hydra;

    before(async () => {
      server = await startLatchkey(engine);
      hydra = hydraAdmin(server.adminUrl);
    });

    after(async () => {
      await server?.stop();
    });

    it('openid-client polls while the Hydra SDK accepts the user code, login and consent; tokens once; refresh', async () => {
      const client = await createCodeClient(hydra, {
        grant_types: [DEVICE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      });
      const config = await relyingParty(server.issuer, client);
      assert.equal(config.serverMetadata().device_authorization_endpoint, `${server.publicUrl}/oauth2/device/auth`);
      assert.ok(config.serverMetadata().grant_types_supported.includes(DEVICE_GRANT));

      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access email' });
      assert.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      assert.equal(device.verification_uri, `${server.publicUrl}/oauth2/device/verify`);
      assert.equal(device.interval, 1);

      // Pending while nobody has entered the code.
      await expectOAuthError(
        oidc.genericGrantRequest(config, DEVICE_GRANT, { device_code: device.device_code }),
        'authorization_pending',
      );
      await new Promise((r) => setTimeout(r, 1100));
      const polling = oidc.pollDeviceAuthorizationGrant(config, device);

      // The user follows the complete URI; the verification app gets the challenge and the code.
      const browser = new Browser();
      const toPage = await expectRedirect(browser, device.verification_uri_complete, 'verify');
      const { device_challenge, user_code } = query(toPage);
      assert.ok(device_challenge, toPage);
      assert.equal(user_code, device.user_code);

      // A wrong code is refused; the right one (as typed: lower case, no dash) accepted.
      await expectSdkError(
        hydra.acceptUserCodeRequest({ deviceChallenge: device_challenge, acceptDeviceUserCodeRequest: { user_code: 'BBBB-BBBB' } }),
        400,
      );
      const { data: accepted } = await hydra.acceptUserCodeRequest({
        deviceChallenge: device_challenge,
        acceptDeviceUserCodeRequest: { user_code: user_code.replace('-', '').toLowerCase() },
      });
      // A replay of the challenge is refused (410, as a handled Hydra challenge).
      await expectSdkError(
        hydra.acceptUserCodeRequest({ deviceChallenge: device_challenge, acceptDeviceUserCodeRequest: { user_code } }),
        410,
      );

      // Then the ordinary login and consent protocol.
      const subject = unique('device-user');
      const app = acceptAll(subject);
      const toLogin = await expectRedirect(browser, accepted.redirect_to, 'device verifier');
      assert.ok(toLogin.startsWith(LOGIN_URL), toLogin);
      const loginChallenge = query(toLogin).login_challenge;
      const { data: loginRequest } = await hydra.getOAuth2LoginRequest({ loginChallenge });
      assert.equal(loginRequest.client.client_id, client.client_id);
      const { data: afterLogin } = await hydra.acceptOAuth2LoginRequest({
        loginChallenge,
        acceptOAuth2LoginRequest: app.login(loginRequest),
      });
      const toConsent = await expectRedirect(browser, afterLogin.redirect_to, 'login verifier');
      assert.ok(toConsent.startsWith(CONSENT_URL), toConsent);
      const consentChallenge = query(toConsent).consent_challenge;
      const { data: consentRequest } = await hydra.getOAuth2ConsentRequest({ consentChallenge });
      assert.deepEqual(consentRequest.requested_scope, ['openid', 'offline_access', 'email']);
      const { data: afterConsent } = await hydra.acceptOAuth2ConsentRequest({
        consentChallenge,
        acceptOAuth2ConsentRequest: app.consent(consentRequest),
      });
      const end = await expectRedirect(browser, afterConsent.redirect_to, 'consent verifier');
      assert.equal(end, `${server.publicUrl}/ui/device/success`);

      // The CLI's poll ends with the tokens; the ID token verifies (openid-client checks it).
      const tokens = await polling;
      assert.ok(tokens.access_token.startsWith('lk_at_'));
      assert.ok(tokens.refresh_token.startsWith('lk_rt_'));
      assert.equal(tokens.claims().sub, subject);
      assert.equal(tokens.claims().email, `${subject}@example.com`);

      // Single use.
      await new Promise((r) => setTimeout(r, 1100));
      await expectOAuthError(
        oidc.genericGrantRequest(config, DEVICE_GRANT, { device_code: device.device_code }),
        'invalid_grant',
      );
      // The refresh token works like any other.
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
      assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
      const { data: info } = await hydra.introspectOAuth2Token({ token: refreshed.access_token });
      assert.equal(info.active, true);
      assert.equal(info.sub, subject);
    });

    it('a denied consent ends the poll with access_denied', async () => {
      const client = await createCodeClient(hydra, {
        grant_types: [DEVICE_GRANT],
        response_types: [],
        redirect_uris: [],
      });
      const config = await relyingParty(server.issuer, client);
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const polling = oidc.pollDeviceAuthorizationGrant(config, device);
      const browser = new Browser();
      const toPage = await expectRedirect(browser, device.verification_uri, 'verify');
      const { data: accepted } = await hydra.acceptUserCodeRequest({
        deviceChallenge: query(toPage).device_challenge,
        acceptDeviceUserCodeRequest: { user_code: device.user_code },
      });
      const toLogin = await expectRedirect(browser, accepted.redirect_to, 'device verifier');
      const loginChallenge = query(toLogin).login_challenge;
      const { data: afterLogin } = await hydra.acceptOAuth2LoginRequest({
        loginChallenge,
        acceptOAuth2LoginRequest: { subject: unique('device-user') },
      });
      const toConsent = await expectRedirect(browser, afterLogin.redirect_to, 'login verifier');
      const { data: rejected } = await hydra.rejectOAuth2ConsentRequest({
        consentChallenge: query(toConsent).consent_challenge,
        rejectOAuth2Request: { error: 'access_denied', error_description: 'The user said no.' },
      });
      const end = await expectRedirect(browser, rejected.redirect_to, 'consent verifier');
      assert.equal(query(end).error, 'access_denied');
      await expectOAuthError(polling, 'access_denied');
    });
  });
}
