// Logout with clients we did not write: panva's openid-client as the app (buildEndSessionUrl),
// Ory's Hydra SDK as the logout app (getOAuth2LogoutRequest, acceptOAuth2LogoutRequest), and a
// back-channel receiver that verifies the logout token with jose against the JWKS.
// Runs on SQLite always and on PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

import { Browser } from '../lib/browser.mjs';
import { LOGIN_URL, LOGOUT_URL, engines, startLatchkey } from '../lib/latchkey.mjs';
import {
  acceptAll,
  authorize,
  createCodeClient,
  expectRedirect,
  hydraAdmin,
  query,
  redeem,
  relyingParty,
  unique,
} from '../lib/flow.mjs';

const AFTER_LOGOUT = 'http://127.0.0.1:9/signed-out';

/** A back-channel logout receiver on loopback: keeps every logout_token it is sent. */
function startReceiver() {
  const receiver = { tokens: [] };
  receiver.server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    receiver.tokens.push({
      contentType: req.headers['content-type'],
      token: new URLSearchParams(body).get('logout_token'),
    });
    res.writeHead(200).end();
  });
  return new Promise((ok) =>
    receiver.server.listen(0, '127.0.0.1', () => {
      receiver.url = `http://127.0.0.1:${receiver.server.address().port}/backchannel-logout`;
      ok(receiver);
    }),
  );
}

async function until(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const engine of engines()) {
  describe(`Logout on ${engine}`, () => {
    let server;
    let hydra;
    let receiver;

    before(async () => {
      server = await startLatchkey(engine);
      hydra = hydraAdmin(server.adminUrl);
      receiver = await startReceiver();
    });

    after(async () => {
      receiver?.server.close();
      await server?.stop();
    });

    it('RP-initiated logout through the logout challenge ends the session and sends one verifiable logout token', async () => {
      const client = await createCodeClient(hydra, {
        post_logout_redirect_uris: [AFTER_LOGOUT],
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      });
      const config = await relyingParty(server.issuer, client);
      const meta = config.serverMetadata();
      assert.equal(meta.end_session_endpoint, `${server.publicUrl}/oauth2/sessions/logout`);
      assert.equal(meta.backchannel_logout_supported, true);
      assert.equal(meta.backchannel_logout_session_supported, true);
      assert.equal(meta.frontchannel_logout_supported, true);

      const subject = unique('logout-user');
      const browser = new Browser();
      const app = acceptAll(subject, { remember: true });
      const first = await authorize({ config, hydra, browser }, app);
      const tokens = await redeem(config, first);
      const sid = tokens.claims().sid;
      assert.ok(sid, 'the ID token carries sid');
      assert.equal(first.loginRequest.skip, false);

      // Before logout: the remembered session signs in silently.
      const silent = await authorize({ config, hydra, browser, params: { prompt: 'none' } }, {
        login: (req) => {
          assert.equal(req.skip, true, 'a remembered login');
          assert.equal(req.session_id, sid);
          return { subject };
        },
        consent: app.consent,
      });
      assert.ok(query(silent.callback).code, `prompt=none gives a code: ${silent.callback}`);

      // The app signs the user out: openid-client builds the end-session URL.
      const state = oidc.randomState();
      const endSession = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: AFTER_LOGOUT,
        state,
      });
      const toLogout = await expectRedirect(browser, endSession, 'end-session endpoint');
      assert.ok(toLogout.startsWith(`${LOGOUT_URL}?`), `expected the logout URL, got ${toLogout}`);
      const logoutChallenge = query(toLogout).logout_challenge;

      // The logout app: Ory's SDK reads and accepts the logout request.
      const { data: request } = await hydra.getOAuth2LogoutRequest({ logoutChallenge });
      assert.equal(request.subject, subject);
      assert.equal(request.sid, sid);
      assert.equal(request.rp_initiated, true);
      assert.equal(request.client.client_id, client.client_id);
      const { data: accepted } = await hydra.acceptOAuth2LogoutRequest({ logoutChallenge });
      assert.ok(accepted.redirect_to.startsWith(`${server.publicUrl}/oauth2/sessions/logout?logout_verifier=`));

      const back = await expectRedirect(browser, accepted.redirect_to, 'logout verifier');
      const url = new URL(back);
      assert.equal(`${url.origin}${url.pathname}`, AFTER_LOGOUT);
      assert.equal(url.searchParams.get('state'), state);

      // Exactly one logout token, verified with jose against the published keys.
      await until('the back-channel logout token', () => receiver.tokens.length >= 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(receiver.tokens.length, 1);
      assert.equal(receiver.tokens[0].contentType, 'application/x-www-form-urlencoded');
      const jwt = receiver.tokens[0].token;
      assert.equal(decodeProtectedHeader(jwt).typ, 'logout+jwt');
      const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
      const { payload } = await jwtVerify(jwt, jwks, {
        issuer: server.issuer,
        audience: client.client_id,
        typ: 'logout+jwt',
        maxTokenAge: '2m',
      });
      assert.equal(payload.sid, sid);
      assert.ok(payload.jti && payload.iat);
      assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
      assert.equal(payload.nonce, undefined);

      // After logout: prompt=none is login_required, at the client, without a login page.
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const after = oidc.buildAuthorizationUrl(config, {
        redirect_uri: first.callback.split('?')[0],
        scope: 'openid',
        state: oidc.randomState(),
        prompt: 'none',
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      const callback = await expectRedirect(browser, after, 'authorization endpoint');
      assert.ok(!callback.startsWith(LOGIN_URL), callback);
      assert.equal(query(callback).error, 'login_required');

      // The challenge is used up.
      await assert.rejects(hydra.acceptOAuth2LogoutRequest({ logoutChallenge }), (e) => e.response?.status === 410);
    });
  });
}
