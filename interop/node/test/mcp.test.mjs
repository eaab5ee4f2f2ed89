// Latchkey as the authorization server of an MCP server, with the MCP TypeScript SDK on both
// sides: the client's StreamableHTTPClientTransport with an OAuthClientProvider and auth(), and a
// server guarded by the SDK's requireBearerAuth (expectedResource, an introspection verifier).
// Twice per engine: the client named by its metadata document (CIMD, served over HTTPS by a test
// CA that Latchkey trusts through SSL_CERT_FILE), and the client registering itself (RFC 7591).
// Each run: discovery → registration → code + PKCE with `resource` → a tool call → refresh; a
// token for another resource is refused by the server.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import express from 'express';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';

import { Browser } from '../lib/browser.mjs';
import { engines, startLatchkey } from '../lib/latchkey.mjs';
import { acceptAll, expectRedirect, hydraAdmin, query, unique } from '../lib/flow.mjs';

const execFileAsync = promisify(execFile);
const CALLBACK = 'http://127.0.0.1:9/callback';

/** A test CA and a certificate for localhost signed by it, made with openssl in `dir`. */
async function testCertificates(dir) {
  const run = (args) => execFileAsync('openssl', args, { cwd: dir, timeout: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=Latchkey interop test CA',
    '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  await run(['req', ...ec, '-subj', '/CN=localhost', '-keyout', 'leaf.key', '-out', 'leaf.csr']);
  await writeFile(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-out', 'leaf.pem', '-extfile', 'leaf.ext']);
  return {
    ca: join(dir, 'ca.pem'),
    key: await readFile(join(dir, 'leaf.key')),
    cert: await readFile(join(dir, 'leaf.pem')),
  };
}

function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** The MCP server: one tool behind requireBearerAuth, which asks Latchkey's introspection. */
function mcpApp(state) {
  const app = express();
  app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => {
    res.json({
      resource: state.resource,
      authorization_servers: [state.issuer],
      scopes_supported: ['dns.read', 'offline_access'],
      bearer_methods_supported: ['header'],
    });
  });
  const verifier = {
    async verifyAccessToken(token) {
      const res = await fetch(`${state.adminUrl}/admin/oauth2/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
      const i = await res.json();
      if (!i.active) {
        const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
        throw new InvalidTokenError('the token is not active');
      }
      return {
        token,
        clientId: i.client_id,
        scopes: (i.scope ?? '').split(' ').filter(Boolean),
        expiresAt: i.exp,
        resource: i.aud?.length === 1 ? new URL(i.aud[0]) : undefined,
      };
    },
  };
  app.post(
    '/mcp',
    express.json(),
    (req, res, next) =>
      requireBearerAuth({
        verifier,
        requiredScopes: ['dns.read', 'offline_access'],
        resourceMetadataUrl: `${state.origin}/.well-known/oauth-protected-resource/mcp`,
        expectedResource: new URL(state.resource),
      })(req, res, next),
    async (req, res) => {
      const server = new McpServer({ name: 'interop-dns', version: '1.0.0' });
      server.tool('whoami', 'Who the token belongs to', async (extra) => ({
        content: [{ type: 'text', text: `client ${extra.authInfo?.clientId} for ${extra.authInfo?.resource}` }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        transport.close();
        server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    },
  );
  return app;
}

/** An OAuthClientProvider kept in memory; the "browser" redirect is recorded for the test. */
class MemoryProvider {
  constructor(metadataUrl) {
    this.clientMetadataUrl = metadataUrl;
    this.saved = {};
  }
  get redirectUrl() {
    return CALLBACK;
  }
  get clientMetadata() {
    return {
      client_name: 'Interop MCP client',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(info) {
    this.saved.client = info;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.saved.authorizationUrl = url;
  }
  saveCodeVerifier(v) {
    this.saved.verifier = v;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
}

async function introspect(adminUrl, token) {
  const res = await fetch(`${adminUrl}/admin/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return res.json();
}

for (const engine of engines()) {
  describe(`an MCP client and server with Latchkey on ${engine}`, () => {
    const state = {};
    let dir;
    let latchkey;
    let docServer;
    let mcpServer;
    let hydra;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'latchkey-mcp-'));
      const certs = await testCertificates(dir);

      // The client's metadata document, on HTTPS with the test CA.
      docServer = createHttpsServer({ key: certs.key, cert: certs.cert }, (req, res) => {
        if (req.url !== '/interop/client.json') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
        res.end(JSON.stringify({
          client_id: state.documentUrl,
          client_name: 'Interop MCP client (CIMD)',
          redirect_uris: [CALLBACK],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }));
      });
      state.documentUrl = `https://localhost:${await listen(docServer)}/interop/client.json`;

      mcpServer = mcpApp(state).listen(0, '127.0.0.1');
      await new Promise((r) => mcpServer.once('listening', r));
      state.origin = `http://127.0.0.1:${mcpServer.address().port}`;
      state.resource = `${state.origin}/mcp`;
      state.other = 'http://127.0.0.1:1/other-mcp';

      latchkey = await startLatchkey(engine, {
        name: 'mcp',
        env: { SSL_CERT_FILE: certs.ca },
        config: `
[oauth2.client_id_metadata_documents]
allow_loopback = true

[oauth2.dynamic_client_registration]
enabled = true

[[catalog.scopes]]
name = "dns.read"
title = "See your DNS records"
group = "DNS"

[[resources]]
uri = "${state.resource}"
name = "Interop MCP server"
scopes = ["dns.read"]

[[resources]]
uri = "${state.other}"
name = "Another MCP server"
scopes = ["dns.read"]
`,
      });
      state.issuer = latchkey.issuer;
      state.adminUrl = latchkey.adminUrl;
      hydra = hydraAdmin(latchkey.adminUrl);
    });

    after(async () => {
      await latchkey?.stop();
      docServer?.close();
      mcpServer?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    for (const mode of ['client ID metadata document', 'dynamic registration']) {
      it(`${mode}: discovery, registration, code + PKCE with resource, a tool call, refresh`, async () => {
        const provider = new MemoryProvider(mode === 'dynamic registration' ? undefined : state.documentUrl);
        const mcpUrl = new URL(state.resource);

        // Unauthenticated: the transport runs auth(), which ends at the authorization URL.
        const first = new Client({ name: 'interop', version: '1.0.0' });
        await assert.rejects(first.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider })), UnauthorizedError);
        const authorizationUrl = provider.saved.authorizationUrl;
        assert.ok(authorizationUrl, 'the SDK sent the user to authorize');
        assert.ok(authorizationUrl.href.startsWith(`${latchkey.publicUrl}/oauth2/auth?`), authorizationUrl.href);
        const asked = query(authorizationUrl.href);
        assert.equal(asked.resource, state.resource);
        assert.equal(asked.code_challenge_method, 'S256');
        assert.deepEqual(asked.scope.split(' ').sort(), ['dns.read', 'offline_access']);
        const clientId = provider.saved.client?.client_id ?? asked.client_id;
        if (mode === 'dynamic registration') {
          assert.ok(provider.saved.client?.client_id, 'registered');
          assert.notEqual(asked.client_id, state.documentUrl);
        } else {
          assert.equal(asked.client_id, state.documentUrl, 'the document URL is the client_id');
        }

        // The browser, with a Hydra-style login and consent app.
        const browser = new Browser();
        const toLogin = await expectRedirect(browser, authorizationUrl, 'authorization endpoint');
        const loginChallenge = query(toLogin).login_challenge;
        assert.ok(loginChallenge, toLogin);
        const subject = unique('agent-user');
        const app = acceptAll(subject);
        const { data: login } = await hydra.acceptOAuth2LoginRequest({ loginChallenge, acceptOAuth2LoginRequest: app.login() });
        const toConsent = await expectRedirect(browser, login.redirect_to, 'login verifier');
        const consentChallenge = query(toConsent).consent_challenge;
        const { data: consentRequest } = await hydra.getOAuth2ConsentRequest({ consentChallenge });
        assert.deepEqual(consentRequest.requested_access_token_audience, [state.resource]);
        assert.equal(consentRequest.client.client_id, clientId);
        const { data: consent } = await hydra.acceptOAuth2ConsentRequest({ consentChallenge, acceptOAuth2ConsentRequest: app.consent(consentRequest) });
        const callback = await expectRedirect(browser, consent.redirect_to, 'consent verifier');
        const back = query(callback);
        assert.equal(back.iss, latchkey.issuer);
        assert.ok(back.code, callback);

        // The SDK redeems the code (with the same resource) and the tool call goes through.
        const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
        await transport.finishAuth(back.code);
        const tokens = provider.saved.tokens;
        assert.ok(tokens.access_token && tokens.refresh_token, 'access and refresh tokens');
        const i = await introspect(latchkey.adminUrl, tokens.access_token);
        assert.deepEqual(i.aud, [state.resource], 'the token is for the MCP server only');
        const client = new Client({ name: 'interop', version: '1.0.0' });
        await client.connect(transport);
        const called = await client.callTool({ name: 'whoami', arguments: {} });
        assert.equal(called.content[0].text, `client ${clientId} for ${state.resource}`);
        await client.close();

        // Refresh through auth(): a new pair, still for the MCP server.
        const result = await auth(provider, { serverUrl: mcpUrl });
        assert.equal(result, 'AUTHORIZED');
        assert.notEqual(provider.saved.tokens.access_token, tokens.access_token, 'refreshed');
        const j = await introspect(latchkey.adminUrl, provider.saved.tokens.access_token);
        assert.deepEqual(j.aud, [state.resource]);
        const again = new Client({ name: 'interop', version: '1.0.0' });
        await again.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
        assert.equal((await again.callTool({ name: 'whoami', arguments: {} })).content[0].text, `client ${clientId} for ${state.resource}`);
        await again.close();

        // A refresh for a resource outside the grant is invalid_target.
        const refused = await fetch(`${latchkey.publicUrl}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: provider.saved.tokens.refresh_token, client_id: clientId, resource: state.other }),
        });
        assert.equal(refused.status, 400);
        assert.equal((await refused.json()).error, 'invalid_target');
      });
    }

    it('a token issued for another resource is refused by the MCP server', async () => {
      const { data: svc } = await hydra.createOAuth2Client({
        oAuth2Client: { grant_types: ['client_credentials'], scope: 'dns.read offline_access', token_endpoint_auth_method: 'client_secret_post' },
      });
      const res = await fetch(`${latchkey.publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: svc.client_id, client_secret: svc.client_secret, scope: 'dns.read offline_access', resource: state.other }),
      });
      assert.equal(res.status, 200);
      const { access_token: token } = await res.json();
      assert.deepEqual((await introspect(latchkey.adminUrl, token)).aud, [state.other]);
      const call = await fetch(state.resource, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(call.status, 401);
      assert.match(call.headers.get('www-authenticate'), /invalid_token/);
    });
  });
}
