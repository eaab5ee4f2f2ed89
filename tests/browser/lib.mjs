// What the browser tests share: the demo server, Chromium, a page that collects errors, sign-in.
//
//   LATCHKEY_BIN   the binary (default: ../../target/debug/latchkey)
//   Screenshots go to test-output/screenshots/ at the repository root.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const bin = process.env.LATCHKEY_BIN ?? join(root, "target/debug/latchkey");
export const shots = join(root, "test-output/screenshots");
mkdirSync(shots, { recursive: true });

/** Starts `latchkey serve --demo` on a fresh data directory; resolves with its URLs, the demo
 * password and `appId(name)`, the id of a demo app it printed. */
export function startServer(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-browser-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LATCHKEY_")));
  env.LATCHKEY_DATA_DIR = dataDir;
  env.LATCHKEY_LOG__LEVEL = "warn";
  Object.assign(env, extraEnv);
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
        appId: (name) => grab(new RegExp(`app  ${name}\\s+(\\S+)`)),
      });
    });
  });
}

/** Stops a server of [`startServer`] and removes its data. */
export function stopServer(server) {
  server?.child.kill();
  rmSync(server?.dataDir ?? "/nonexistent", { recursive: true, force: true });
}

/** Debian's headless Chromium. Playwright gives every launch a fresh, temporary --user-data-dir. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page in a context of its own, and the errors it sees: Content Security Policy refusals (a
 * blocked form-action redirect among them) and script errors; failed resource loads (favicons,
 * the demo's unreachable logos) are not errors here. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const p = await context.newPage();
  const errors = [];
  p.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  p.on("pageerror", (e) => errors.push(String(e)));
  return { context, p, errors };
}

/** Fills and submits the built-in sign-in form. */
export async function login(p, email, password) {
  await p.getByLabel("Email").fill(email);
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Sign in" }).click();
}
