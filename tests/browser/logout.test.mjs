// Browser tests of signing out, in headless Chromium (Debian's package) driven by
// playwright-core: RP-initiated logout through the built-in logout page (front-channel iframe,
// back-channel logout token, back at the app with its state), "Your sessions" with sign-out per
// session and everywhere, and the opening path `/`.
//
//   LATCHKEY_BIN   the binary (default: ../../target/debug/latchkey)
//   Screenshots go to test-output/screenshots/ at the repository root (logout-*.png).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

import { launchBrowser, newPage, shots, startServer, stopServer } from "./lib.mjs";


/**
 * The app on loopback: receives the code and redeems it, shows a "signed out" page, and records
 * the front-channel requests and the back-channel logout tokens it gets.
 */
function startApp(server) {
  const app = { front: [], back: [], tokens: null, received: null };
  app.newFlow = () => {
    app.verifier = randomBytes(32).toString("base64url");
    app.state = randomBytes(16).toString("base64url");
    app.received = null;
  };
  app.newFlow();
  app.server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/callback") {
      app.received = Object.fromEntries(url.searchParams);
      if (url.searchParams.get("code")) {
        const body = new URLSearchParams({
          grant_type: "authorization_code",
          code: url.searchParams.get("code"),
          redirect_uri: `${app.base}/callback`,
          client_id: server.appId("Toolsmith Deploy"),
          code_verifier: app.verifier,
        });
        const r = await fetch(`${server.public}/oauth2/token`, { method: "POST", body });
        app.tokens = await r.json();
      }
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>Toolsmith Deploy</title><h1>${url.searchParams.get("code") ? "Connected" : "Not connected"}</h1>`);
    } else if (url.pathname === "/signed-out") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>Toolsmith Deploy</title><h1>Signed out of Toolsmith Deploy</h1><p>state ${url.searchParams.get("state")}</p>`);
    } else if (url.pathname === "/frontchannel") {
      app.front.push(Object.fromEntries(url.searchParams));
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>bye</title>");
    } else if (url.pathname === "/backchannel" && req.method === "POST") {
      let body = "";
      for await (const chunk of req) body += chunk;
      app.back.push(new URLSearchParams(body).get("logout_token"));
      res.writeHead(200).end();
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) =>
    app.server.listen(0, "127.0.0.1", () => {
      app.base = `http://127.0.0.1:${app.server.address().port}`;
      ok(app);
    }),
  );
}

