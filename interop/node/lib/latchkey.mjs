// Starts and stops the real `latchkey` binary for a test run, on SQLite or on a fresh
// PostgreSQL schema.

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..', '..');
/** Where each run's server log goes (ignored by git). */
export const LOG_DIR = join(here, '..', 'logs');

/** A login and consent provider that is never visited: the tests read the challenges from the
 * redirects and accept them through the admin API, as a Hydra login/consent app would. */
export const LOGIN_URL = 'http://127.0.0.1:9/login';
export const CONSENT_URL = 'http://127.0.0.1:9/consent';

// Servers still running. If this process is told to stop (Ctrl-C, a CI timeout), it takes them
// down with it instead of leaving them behind.
const running = new Set();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal]);
  });
}

/** The binary under test: `LATCHKEY_BIN`, else the debug build in `CARGO_TARGET_DIR`. */
export function binaryPath() {
  if (process.env.LATCHKEY_BIN) return process.env.LATCHKEY_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(REPO_ROOT, 'target');
  return join(target, 'debug', 'latchkey');
}

/** The engines to run on: SQLite always, PostgreSQL when `LATCHKEY_TEST_POSTGRES_URL` is set. */
export function engines() {
  const out = ['sqlite'];
  if (process.env.LATCHKEY_TEST_POSTGRES_URL) out.push('postgres');
  return out;
}

/** The environment of the server: ours, without any inherited `LATCHKEY_*` setting. */
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LATCHKEY_')) env[k] = v;
  }
  return { ...env, ...extra };
}

async function psql(url, sql) {
  try {
    await execFileAsync('psql', [url, '-qAt', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      timeout: 30_000,
    });
  } catch (e) {
    const detail = e.code === 'ENOENT' ? 'psql is not installed' : (e.stderr || e.message);
    throw new Error(`psql failed (${sql}): ${detail}`);
  }
}

/** A schema of its own in the database of `LATCHKEY_TEST_POSTGRES_URL`. Named like the Rust
 * tests' schemas (`lk_test_<pid>_…`), so a schema leaked by a killed run is dropped by their
 * stale-schema sweep. */
async function createPostgresSchema() {
  const base = process.env.LATCHKEY_TEST_POSTGRES_URL;
  const schema = `lk_test_${process.pid}_node_${randomBytes(4).toString('hex')}`;
  await psql(base, `CREATE SCHEMA ${schema}`);
  const sep = base.includes('?') ? '&' : '?';
  return {
    url: `${base}${sep}options=-c%20search_path%3D${schema}`,
    drop: () => psql(base, `DROP SCHEMA IF EXISTS ${schema} CASCADE`),
  };
}

async function run(bin, args, env, log) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.on('close', () => running.delete(child));
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`latchkey ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

/**
 * Starts Latchkey on `engine` ('sqlite' or 'postgres'): a fresh data directory, a fresh
 * database, `migrate up` first on PostgreSQL, listeners on free loopback ports.
 * Resolves to `{ issuer, publicUrl, adminUrl, logFile, stop() }`; `stop()` sends SIGTERM, waits for
 * the process to exit (SIGKILL after 10 s) and drops the database.
 *
 * `options.config` is the text of a configuration file to start with; `options.env` adds to the
 * server's environment; `options.name` names the log file.
 */
export async function startLatchkey(engine, options = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it with \`cargo build -p latchkey\` (or run interop/node/run.sh)`);
  }
  await mkdir(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `latchkey-${options.name ?? 'interop'}-${engine}.log`);
  const log = createWriteStream(logFile);
  const dataDir = await mkdtemp(join(tmpdir(), `latchkey-interop-${engine}-`));
  const env = serverEnv({
    LATCHKEY_URLS__LOGIN: LOGIN_URL,
    LATCHKEY_URLS__CONSENT: CONSENT_URL,
    // A short refresh grace period, so that the tests can see both sides of it.
    LATCHKEY_OAUTH2__REFRESH_TOKEN__GRACE_PERIOD: '1s',
    // The device grant's polling interval: short, so that a test's polls take seconds.
    LATCHKEY_OAUTH2__DEVICE_AUTHORIZATION__TOKEN_POLLING_INTERVAL: '1s',
    ...(options.env ?? {}),
  });

  let db = null;
  const cleanups = [];
  const cleanup = async () => {
    for (const f of cleanups.reverse()) {
      try {
        await f();
      } catch (e) {
        console.error(`interop: cleanup failed: ${e.message}`);
      }
    }
    cleanups.length = 0;
  };
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  cleanups.push(() => new Promise((r) => log.end(r)));

  const args = ['serve', '--public-addr', '127.0.0.1:0', '--admin-addr', '127.0.0.1:0', '--data-dir', dataDir];
  if (options.config) {
    const configFile = join(dataDir, 'latchkey.toml');
    await writeFile(configFile, options.config);
    args.push('--config', configFile);
  }
  try {
    if (engine === 'postgres') {
      db = await createPostgresSchema();
      cleanups.push(db.drop);
      await run(bin, ['migrate', 'up', '--database-url', db.url], env, log);
      args.push('--database-url', db.url);
    } else if (engine !== 'sqlite') {
      throw new Error(`unknown engine ${engine}`);
    }
  } catch (e) {
    await cleanup();
    throw new Error(`${e.message} (log: ${logFile})`);
  }

  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise((r) => child.on('close', (code, signal) => r(code ?? signal)));
  child.stderr.pipe(log, { end: false });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    running.delete(child);
    await cleanup();
  };

  try {
    const urls = await new Promise((resolveUrls, reject) => {
      const found = {};
      let buffered = '';
      const timer = setTimeout(() => reject(new Error('latchkey did not print its URLs within 60 s')), 60_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      exited.then((status) => {
        clearTimeout(timer);
        reject(new Error(`latchkey exited with ${status} before it was ready`));
      });
      child.stdout.on('data', (chunk) => {
        log.write(chunk);
        if (found.done) return;
        buffered += chunk.toString('utf8');
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const m = /^\s+(issuer|public|admin):\s+(\S+)\s*$/.exec(line);
          if (m) found[m[1]] = m[2];
        }
        if (found.issuer && found.public && found.admin) {
          found.done = true;
          clearTimeout(timer);
          resolveUrls(found);
        }
      });
    });
    return { issuer: urls.issuer, publicUrl: urls.public, adminUrl: urls.admin, logFile, stop };
  } catch (e) {
    await stop();
    throw new Error(`${e.message} (log: ${logFile})`);
  }
}
