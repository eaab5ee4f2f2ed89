// The device authorization grant (RFC 8628) in headless Chromium: a CLI asks for a code, the user
// opens the verification URI, enters the code on /ui/device (pre-filled from the complete URI),
// sees which app asks, signs in, consents, and lands on the success page; the CLI's next poll
// gets the tokens.
//
//   LATCHKEY_BIN   the binary (default: ../../target/debug/latchkey)
//   Screenshots go to test-output/screenshots/ at the repository root.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import { launchBrowser, login, newPage, shots, startServer, stopServer } from "./lib.mjs";


const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

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

  const { context, p, errors } = await newPage(browser);
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
    await login(p, "alice@acme.test", server.password);
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