function authorizeUrl(server, app, prompt) {
  const q = new URLSearchParams({
    client_id: server.appId("Toolsmith Deploy"),
    response_type: "code",
    redirect_uri: `${app.base}/callback`,
    scope: "openid offline_access account.read",
    state: app.state,
    code_challenge: createHash("sha256").update(app.verifier).digest("base64url"),
    code_challenge_method: "S256",
  });
  if (prompt) q.set("prompt", prompt);
  return `${server.public}/oauth2/auth?${q}`;
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

async function until(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

let browser;
let server;
let app;

before(async () => {
  server = await startServer();
  app = await startApp(server);
  // The app registers its logout endpoints (the admin API, as Hydra's).
  const patch = [
    { op: "add", path: "/post_logout_redirect_uris", value: [`${app.base}/signed-out`] },
    { op: "add", path: "/frontchannel_logout_uri", value: `${app.base}/frontchannel` },
    { op: "add", path: "/frontchannel_logout_session_required", value: true },
    { op: "add", path: "/backchannel_logout_uri", value: `${app.base}/backchannel` },
    { op: "add", path: "/backchannel_logout_session_required", value: true },
  ];
  const r = await fetch(`${server.admin}/admin/clients/${server.appId("Toolsmith Deploy")}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(patch),
  });
  assert.equal(r.status, 200, await r.text());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  app?.server.close();
  stopServer(server);
});

/** Signs in through the app (remembered) and consents; resolves with the app's ID token. */
async function signInThroughApp(p) {
  app.newFlow();
  await p.goto(authorizeUrl(server, app));
  await p.getByRole("heading", { name: "Sign in" }).waitFor();
  await p.getByLabel("Email").fill("alice@acme.test");
  await p.getByLabel("Password").fill(server.password);
  await p.getByLabel("Remember me on this device").check();
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.waitForURL(/\/ui\/consent|\/callback/);
  if (p.url().includes("/ui/consent")) {
    await p.getByRole("checkbox", { name: /^Acme \(owner\)/ }).check();
    await p.getByRole("button", { name: "Authorize" }).click();
  }
  await p.waitForURL(/\/callback/);
  await p.getByRole("heading", { name: "Connected" }).waitFor();
  assert.ok(app.tokens?.id_token, JSON.stringify(app.tokens));
  return app.tokens.id_token;
}

test("the app signs the user out: the logout page names it, its iframe and logout token arrive, and the browser is back at the app", async () => {
  const { context, p, errors } = await newPage(browser);
  try {
    // `/` takes a signed-out person to the sign-in page.
    await p.goto(`${server.public}/`);
    await p.getByRole("heading", { name: "Sign in" }).waitFor();

    const idToken = await signInThroughApp(p);
    const sid = claims(idToken).sid;
    assert.ok(sid, "the ID token carries sid");

    // `/` takes a signed-in person to their connected apps.
    await p.goto(`${server.public}/`);
    await p.getByRole("heading", { name: "Connected apps" }).waitFor();

    const q = new URLSearchParams({
      id_token_hint: idToken,
      post_logout_redirect_uri: `${app.base}/signed-out`,
      state: "bye-42",
    });
    await p.goto(`${server.public}/oauth2/sessions/logout?${q}`);
    await p.getByRole("heading", { name: /^Sign out of / }).waitFor();
    const body = await p.textContent("main");
    assert.match(body, /Toolsmith Deploy asked to sign you out/);
    assert.match(body, /You will also be signed out of this app/);
    await p.screenshot({ path: join(shots, "logout-01-sign-out.png"), fullPage: true });

    await p.getByRole("button", { name: "Sign out", exact: true }).click();
    await p.getByRole("heading", { name: "Signing you out" }).waitFor();
    await p.screenshot({ path: join(shots, "logout-02-signing-out.png"), fullPage: true });
    await p.waitForURL(new RegExp(`${app.base.replace(/[.]/g, "\\.")}/signed-out\\?state=bye-42`));
    await p.getByRole("heading", { name: "Signed out of Toolsmith Deploy" }).waitFor();
    await p.screenshot({ path: join(shots, "logout-03-back-at-the-app.png"), fullPage: true });

    assert.deepEqual(app.front.at(-1), { iss: server.public, sid });
    await until("the back-channel logout token", () => app.back.length === 1);
    const token = claims(app.back[0]);
    assert.equal(token.sid, sid);
    assert.deepEqual(token.aud, [server.appId("Toolsmith Deploy")]);
    assert.ok(token.events["http://schemas.openid.net/event/backchannel-logout"]);
    assert.equal(token.nonce, undefined);

    // Signed out: a silent sign-in needs a login, and `/` goes to the sign-in page.
    app.newFlow();
    await p.goto(authorizeUrl(server, app, "none"));
    await p.waitForURL(/\/callback/);
    assert.equal(app.received.error, "login_required");
    await p.goto(`${server.public}/`);
    await p.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("Your sessions lists each browser with its apps; signing one out, then everywhere, sends logout tokens", async () => {
  const laptop = await newPage(browser);
  const phone = await newPage(browser);
  try {
    const before = app.back.length;
    const laptopSid = claims(await signInThroughApp(laptop.p)).sid;
    const phoneSid = claims(await signInThroughApp(phone.p)).sid;
    assert.notEqual(laptopSid, phoneSid);

    await laptop.p.goto(`${server.public}/ui/sessions`);
    await laptop.p.getByRole("heading", { name: "Your sessions" }).waitFor();
    const rows = laptop.p.locator("ul.rows > li");
    assert.equal(await rows.count(), 2);
    const main = await laptop.p.textContent("main");
    assert.match(main, /Chrome on Linux/);
    assert.match(main, /Toolsmith Deploy/);
    assert.match(main, /last active just now/);
    assert.equal(await laptop.p.getByText("This browser").count(), 1);
    await laptop.p.screenshot({ path: join(shots, "logout-04-your-sessions.png"), fullPage: true });

    // Sign the other browser out (the newest is listed first: the phone).
    await rows.first().getByRole("button", { name: /^Sign out / }).click();
    await laptop.p.getByRole("heading", { name: "Your sessions" }).waitFor();
    assert.equal(await laptop.p.locator("ul.rows > li").count(), 1);
    await until("the phone's logout token", () => app.back.length === before + 1);
    assert.equal(claims(app.back.at(-1)).sid, phoneSid);
    await laptop.p.screenshot({ path: join(shots, "logout-05-one-signed-out.png"), fullPage: true });

    // The phone must sign in again to reach the app.
    app.newFlow();
    await phone.p.goto(authorizeUrl(server, app, "none"));
    await phone.p.waitForURL(/\/callback/);
    assert.equal(app.received.error, "login_required");

    await laptop.p.getByRole("button", { name: "Sign out everywhere" }).click();
    await laptop.p.getByRole("heading", { name: "You are signed out" }).waitFor();
    await laptop.p.screenshot({ path: join(shots, "logout-06-signed-out-everywhere.png"), fullPage: true });
    await until("the laptop's logout token", () => app.back.length === before + 2);
    assert.equal(claims(app.back.at(-1)).sid, laptopSid);
    await laptop.p.goto(`${server.public}/ui/sessions`);
    await laptop.p.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.deepEqual(laptop.errors, []);
    assert.deepEqual(phone.errors, []);
  } finally {
    await laptop.context.close();
    await phone.context.close();
  }
});
