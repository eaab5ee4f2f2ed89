// Browser tests of the platform's pages, in headless Chromium (Debian's package) driven by
// playwright-core. Each test starts `latchkey serve --demo` on a fresh data directory and, where
// an app must receive the code, a small relying party on loopback.
//
//   LATCHKEY_BIN   the binary (default: ../../target/debug/latchkey)
//   Screenshots go to test-output/screenshots/ at the repository root.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

import { launchBrowser, login, newPage, shots, startServer, stopServer } from "./lib.mjs";


/** A relying party on loopback: receives the code, redeems it with PKCE, keeps the tokens. */
function startRelyingParty(server, clientId) {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const state = randomBytes(16).toString("base64url");
  // `clientId` may be set later (a client that registers itself needs the redirect URI first).
  const rp = { clientId, verifier, challenge, state, received: null, tokens: null };
  rp.server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    rp.received = Object.fromEntries(url.searchParams);
    if (url.searchParams.get("code")) {
      const body = new URLSearchParams({
        grant_type: "authorization_code",
        code: url.searchParams.get("code"),
        redirect_uri: rp.redirectUri,
        client_id: rp.clientId,
        code_verifier: verifier,
      });
      const r = await fetch(`${server.public}/oauth2/token`, { method: "POST", body });
      rp.tokens = await r.json();
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Relying party</title><h1>${rp.tokens?.access_token ? "Connected" : "Not connected"}</h1>`);
  });
  return new Promise((ok) =>
    rp.server.listen(0, "127.0.0.1", () => {
      rp.redirectUri = `http://127.0.0.1:${rp.server.address().port}/callback`;
      ok(rp);
    }),
  );
}

function authorizeUrl(server, clientId, redirectUri, scope, rp) {
  const q = new URLSearchParams({
    client_id: clientId,
    response_type: "code",
    redirect_uri: redirectUri,
    scope,
    state: rp?.state ?? "state-0123456789",
    code_challenge: rp?.challenge ?? createHash("sha256").update("x".repeat(50)).digest("base64url"),
    code_challenge_method: "S256",
  });
  return `${server.public}/oauth2/auth?${q}`;
}

async function introspect(server, token) {
  const r = await fetch(`${server.admin}/admin/oauth2/introspect`, { method: "POST", body: new URLSearchParams({ token }) });
  return r.json();
}

let browser;
let server;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  stopServer(server);
});

