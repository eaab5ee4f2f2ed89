//! Starting and stopping the real binary.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// A running `latchkey serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub issuer: String,
    pub public: String,
    pub admin: String,
}

/// A `latchkey` command with a clean environment (no LATCHKEY_* from the caller but those given).
pub fn latchkey(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_LOG__LEVEL", "warn");
    cmd
}

impl Server {
    /// Starts the server and waits until it prints its URLs.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Result<Self, String> {
        let mut cmd = latchkey(data_dir);
        cmd.args([
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let (mut issuer, mut public, mut admin) = (None, None, None);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let value = |prefix: &str| {
                        line.trim()
                            .strip_prefix(prefix)
                            .map(|v| v.trim().to_owned())
                    };
                    issuer = issuer.or_else(|| value("issuer:"));
                    public = public.or_else(|| value("public:"));
                    admin = admin.or_else(|| value("admin:"));
                    if line.trim().starts_with("data dir:") {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("exited with {status}: {}", all_of(&erx)));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if let (Some(issuer), Some(public), Some(admin)) = (issuer, public, admin) {
            return Ok(Self {
                child,
                issuer,
                public,
                admin,
            });
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "the server did not print its URLs: {}",
            all_of(&erx)
        ))
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Everything the exited server wrote to stderr: read until the pipe closes, since the thread
/// reading it may still be behind the one reading stdout.
fn all_of(stderr: &mpsc::Receiver<String>) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match stderr.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    lines.join("\n")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    (dir, path)
}
