// The device authorization grant (RFC 8628) in headless Chromium: a CLI asks for a code, the user
// opens the verification URI, enters the code on /ui/device (pre-filled from the complete URI),
// sees which app asks, signs in, consents, and lands on the success page; the CLI's next poll
// gets the tokens.
//
//   LATCHKEY_BIN   the binary (default: ../../target/debug/latchkey)
//   Screenshots go to test-output/screenshots/ at the repository root.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const bin = process.env.LATCHKEY_BIN ?? join(root, "target/debug/latchkey");
const shots = join(root, "test-output/screenshots");
mkdirSync(shots, { recursive: true });

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

function startServer() {
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-device-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LATCHKEY_")));
  env.LATCHKEY_DATA_DIR = dataDir;
  env.LATCHKEY_LOG__LEVEL = "warn";
  const child = spawn(bin, ["serve", "--demo", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"], { env });
  return new Promise((ok, fail) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => fail(new Error(`no start: ${err}`)), 60_000);
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => fail(new Error(`exited ${code}: ${err}`)));
    child.stdout.on("data", (d) => {
      out += d;
      if (!out.includes("then:")) return;
      clearTimeout(timer);
      const grab = (re) => (out.match(re) ?? [])[1];
      ok({
        child,
        dataDir,
        public: grab(/public:\s+(\S+)/),
        admin: grab(/admin:\s+(\S+)/),
        password: grab(/password for every demo user: (\S+)/),
      });
    });
  });
}

let browser;
let server;

before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.child.kill();
  rmSync(server?.dataDir ?? "/nonexistent", { recursive: true, force: true });
});

async function deviceClient() {
  const r = await fetch(`${server.admin}/admin/clients`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Acme CLI",
      grant_types: [DEVICE_GRANT, "refresh_token"],
      scope: "openid offline_access dns.read",
    }),
  });
  assert.equal(r.status, 201);
  return r.json();
}

async function form(path, client, body) {
  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64");
  const r = await fetch(`${server.public}${path}`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}` },
    body: new URLSearchParams(body),
  });
  return { status: r.status, json: await r.json() };
}

test("a user connects a CLI through /ui/device: the code, the app and its shield, login, consent, success", async () => {
  const client = await deviceClient();
  const asked = await form("/oauth2/device/auth", client, { scope: "openid offline_access dns.read" });
  assert.equal(asked.status, 200);
  const { device_code, user_code, verification_uri_complete } = asked.json;
  const pending = await form("/oauth2/token", client, { grant_type: DEVICE_GRANT, device_code });
  assert.equal(pending.json.error, "authorization_pending");

  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const p = await context.newPage();
  const errors = [];
  p.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  p.on("pageerror", (e) => errors.push(String(e)));
  try {
    await p.goto(verification_uri_complete);
    await p.getByRole("heading", { name: "Connect a device" }).waitFor();
    assert.equal(await p.getByLabel("Code").inputValue(), user_code, "pre-filled from the complete URI");
    assert.match(await p.textContent("body"), /Only enter a code shown by a device you are using right now/);
    await p.screenshot({ path: join(shots, "20-device-code.png"), fullPage: true });

    // A wrong code is refused on the page.
    await p.getByLabel("Code").fill("BBBB-BBBB");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByText("The user code is wrong, expired or already used.").waitFor();

    await p.getByLabel("Code").fill(user_code.toLowerCase().replace("-", ""));
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("heading", { name: /Acme CLI wants to connect a device/ }).waitFor();
    const body = await p.textContent("body");
    assert.match(body, /Made by/, "the publisher shield");
    assert.match(body, /Only continue if you started this on a device you are using right now/);
    await p.screenshot({ path: join(shots, "21-device-app.png"), fullPage: true });

    await p.getByRole("link", { name: "Continue" }).click();
    await p.getByRole("heading", { name: "Sign in" }).waitFor();
    await p.getByLabel("Email").fill("alice@acme.test");
    await p.getByLabel("Password").fill(server.password);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("heading", { name: /Acme CLI wants to access/ }).waitFor();
    await p.screenshot({ path: join(shots, "22-device-consent.png"), fullPage: true });
    const acme = p.getByRole("checkbox", { name: /^Acme \(owner\)/ });
    if (await acme.count()) await acme.check();
    await p.getByRole("button", { name: "Authorize" }).click();
    await p.getByRole("heading", { name: "You're all set" }).waitFor();
    assert.match(await p.textContent("body"), /Return to your device/);
    await p.screenshot({ path: join(shots, "23-device-success.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }

  // The CLI's next poll (after the interval) gets its tokens, once.
  await new Promise((r) => setTimeout(r, 5_500));
  const tokens = await form("/oauth2/token", client, { grant_type: DEVICE_GRANT, device_code });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.json));
  assert.ok(tokens.json.access_token && tokens.json.refresh_token && tokens.json.id_token);
  await new Promise((r) => setTimeout(r, 5_500));
  const again = await form("/oauth2/token", client, { grant_type: DEVICE_GRANT, device_code });
  assert.equal(again.json.error, "invalid_grant");
});