test("a user authorizes the third-party app with one optional scope unticked and one account, then revokes it", async () => {
  const rp = await startRelyingParty(server, server.appId("Toolsmith Deploy"));
  const { context, p, errors } = await newPage(browser);
  try {
    const scope = "openid offline_access account.read dns.read dns.write workers.read";
    await p.goto(authorizeUrl(server, server.appId("Toolsmith Deploy"), rp.redirectUri, scope, rp));
    await p.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.match(await p.textContent("body"), /Toolsmith Deploy/);
    await p.screenshot({ path: join(shots, "01-login.png"), fullPage: true });

    // A wrong password is refused with a generic message.
    await login(p, "alice@acme.test", "not-the-password");
    await p.getByRole("alert").waitFor();
    assert.match(await p.getByRole("alert").textContent(), /email or password is incorrect/);

    await login(p, "alice@acme.test", server.password);
    await p.getByRole("heading", { name: /Toolsmith Deploy wants to access/ }).waitFor();
    const body = await p.textContent("body");
    assert.match(body, /Verified publisher/);
    assert.match(body, /toolsmith\.example/);
    assert.match(body, /Owned by the account Toolsmith Labs/);
    assert.match(body, /127\.0\.0\.1:\d+/, "the redirect host is shown");
    assert.match(body, /Change your DNS records/);
    assert.ok(!/not verified/.test(body), "no unverified warning for a verified app");
    await p.screenshot({ path: join(shots, "02-consent.png"), fullPage: true });

    await p.getByLabel(/Change your DNS records/).uncheck();
    await p.getByRole("checkbox", { name: /^Acme \(owner\)/ }).check();
    await p.getByRole("button", { name: "Authorize" }).click();
    await p.waitForURL(/127\.0\.0\.1:\d+\/callback/);
    await p.getByRole("heading", { name: "Connected" }).waitFor();
    assert.equal(rp.received.state, rp.state);
    assert.ok(rp.received.iss, "RFC 9207 iss");
    const granted = rp.tokens.scope.split(" ").sort();
    assert.deepEqual(granted, ["account.read", "dns.read", "offline_access", "openid", "workers.read"]);
    const info = await introspect(server, rp.tokens.access_token);
    assert.equal(info.active, true);
    assert.deepEqual(info.ext.accounts, ["acme"]);
    assert.ok(!info.scope.includes("dns.write"));

    await p.goto(`${server.public}/ui/apps`);
    await p.getByRole("heading", { name: "Connected apps" }).waitFor();
    const apps = await p.textContent("main");
    assert.match(apps, /Toolsmith Deploy/);
    assert.match(apps, /Acme/);
    assert.match(apps, /See your DNS records/);
    await p.screenshot({ path: join(shots, "03-connected-apps.png"), fullPage: true });
    await p.getByRole("button", { name: "Revoke Toolsmith Deploy" }).click();
    await p.getByText("You have not authorized any app yet.").waitFor();
    assert.equal((await introspect(server, rp.tokens.access_token)).active, false);
    assert.equal((await introspect(server, rp.tokens.refresh_token)).active, false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    rp.server.close();
  }
});

test("a developer creates an app, sees its secret once and rotates it", async () => {
  const { context, p, errors } = await newPage(browser);
  try {
    await p.goto(`${server.public}/ui/developer`);
    await login(p, "alice@acme.test", server.password);
    await p.getByRole("heading", { name: "Developer console" }).waitFor();
    await p.screenshot({ path: join(shots, "04-developer.png"), fullPage: true });
    await p.locator("section", { hasText: "Acme · you are owner" }).getByRole("link", { name: "Create app" }).click();
    await p.getByLabel("Name", { exact: true }).fill("Acme Reports");
    await p.getByLabel(/Redirect URIs/).fill("https://reports.acme.example/callback");
    await p.getByLabel(/Homepage/).fill("https://reports.acme.example/");
    await p.locator('select[name="scope:openid"]').selectOption("required");
    await p.locator('select[name="scope:dns.read"]').selectOption("required");
    await p.locator('select[name="scope:workers.read"]').selectOption("optional");
    await p.screenshot({ path: join(shots, "05-developer-new.png"), fullPage: true });
    await p.getByRole("button", { name: "Create app" }).click();
    await p.getByText("shown only once").waitFor();
    const first = (await p.locator("#client-secret").textContent()).trim();
    assert.match(first, /^lk_cs_/);
    await p.screenshot({ path: join(shots, "06-developer-secret.png"), fullPage: true });

    // Opening the app's page again does not show the secret.
    const appLink = await p.locator("#client-id").textContent();
    await p.goto(`${server.public}/ui/developer/acme/apps/${appLink.trim()}`);
    assert.equal(await p.locator("#client-secret").count(), 0);

    await p.getByRole("button", { name: "Rotate secret" }).click();
    await p.getByText("shown only once").waitFor();
    const second = (await p.locator("#client-secret").textContent()).trim();
    assert.notEqual(second, first);
    assert.match(await p.textContent("main"), /A rotation is in progress/);
    await p.screenshot({ path: join(shots, "07-developer-rotated.png"), fullPage: true });
    await p.getByRole("button", { name: "Confirm rotation" }).click();
    await p.getByText("Rotation confirmed").waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("an unverified app shows its warning; the operator console lists apps and the audit log", async () => {
  const { context, p, errors } = await newPage(browser);
  try {
    await p.goto(authorizeUrl(server, server.appId("Toolsmith Insights"), "http://127.0.0.1/insights/callback", "openid account.read"));
    await login(p, "dev@toolsmith.test", server.password);
    await p.getByRole("heading", { name: /Toolsmith Insights wants to access/ }).waitFor();
    const warning = await p.getByRole("alert").first().textContent();
    assert.match(warning, /This app is not verified/);
    assert.match(await p.textContent("body"), /Unverified publisher/);
    await p.screenshot({ path: join(shots, "08-consent-unverified.png"), fullPage: true });
    await context.clearCookies();

    await p.goto(`${server.public}/ui/admin`);
    await login(p, "operator@platform.test", server.password);
    await p.getByRole("heading", { name: "Administration" }).waitFor();
    const admin = await p.textContent("main");
    assert.match(admin, /Toolsmith Deploy/);
    assert.match(admin, /grant\.revoke/);
    assert.match(admin, /client\.create/);
    await p.screenshot({ path: join(shots, "09-admin.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("where unverified apps may go public, an outsider is warned before their consent screen; the developer sees the user cap", async () => {
  // An operator who lets unverified apps go public: the demo then seeds one, Toolsmith Sync.
  const server = await startServer({ LATCHKEY_PLATFORM__PUBLIC_APPS_NEED_VERIFIED_DOMAIN: "false" });
  const rp = await startRelyingParty(server, server.appId("Toolsmith Sync"));
  const { context, p, errors } = await newPage(browser);
  try {
    // The registered redirect is http://127.0.0.1/sync/callback: any loopback port is fine.
    const redirectUri = rp.redirectUri.replace("/callback", "/sync/callback");
    await p.goto(authorizeUrl(server, server.appId("Toolsmith Sync"), redirectUri, "openid dns.read", rp));
    await login(p, "alice@acme.test", server.password);
    await p.getByRole("heading", { name: /has not verified this app/ }).waitFor();
    const body = await p.textContent("main");
    assert.match(body, /Toolsmith Sync/);
    assert.match(body, /sync\.toolsmith-beta\.example/);
    assert.ok(await p.getByRole("button", { name: "Back to safety" }).isVisible());
    await p.screenshot({ path: join(shots, "10-unverified-interstitial.png"), fullPage: true });

    await p.getByRole("link", { name: /continue to Toolsmith Sync/ }).click();
    await p.getByRole("heading", { name: /Toolsmith Sync wants to access/ }).waitFor();
    assert.match(await p.getByRole("alert").first().textContent(), /This app is not verified/);
    await context.clearCookies();

    await p.goto(`${server.public}/ui/developer`);
    await login(p, "dev@toolsmith.test", server.password);
    await p.getByRole("link", { name: "Toolsmith Sync" }).click();
    await p.getByText(/Unverified apps can have at most 100 users/).waitFor();
    await p.screenshot({ path: join(shots, "11-developer-user-cap.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    rp.server.close();
    await context.close();
    stopServer(server);
  }
});

/** A name as a person compares it: compatibility forms folded (NFKC), invisible characters
 *  (format and default-ignorable code points) removed, spacing collapsed, case ignored. */
function asSeen(name) {
  return name
    .normalize("NFKC")
    .replace(/[\p{Cf}\p{Default_Ignorable_Code_Point}]/gu, "")
    .replace(/\s+/gu, " ")
    .trim()
    .toLowerCase();
}

/** The first `length` code units of an element's text in the order they are painted (top to
 *  bottom, then left to right), invisible ones (no width) left out: what a person reads,
 *  whatever the bidirectional algorithm did to the logical order. */
function paintedText(locator, length) {
  return locator.evaluate((element, length) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const glyphs = [];
    let seen = 0;
    for (let node = walker.nextNode(); node && seen < length; node = walker.nextNode()) {
      const text = node.data.slice(0, length - seen);
      for (const { segment, index } of new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)) {
        const range = document.createRange();
        range.setStart(node, index);
        range.setEnd(node, index + segment.length);
        const box = range.getBoundingClientRect();
        if (box.width > 0) glyphs.push({ segment, top: Math.round(box.top), left: box.left });
      }
      seen += text.length;
    }
    glyphs.sort((a, b) => a.top - b.top || a.left - b.left);
    return glyphs.map((g) => g.segment).join("");
  }, length);
}

test("no app name the API accepts renders on the consent screen as the platform's or a verified app's name", async () => {
  // A server of its own: the apps created here stay out of the other tests' world.
  const server = await startServer();
  const { context, p, errors } = await newPage(browser);
  const platformName = "Latchkey";
  const verifiedApp = "Toolsmith Deploy";
  // [label, name]
  const refused = [
    ["rlo-reversed-platform", "\u202eyekhctaL\u202c"],
    ["rli-isolate-reversed-platform", "\u2067yekhctaL\u2069"],
    ["zwj-platform", "Latch\u200dkey"],
    ["zwsp-platform", "Latch\u200bkey"],
    ["bom-platform", "\ufeffLatchkey"],
    ["soft-hyphen-platform", "Latch\u00adkey"],
    ["cyrillic-a-platform", "L\u0430tchkey"],
    ["greek-alpha-platform", "L\u03b1tchkey"],
    ["greek-capital-epsilon-platform", "LATCHK\u0395Y"],
    ["full-width-platform", "\uff2c\uff41\uff54\uff43\uff48\uff4b\uff45\uff59"],
    ["leet-platform", "L4tchk3y"],
    ["spaced-platform", "L a t c h k e y"],
    ["platform-itself", "Latchkey"],
    ["verified-app-itself", verifiedApp],
    ["verified-app-digit-one", "Toolsmith Dep1oy"],
    ["verified-app-cyrillic-o", "T\u043e\u043elsmith Deploy"],
    ["verified-app-greek-tau", "\u03a4oolsmith Deploy"],
    ["verified-app-full-width-t", "\uff34oolsmith Deploy"],
    ["verified-app-zwsp", "Toolsmith\u200bDeploy"],
    ["verified-app-rlo", "\u202eyolpeD htimslooT\u202c"],
    ["verified-app-upper-case", "TOOLSMITH DEPLOY"],
  ];
  const accepted = [
    ["latin-accents", "Caf\u00e9 \u00dcn\u00efcode"],
    ["latin-combining-marks", "Cafe\u0301 U\u0308ni\u0308code"],
    ["japanese", "\u65e5\u672c\u8a9e\u30a2\u30d7\u30ea"],
    ["cyrillic", "\u041c\u043e\u0439 \u0431\u043e\u0442"],
    ["arabic", "\u062a\u0637\u0628\u064a\u0642 \u0627\u0644\u0637\u0642\u0633"],
    ["han-and-latin", "\u6771\u4eac Tools"],
  ];
  try {
    // The instrument first: the name the issue reported, in a heading of our own, is painted
    // as "Latchkey" though its code points read "yekhctaL".
    const spoof = "\u202eyekhctaL\u202c";
    await p.setContent(`<h1 id="title">${spoof} wants to access your ${platformName} account</h1>`);
    assert.equal(asSeen(await paintedText(p.locator("h1#title"), spoof.length)), asSeen(platformName));

    // The console session of alice, an owner of Acme, and its CSRF token for the JSON API.
    await p.goto(`${server.public}/ui/developer`);
    await login(p, "alice@acme.test", server.password);
    await p.getByRole("heading", { name: "Developer console" }).waitFor();
    const csrf = await p.locator('input[name="csrf_token"]').first().inputValue();
    const create = (name) =>
      context.request.post(`${server.public}/api/v1/accounts/acme/apps`, {
        headers: { "X-CSRF-Token": csrf },
        data: {
          name,
          app_type: "native",
          redirect_uris: ["http://127.0.0.1/callback"],
          scopes: ["openid", "account.read"],
        },
      });

    for (const [label, name] of refused) {
      const r = await create(name);
      const body = await r.json();
      assert.equal(r.status(), 400, `${label} is refused: ${r.status()} ${JSON.stringify(body)}`);
      assert.match(body.error_description, /\bname\b/, `${label} is refused for its name`);
      assert.ok(!/\p{Cf}/u.test(body.error_description), `${label}: the refusal does not echo invisible characters`);
    }

    const created = [];
    for (const [label, name] of accepted) {
      const r = await create(name);
      const body = await r.json();
      assert.equal(r.status(), 201, `${label} is accepted: ${r.status()} ${JSON.stringify(body)}`);
      assert.equal(body.name, name, `${label} is stored as written`);
      created.push({ label, name, clientId: body.client_id });
    }

    // Every accepted name on the consent screen of its owner, as rendered by Chromium.
    const forbidden = [platformName, verifiedApp].map(asSeen);
    const suffix = ` wants to access your ${platformName} account`;
    for (const [i, { label, name, clientId }] of created.entries()) {
      await p.goto(authorizeUrl(server, clientId, "http://127.0.0.1:9/callback", "openid account.read"));
      const consent = p.getByRole("heading", { name: /wants to access your/ });
      // The engine asks for a login unless a remembered one is there.
      await consent.or(p.getByRole("heading", { name: "Sign in" })).waitFor();
      if (!(await consent.isVisible())) await login(p, "alice@acme.test", server.password);
      const title = p.locator("h1#title");
      await consent.waitFor();
      const heading = await title.innerText();
      assert.ok(heading.endsWith(suffix), `${label}: heading ${JSON.stringify(heading)}`);
      const shown = heading.slice(0, -suffix.length);
      assert.equal(shown, name, `${label}: the heading shows the accepted name`);
      const painted = await paintedText(title, name.length);
      for (const text of [shown, painted]) {
        assert.ok(!forbidden.includes(asSeen(text)), `${label}: ${JSON.stringify(text)} reads as a trusted name`);
      }
      assert.match(await p.textContent("body"), /Unverified publisher/, `${label}: shown as unverified`);
      await p.screenshot({ path: join(shots, `12-consent-name-${i + 1}-${label}.png`), fullPage: true });
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    stopServer(server);
  }
});

test("an MCP client that registered itself: unverified, named resource, loopback warning; it shows in connected apps and is revoked in one click", async () => {
  const rp = await startRelyingParty(server, null);
  // What the MCP SDK registers: loopback redirect, public client, no application_type.
  const reg = await fetch(`${server.public}/oauth2/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Deploy Helper Agent",
      redirect_uris: [rp.redirectUri],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  });
  assert.equal(reg.status, 201);
  const registered = await reg.json();
  rp.clientId = registered.client_id;
  const { context, p, errors } = await newPage(browser);
  try {
    const url = new URL(authorizeUrl(server, rp.clientId, rp.redirectUri, "openid offline_access dns.read", rp));
    url.searchParams.append("resource", "http://127.0.0.1:3000/mcp");
    await p.goto(url.href);
    await login(p, "alice@acme.test", server.password);
    // Nobody vouches for it: the warning page comes first.
    await p.getByRole("heading", { name: /has not verified this app/ }).waitFor();
    await p.screenshot({ path: join(shots, "30-registered-agent-warning.png"), fullPage: true });
    await p.getByRole("link", { name: /continue to Deploy Helper Agent/ }).click();
    await p.getByRole("heading", { name: /Deploy Helper Agent wants to access/ }).waitFor();
    const body = await p.textContent("body");
    assert.match(body, /it registered itself/);
    assert.match(body, /runs on a computer, not on a website/);
    assert.match(body, /For Demo MCP server \(DNS tools\) only/);
    assert.match(body, /See your DNS records/);
    await p.screenshot({ path: join(shots, "31-registered-agent-consent.png"), fullPage: true });
    await p.getByRole("checkbox", { name: /^Acme \(owner\)/ }).check();
    await p.getByRole("button", { name: "Authorize" }).click();
    await p.waitForURL(/127\.0\.0\.1:\d+\/callback/);
    await p.getByRole("heading", { name: "Connected" }).waitFor();
    const info = await introspect(server, rp.tokens.access_token);
    assert.deepEqual(info.aud, ["http://127.0.0.1:3000/mcp"]);
    assert.equal(info.scope, "openid offline_access dns.read");

    await p.goto(`${server.public}/ui/apps`);
    await p.getByRole("heading", { name: "Connected apps" }).waitFor();
    assert.match(await p.textContent("main"), /Deploy Helper Agent[\s\S]*Unverified/);
    await p.screenshot({ path: join(shots, "32-registered-agent-connected.png"), fullPage: true });
    await p.getByRole("button", { name: "Revoke Deploy Helper Agent" }).click();
    await p.getByRole("button", { name: "Revoke Deploy Helper Agent" }).waitFor({ state: "detached" });
    assert.equal((await introspect(server, rp.tokens.refresh_token)).active, false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    rp.server.close();
  }
});
