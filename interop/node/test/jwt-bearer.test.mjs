// The JWT bearer grant (RFC 7523 §2.1) with clients we did not write: the Hydra SDK registers a
// trusted issuer (trustOAuth2JwtGrantIssuer), jose signs the assertion, openid-client's generic
// grant request trades it for a token; a replayed jti is refused. On SQLite, and on PostgreSQL
// when LATCHKEY_TEST_POSTGRES_URL is set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import * as oidc from 'openid-client';

import { engines, startLatchkey } from '../lib/latchkey.mjs';
import { createCodeClient, expectOAuthError, hydraAdmin, relyingParty, unique } from '../lib/flow.mjs';

const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

for (const engine of engines()) {
  describe(`The JWT bearer grant on ${engine}`, () => {
    let server;
    let hydra;

    before(async () => {
      server = await startLatchkey(engine);
      hydra = hydraAdmin(server.adminUrl);
    });

    after(async () => {
      await server?.stop();
    });

    it('the Hydra SDK trusts an issuer; a jose-signed assertion gets a token once', async () => {
      const issuer = `https://${unique('idp')}.example`;
      const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
      const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'idp-key-1', alg: 'ES256', use: 'sig' };
      const { data: trusted } = await hydra.trustOAuth2JwtGrantIssuer({
        trustOAuth2JwtGrantIssuer: {
          issuer,
          subject: 'workload-7',
          scope: ['email'],
          jwk,
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
        },
      });
      assert.equal(trusted.issuer, issuer);
      assert.equal(trusted.public_key.kid, 'idp-key-1');
      const { data: listed } = await hydra.listTrustedOAuth2JwtGrantIssuers({ issuer });
      assert.deepEqual(listed.map((t) => t.id), [trusted.id]);
      const { data: one } = await hydra.getTrustedOAuth2JwtGrantIssuer({ id: trusted.id });
      assert.equal(one.subject, 'workload-7');

      const client = await createCodeClient(hydra, {
        grant_types: [GRANT],
        response_types: [],
        redirect_uris: [],
      });
      const config = await relyingParty(server.issuer, client);
      const assertion = await new jose.SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-key-1' })
        .setIssuer(issuer)
        .setSubject('workload-7')
        .setAudience(config.serverMetadata().token_endpoint)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(unique('jti'))
        .sign(privateKey);

      const tokens = await oidc.genericGrantRequest(config, GRANT, { assertion, scope: 'email' });
      assert.equal(tokens.scope, 'email');
      const { data: info } = await hydra.introspectOAuth2Token({ token: tokens.access_token });
      assert.equal(info.active, true);
      assert.equal(info.sub, 'workload-7');
      assert.equal(info.client_id, client.client_id);

      // The same assertion again: its jti is spent.
      await expectOAuthError(oidc.genericGrantRequest(config, GRANT, { assertion, scope: 'email' }), 'invalid_grant');

      // Once the issuer is no longer trusted, nothing it signs is accepted.
      await hydra.deleteTrustedOAuth2JwtGrantIssuer({ id: trusted.id });
      const fresh = await new jose.SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-key-1' })
        .setIssuer(issuer)
        .setSubject('workload-7')
        .setAudience(server.issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(unique('jti'))
        .sign(privateKey);
      await expectOAuthError(oidc.genericGrantRequest(config, GRANT, { assertion: fresh }), 'invalid_grant');
    });
  });
}
