// Token exchange (RFC 8693) with clients we did not write: openid-client's generic grant request
// trades the user's access token for a narrower one; the Hydra SDK introspects it (with `act`) and
// revokes the grant, which kills it. On SQLite, and on PostgreSQL when LATCHKEY_TEST_POSTGRES_URL
// is set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

import { engines, startLatchkey } from '../lib/latchkey.mjs';
import {
  acceptAll,
  authorize,
  createCodeClient,
  expectOAuthError,
  hydraAdmin,
  redeem,
  relyingParty,
  unique,
} from '../lib/flow.mjs';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

for (const engine of engines()) {
  describe(`Token exchange on ${engine}`, () => {
    let server;
    let hydra;

    before(async () => {
      server = await startLatchkey(engine);
      hydra = hydraAdmin(server.adminUrl);
    });

    after(async () => {
      await server?.stop();
    });

    it('an exchanged token introspects with act, may not widen, and dies with the grant', async () => {
      const client = await createCodeClient(hydra, {
        grant_types: ['authorization_code', 'refresh_token', EXCHANGE],
      });
      const config = await relyingParty(server.issuer, client);
      const subject = unique('exchange-user');
      const flow = await authorize({ config, hydra }, acceptAll(subject));
      const tokens = await redeem(config, flow);

      const exchanged = await oidc.genericGrantRequest(config, EXCHANGE, {
        subject_token: tokens.access_token,
        subject_token_type: ACCESS,
        scope: 'email',
      });
      assert.equal(exchanged.issued_token_type, ACCESS);
      assert.equal(exchanged.scope, 'email');
      const { data: info } = await hydra.introspectOAuth2Token({ token: exchanged.access_token });
      assert.equal(info.active, true);
      assert.equal(info.sub, subject);
      assert.deepEqual(info.act, { sub: client.client_id });

      // Widening, or a refresh token as the subject, is refused.
      await expectOAuthError(
        oidc.genericGrantRequest(config, EXCHANGE, {
          subject_token: tokens.access_token,
          subject_token_type: ACCESS,
          scope: 'email profile',
        }),
        'invalid_scope',
      );
      await expectOAuthError(
        oidc.genericGrantRequest(config, EXCHANGE, {
          subject_token: tokens.refresh_token,
          subject_token_type: ACCESS,
        }),
        'invalid_grant',
      );

      // Revoking the user's grant revokes the exchanged token too.
      await hydra.revokeOAuth2ConsentSessions({ subject, client: client.client_id });
      const { data: after } = await hydra.introspectOAuth2Token({ token: exchanged.access_token });
      assert.equal(after.active, false);
    });
  });
}
