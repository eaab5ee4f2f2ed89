// node-oidc-provider as the benchmark's peer: the equivalent of the Latchkey clients the harness
// creates (client_secret_basic, opaque access tokens; a second client with JWT access tokens),
// client credentials, introspection and revocation enabled, an in-memory adapter, and an
// interaction endpoint that accepts login and consent at once (so that the authorization code
// flow, and the refresh tokens it yields, can be driven without a person).
//
// Usage: node server.mjs --port PORT [--client-secret SECRET]
// Prints "listening on http://127.0.0.1:PORT" when ready. Loopback only.

import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const port = Number(arg('port', '3000'));
const secret = arg('client-secret', 'bench-secret-0123456789abcdef0123456789abcdef');
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = 'http://127.0.0.1:9/cb';
const jwtResource = 'urn:latchkey-bench:api';

// Signing keys made at start (ES256 for JWT access tokens, RS256 for ID tokens, as Latchkey).
const jwk = (pair, alg, kid) => ({ ...pair.privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid });
const jwks = {
  keys: [
    jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256', 'rs256'),
    jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ES256', 'es256'),
  ],
};

const client = (clientId) => ({
  client_id: clientId,
  client_secret: secret,
  grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [redirectUri],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'openid offline_access',
});

let subjects = 0;

// In-memory adapter. The library's built-in one is an LRU of 1000 entries: under load it forgets
// valid tokens (introspection then answers inactive). This one keeps everything until it
// expires, like a database would; a run is short, so nothing is ever swept.
const store = new Map();
const grants = new Map();
const uids = new Map();
const userCodes = new Map();
class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, []);
      grants.get(payload.grantId).push(key);
    }
    if (payload.uid) uids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
  }

  async find(id) {
    const key = this.key(id);
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    const id = uids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = userCodes.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) || []) store.delete(key);
    grants.delete(grantId);
  }
}

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [client('bench'), client('bench-jwt')],
  jwks,
  cookies: { keys: ['latchkey-bench-cookie-key-0123456789abcdef'] },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // JWT access tokens for the client 'bench-jwt' only, as Latchkey's per-client strategy.
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client && client.clientId === 'bench-jwt' ? jwtResource : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        if (resourceIndicator === jwtResource && client.clientId === 'bench-jwt') {
          return { scope: '', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        }
        throw new Error('unknown resource');
      },
    },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
    Interaction: 600,
    Session: 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

// Accept login and consent at once: the stand-in for a login/consent app.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) {
    return next();
  }
  const interaction = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = interaction;
  let result;
  if (prompt.name === 'login') {
    subjects += 1;
    result = { login: { accountId: `user-${subjects}` } };
  } else {
    const grant = interaction.grantId
      ? await provider.Grant.find(interaction.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { details } = prompt;
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const location = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(location);
});

const server = createServer(provider.callback());
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
