// Latchkey against clients we did not write: Ory's official Hydra SDK (@ory/hydra-client) as the
// admin client and the login/consent app, and panva's openid-client as the relying party.
// Runs on SQLite always and on PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

import { Browser } from '../lib/browser.mjs';
import { CONSENT_URL, engines, startLatchkey } from '../lib/latchkey.mjs';
import {
  REDIRECT_URI,
  acceptAll,
  atHash,
  authorize,
  createCodeClient,
  expectOAuthError,
  expectSdkError,
  hydraAdmin,
  query,
  redeem,
  relyingParty,
  unique,
} from '../lib/flow.mjs';

for (const engine of engines()) {
  describe(`Latchkey on ${engine}`, () => {
    let server;
    let hydra;

    before(async () => {
      server = await startLatchkey(engine);
      hydra = hydraAdmin(server.adminUrl);
    });

    after(async () => {
      await server?.stop();
    });

    it('openid-client discovers the issuer and its endpoints', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const meta = config.serverMetadata();
      assert.equal(meta.issuer, server.issuer);
      assert.equal(meta.authorization_endpoint, `${server.publicUrl}/oauth2/auth`);
      assert.equal(meta.token_endpoint, `${server.publicUrl}/oauth2/token`);
      assert.equal(meta.userinfo_endpoint, `${server.publicUrl}/userinfo`);
      assert.equal(meta.revocation_endpoint, `${server.publicUrl}/oauth2/revoke`);
      assert.equal(meta.jwks_uri, `${server.publicUrl}/.well-known/jwks.json`);
      assert.ok(meta.supportsPKCE('S256'), 'S256 advertised');
      assert.ok(!meta.supportsPKCE('plain'), 'plain not advertised');
      assert.equal(meta.authorization_response_iss_parameter_supported, true);
      assert.ok(meta.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
      assert.ok(meta.id_token_signing_alg_values_supported.includes('RS256'));
    });

    it('the Hydra SDK creates, reads, lists and deletes a client', async () => {
      const name = unique('interop-node-crud');
      const { data: created } = await hydra.createOAuth2Client({
        oAuth2Client: {
          client_name: name,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [REDIRECT_URI],
          scope: 'openid offline_access email',
          token_endpoint_auth_method: 'client_secret_basic',
        },
      });
      assert.ok(created.client_id, 'client_id');
      assert.ok(created.client_secret, 'the secret is returned once, at creation');
      assert.equal(created.client_name, name);
      assert.deepEqual(created.grant_types, ['authorization_code', 'refresh_token']);
      assert.deepEqual(created.response_types, ['code']);
      assert.deepEqual(created.redirect_uris, [REDIRECT_URI]);
      assert.equal(created.scope, 'openid offline_access email');
      assert.equal(created.token_endpoint_auth_method, 'client_secret_basic');

      const { data: read } = await hydra.getOAuth2Client({ id: created.client_id });
      assert.equal(read.client_id, created.client_id);
      assert.equal(read.client_name, name);
      assert.deepEqual(read.redirect_uris, [REDIRECT_URI]);
      assert.ok(!read.client_secret, 'the secret is never returned again');

      const { data: all } = await hydra.listOAuth2Clients({ pageSize: 500 });
      assert.ok(Array.isArray(all));
      assert.ok(all.some((c) => c.client_id === created.client_id), 'listed');
      // Pagination as Hydra does it: a Link header with rel="next" and a page_token.
      const another = await createCodeClient(hydra);
      const seen = [];
      let pageToken;
      for (let pages = 0; pages < 100; pages++) {
        const page = await hydra.listOAuth2Clients({ pageSize: 1, pageToken });
        assert.ok(page.data.length <= 1, 'page_size respected');
        seen.push(...page.data.map((c) => c.client_id));
        const next = /<([^>]+)>;\s*rel="next"/.exec(page.headers.link ?? '');
        if (!next) break;
        pageToken = new URL(next[1], server.adminUrl).searchParams.get('page_token');
      }
      assert.ok(seen.length >= 2, 'more than one page');
      assert.equal(new Set(seen).size, seen.length, 'no client on two pages');
      for (const id of [...all.map((c) => c.client_id), another.client_id]) {
        assert.ok(seen.includes(id), `${id} on some page`);
      }
      const { data: byName } = await hydra.listOAuth2Clients({ clientName: name });
      assert.deepEqual(byName.map((c) => c.client_id), [created.client_id], 'filtered by client_name');

      // JSON Patch and full replacement.
      const { data: patched } = await hydra.patchOAuth2Client({
        id: created.client_id,
        jsonPatch: [{ op: 'replace', path: '/client_name', value: `${name}-patched` }],
      });
      assert.equal(patched.client_name, `${name}-patched`);
      assert.deepEqual(patched.redirect_uris, [REDIRECT_URI], 'the rest unchanged');
      const { data: replaced } = await hydra.setOAuth2Client({
        id: created.client_id,
        oAuth2Client: { ...read, client_name: `${name}-set`, scope: 'openid offline_access' },
      });
      assert.equal(replaced.client_id, created.client_id);
      assert.equal(replaced.client_name, `${name}-set`);
      assert.equal(replaced.scope, 'openid offline_access');

      const { status } = await hydra.deleteOAuth2Client({ id: created.client_id });
      assert.equal(status, 204);
      await expectSdkError(hydra.getOAuth2Client({ id: created.client_id }), 404);
      await expectSdkError(hydra.deleteOAuth2Client({ id: created.client_id }), 404);
    });

    it('code flow + PKCE: Hydra SDK login/consent app, openid-client validates the ID token, calls userinfo', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const subject = unique('alice');
      const browser = new Browser();

      const app = acceptAll(subject);
      const flow = await authorize({ config, hydra, browser }, {
        login: (req) => {
          assert.equal(req.skip, false);
          assert.equal(req.client.client_id, client.client_id);
          assert.deepEqual([...req.requested_scope].sort(), ['email', 'offline_access', 'openid']);
          assert.ok(req.request_url.startsWith(`${server.publicUrl}/oauth2/auth?`), req.request_url);
          assert.ok(req.challenge, 'challenge');
          return app.login(req);
        },
        consent: (req) => {
          assert.equal(req.skip, false);
          assert.equal(req.subject, subject);
          assert.equal(req.client.client_id, client.client_id);
          assert.deepEqual([...req.requested_scope].sort(), ['email', 'offline_access', 'openid']);
          assert.deepEqual(req.context, { login_app: 'interop-node' }, 'the login context reaches the consent app');
          assert.equal(req.acr, 'urn:latchkey:interop:pwd');
          assert.deepEqual(req.amr, ['pwd']);
          return app.consent(req);
        },
      });

      // The flow's cookies, as a browser received them on /oauth2/auth.
      const cookies = browser.cookies('127.0.0.1');
      assert.ok(cookies.latchkey_csrf, 'latchkey_csrf cookie set');
      assert.equal(cookies.latchkey_csrf.attributes.httponly, true);
      assert.equal(cookies.latchkey_csrf.attributes.samesite.toLowerCase(), 'lax');

      // The redirect back to the client: code, state and iss (RFC 9207).
      assert.ok(flow.callback.startsWith(`${REDIRECT_URI}?`), flow.callback);
      const cb = query(flow.callback);
      assert.ok(cb.code, 'code');
      assert.equal(cb.state, flow.state);
      assert.equal(cb.iss, server.issuer);

      const tokens = await redeem(config, flow);
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      assert.ok(tokens.access_token);
      assert.ok(tokens.refresh_token, 'offline_access granted: a refresh token');
      assert.ok(tokens.expires_in > 0);
      assert.deepEqual(tokens.scope.split(' ').sort(), ['email', 'offline_access', 'openid']);

      const claims = tokens.claims();
      assert.equal(claims.iss, server.issuer);
      assert.equal(claims.sub, subject);
      assert.equal(claims.aud === client.client_id || (Array.isArray(claims.aud) && claims.aud.includes(client.client_id)), true);
      assert.equal(claims.nonce, flow.nonce);
      assert.equal(claims.email, `${subject}@example.com`);
      assert.equal(claims.email_verified, true);
      assert.equal(claims.acr, 'urn:latchkey:interop:pwd');
      assert.deepEqual(claims.amr, ['pwd']);
      assert.equal(typeof claims.auth_time, 'number');
      assert.ok(claims.sid, 'sid');
      assert.equal(claims.at_hash, atHash(tokens.access_token));

      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      assert.equal(userinfo.sub, subject);
      assert.equal(userinfo.email, `${subject}@example.com`);
      assert.equal(userinfo.email_verified, true);

      // The resource server's view, through the Hydra SDK.
      const { data: at } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.equal(at.active, true);
      assert.equal(at.sub, subject);
      assert.equal(at.client_id, client.client_id);
      assert.equal(at.token_use, 'access_token');
      assert.equal(at.iss, server.issuer);
      assert.deepEqual(at.scope.split(' ').sort(), ['email', 'offline_access', 'openid']);
      assert.deepEqual(at.ext, { tenant: 'interop' });
      assert.ok(at.exp > Date.now() / 1000);
      const { data: rt } = await hydra.introspectOAuth2Token({ token: tokens.refresh_token });
      assert.equal(rt.active, true);
      assert.equal(rt.token_use, 'refresh_token');
      assert.equal(rt.sub, subject);

      // The code is single-use.
      await expectOAuthError(redeem(config, flow), 'invalid_grant');

      // A handled challenge answers 410 Gone with the URL to send the browser to, as in Hydra.
      const gone = await expectSdkError(hydra.getOAuth2LoginRequest({ loginChallenge: flow.loginRequest.challenge }), 410);
      assert.equal(typeof gone.redirect_to, 'string');
      const goneConsent = await expectSdkError(hydra.getOAuth2ConsentRequest({ consentChallenge: flow.consentRequest.challenge }), 410);
      assert.equal(typeof goneConsent.redirect_to, 'string');
    });

    it('refresh rotates; a retry gets the same answer; reuse after the grace period revokes the family', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const subject = unique('bob');
      const first = await redeem(config, await authorize({ config, hydra }, acceptAll(subject)));

      const second = await oidc.refreshTokenGrant(config, first.refresh_token);
      assert.ok(second.access_token);
      assert.ok(second.refresh_token);
      assert.notEqual(second.refresh_token, first.refresh_token);
      assert.notEqual(second.access_token, first.access_token);
      // A new ID token, validated by openid-client (signature, iss, aud, exp), for the same subject,
      // with the consent's claims, as Hydra does on refresh.
      assert.ok(second.id_token, 'an ID token on refresh (openid granted)');
      assert.equal(second.claims().sub, subject);
      assert.equal(second.claims().email, `${subject}@example.com`);
      assert.equal(second.claims().auth_time, first.claims().auth_time, 'auth_time of the original authentication (OIDC Core 12.2)');
      const { data: introspected } = await hydra.introspectOAuth2Token({ token: second.access_token });
      assert.equal(introspected.active, true);
      assert.equal(introspected.sub, subject);

      // A retry of the first token (a timeout, a second tab) gets the very same answer.
      const retry = await oidc.refreshTokenGrant(config, first.refresh_token);
      assert.equal(retry.refresh_token, second.refresh_token);
      assert.equal(retry.access_token, second.access_token);

      const third = await oidc.refreshTokenGrant(config, second.refresh_token);
      assert.ok(third.refresh_token);
      assert.notEqual(third.refresh_token, second.refresh_token);

      // After the grace period (1 s here) and the burst window (2 s), reuse of the first token is
      // theft: refused, and the whole family is revoked.
      await new Promise((r) => setTimeout(r, 3200));
      await expectOAuthError(oidc.refreshTokenGrant(config, first.refresh_token), 'invalid_grant');
      const { data: old } = await hydra.introspectOAuth2Token({ token: first.refresh_token });
      assert.equal(old.active, false);
      await expectOAuthError(oidc.refreshTokenGrant(config, third.refresh_token), 'invalid_grant');
    });

    it('a refresh may narrow the scope but never widen it', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const tokens = await redeem(config, await authorize({ config, hydra, scope: 'openid offline_access' }, acceptAll(unique('carol'))));
      await expectOAuthError(
        oidc.refreshTokenGrant(config, tokens.refresh_token, { scope: 'openid offline_access email' }),
        'invalid_scope',
      );
    });

    it('revoking the refresh token (openid-client) makes the tokens introspect inactive', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const subject = unique('dave');
      const tokens = await redeem(config, await authorize({ config, hydra }, acceptAll(subject)));

      await oidc.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
      const { data: rt } = await hydra.introspectOAuth2Token({ token: tokens.refresh_token });
      assert.deepEqual(rt, { active: false });
      await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant');
      // Hydra revokes the access tokens of the grant with its refresh token.
      const { data: at } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.deepEqual(at, { active: false });
      await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, subject), (e) => {
        assert.ok(e instanceof oidc.WWWAuthenticateChallengeError, `${e?.name}: ${e?.message}`);
        assert.equal(e.cause[0].parameters.error, 'invalid_token');
        return true;
      });

      // Revoking again, or revoking nonsense, is still a success (RFC 7009 §2.2).
      await oidc.tokenRevocation(config, tokens.refresh_token);
      await oidc.tokenRevocation(config, 'not-a-token');
    });

    it('revoking an access token (openid-client) makes it introspect inactive', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const tokens = await redeem(config, await authorize({ config, hydra }, acceptAll(unique('erin'))));
      await oidc.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
      const { data } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.deepEqual(data, { active: false });
    });

    it('the verifiers are bound to the browser: without its cookies the flow stops', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const browser = new Browser();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        state: oidc.randomState(),
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const toLogin = await browser.get(url);
      const { data } = await hydra.acceptOAuth2LoginRequest({
        loginChallenge: query(toLogin.location).login_challenge,
        acceptOAuth2LoginRequest: { subject: unique('mallory') },
      });
      const elsewhere = await new Browser().get(data.redirect_to);
      assert.ok(
        !(elsewhere.location ?? '').startsWith(CONSENT_URL) && !query(elsewhere.location ?? 'http://x/').code,
        `another browser must not get past the login verifier: ${elsewhere.status} ${elsewhere.location}`,
      );
      assert.ok((await browser.get(data.redirect_to)).location.startsWith(`${CONSENT_URL}?`), 'the right browser does');
    });

    it("the Hydra SDK revokes every token of a client (deleteOAuth2Token)", async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const tokens = await redeem(config, await authorize({ config, hydra }, acceptAll(unique('ivan'))));
      const { status } = await hydra.deleteOAuth2Token({ clientId: client.client_id });
      assert.equal(status, 204);
      for (const token of [tokens.access_token, tokens.refresh_token]) {
        const { data } = await hydra.introspectOAuth2Token({ token });
        assert.deepEqual(data, { active: false });
      }
      await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant');
    });

    it('a remembered login and consent are skipped, as a Hydra login/consent app expects', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const subject = unique('frank');
      const browser = new Browser();
      await redeem(config, await authorize({ config, hydra, browser }, acceptAll(subject, { remember: true })));
      assert.ok(browser.cookies('127.0.0.1').latchkey_session, 'login session cookie set');

      const app = acceptAll(subject);
      const again = await authorize({ config, hydra, browser }, {
        login: (req) => {
          assert.equal(req.skip, true, 'remembered login');
          assert.equal(req.subject, subject);
          return { subject: req.subject };
        },
        consent: (req) => {
          assert.equal(req.skip, true, 'remembered consent');
          return app.consent(req);
        },
      });
      const tokens = await redeem(config, again);
      assert.equal(tokens.claims().sub, subject);

      // prompt=login forces the login again.
      await authorize({ config, hydra, browser, params: { prompt: 'login' } }, {
        login: (req) => {
          assert.equal(req.skip, false, 'prompt=login');
          return { subject, remember: true };
        },
        consent: app.consent,
      });

      // Ending the subject's login sessions through the SDK: the next login is not skipped.
      const { status } = await hydra.revokeOAuth2LoginSessions({ subject });
      assert.equal(status, 204);
      await authorize({ config, hydra, browser }, {
        login: (req) => {
          assert.equal(req.skip, false, 'login session ended');
          return { subject };
        },
        consent: app.consent,
      });
    });

    it('consent sessions: listed, then revoked with every token issued under them', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const subject = unique('grace');
      const tokens = await redeem(config, await authorize({ config, hydra }, acceptAll(subject, { remember: true })));

      const { data: sessions } = await hydra.listOAuth2ConsentSessions({ subject });
      assert.equal(sessions.length, 1);
      const [session] = sessions;
      assert.equal(session.consent_request.client.client_id, client.client_id);
      assert.equal(session.consent_request.subject, subject);
      assert.deepEqual([...session.grant_scope].sort(), ['email', 'offline_access', 'openid']);
      assert.equal(session.remember, true);
      assert.deepEqual(session.session.id_token, { email: `${subject}@example.com`, email_verified: true });

      const { status } = await hydra.revokeOAuth2ConsentSessions({ subject, client: client.client_id });
      assert.equal(status, 204);
      const { data: after } = await hydra.listOAuth2ConsentSessions({ subject });
      assert.deepEqual(after, []);
      const { data: at } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.equal(at.active, false);
      const { data: rt } = await hydra.introspectOAuth2Token({ token: tokens.refresh_token });
      assert.equal(rt.active, false);
      await expectOAuthError(oidc.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant');

      // The SDK's other form: every client of the subject.
      const { status: allStatus } = await hydra.revokeOAuth2ConsentSessions({ subject, all: true });
      assert.equal(allStatus, 204);
    });

    it('a rejected consent reaches openid-client as access_denied with state and iss', async () => {
      const client = await createCodeClient(hydra);
      const config = await relyingParty(server.issuer, client);
      const flow = await authorize({ config, hydra }, {
        login: () => ({ subject: unique('heidi') }),
        consent: () => ({ reject: { error: 'access_denied', error_description: 'The user said no.' } }),
      });
      const cb = query(flow.callback);
      assert.equal(cb.error, 'access_denied');
      assert.equal(cb.state, flow.state);
      assert.equal(cb.iss, server.issuer);
      await assert.rejects(redeem(config, flow), (e) => {
        assert.ok(e instanceof oidc.AuthorizationResponseError, `${e?.name}: ${e?.message}`);
        assert.equal(e.error, 'access_denied');
        return true;
      });
    });

    it('client credentials with openid-client, introspected with the Hydra SDK', async () => {
      const { data: client } = await hydra.createOAuth2Client({
        oAuth2Client: {
          client_name: unique('interop-node-cc'),
          grant_types: ['client_credentials'],
          response_types: [],
          scope: 'read write',
          audience: ['https://api.example.com'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      });
      const config = await relyingParty(server.issuer, client);
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' });
      assert.ok(tokens.access_token);
      assert.equal(tokens.refresh_token, undefined);
      assert.equal(tokens.scope, 'read');
      const { data } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.equal(data.active, true);
      assert.equal(data.client_id, client.client_id);
      assert.equal(data.scope, 'read');
      await expectOAuthError(oidc.clientCredentialsGrant(config, { scope: 'admin' }), 'invalid_scope');
    });
  });
}
