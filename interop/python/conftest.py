"""Starts the real `latchkey` binary for the tests: on SQLite always, and on a fresh PostgreSQL
schema when LATCHKEY_TEST_POSTGRES_URL is set. Stopped with SIGTERM at the end, pass or fail."""

import os
import pathlib
import queue
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOG_DIR = HERE / "logs"

# A login and consent provider that is never visited: the tests read the challenges from the
# redirects and accept them through the admin API, as a Hydra login/consent app would.
LOGIN_URL = "http://127.0.0.1:9/login"
CONSENT_URL = "http://127.0.0.1:9/consent"


def binary_path():
    if os.environ.get("LATCHKEY_BIN"):
        return os.environ["LATCHKEY_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return os.path.join(target, "debug", "latchkey")


def engines():
    out = ["sqlite"]
    if os.environ.get("LATCHKEY_TEST_POSTGRES_URL"):
        out.append("postgres")
    return out


def server_env():
    """Our environment without any inherited LATCHKEY_* setting, plus the login/consent URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCHKEY_")}
    env["LATCHKEY_URLS__LOGIN"] = LOGIN_URL
    env["LATCHKEY_URLS__CONSENT"] = CONSENT_URL
    # A short refresh grace period, so that the tests can see both sides of it.
    env["LATCHKEY_OAUTH2__REFRESH_TOKEN__GRACE_PERIOD"] = "1s"
    return env


def psql(url, sql):
    try:
        subprocess.run(
            ["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True, text=True, timeout=30,
        )
    except FileNotFoundError:
        raise RuntimeError("psql is not installed") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"psql failed ({sql}): {e.stderr}") from None


def die_with_parent():
    """In the child, before exec: SIGTERM when the test process dies, however it dies (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Latchkey:
    def __init__(self, engine):
        self.engine = engine
        self.process = None
        self.cleanups = []

    def start(self):
        binary = binary_path()
        if not os.path.exists(binary):
            raise RuntimeError(f"{binary} does not exist: run interop/python/run.sh")
        LOG_DIR.mkdir(exist_ok=True)
        self.log_path = LOG_DIR / f"latchkey-{self.engine}.log"
        self.log = open(self.log_path, "wb")
        self.cleanups.append(self.log.close)
        data_dir = tempfile.mkdtemp(prefix=f"latchkey-interop-py-{self.engine}-")
        self.cleanups.append(lambda: shutil.rmtree(data_dir, ignore_errors=True))
        args = [binary, "serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
                "--data-dir", data_dir]
        env = server_env()
        if self.engine == "postgres":
            base = os.environ["LATCHKEY_TEST_POSTGRES_URL"]
            # Named like the Rust tests' schemas, so that their stale-schema sweep drops a schema
            # leaked by a killed run.
            schema = f"lk_test_{os.getpid()}_py_{secrets.token_hex(4)}"
            psql(base, f"CREATE SCHEMA {schema}")
            self.cleanups.append(lambda: psql(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            sep = "&" if "?" in base else "?"
            url = f"{base}{sep}options=-c%20search_path%3D{schema}"
            subprocess.run([binary, "migrate", "up", "--database-url", url], env=env,
                           stdout=self.log, stderr=self.log, check=True, timeout=120)
            args += ["--database-url", url]

        self.process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self.log,
                                        preexec_fn=die_with_parent)
        lines = queue.Queue()

        def pump():
            for line in self.process.stdout:
                self.log.write(line)
                self.log.flush()
                lines.put(line.decode("utf-8", "replace"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        found = {}
        while len(found) < 3:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                raise RuntimeError(f"latchkey did not print its URLs in 60 s (log: {self.log_path})")
            if line is None:
                raise RuntimeError(f"latchkey exited before it was ready (log: {self.log_path})")
            m = re.match(r"^\s+(issuer|public|admin):\s+(\S+)\s*$", line)
            if m:
                found[m.group(1)] = m.group(2)
        self.issuer, self.public_url, self.admin_url = found["issuer"], found["public"], found["admin"]
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as e:  # noqa: BLE001 - report and go on cleaning
                print(f"interop: cleanup failed: {e}")
        self.cleanups.clear()


@pytest.fixture(scope="module", params=engines())
def latchkey(request):
    server = Latchkey(request.param)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()
