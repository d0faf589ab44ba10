//! An independent DKIM verifier: Python's dkimpy (with PyNaCl for
//! Ed25519), installed once into a virtualenv under the target directory.
//!
//! Setting it up needs `python3` with `venv` and access to PyPI. When that
//! fails the test fails, saying why: a verifier that is silently skipped
//! proves nothing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Reads messages (base64) and DNS answers from stdin; prints, for each
/// message, whether its first DKIM signature verifies and dkimpy's reason.
const VERIFY: &str = r#"
import base64, json, sys
import dkim
req = json.load(sys.stdin)
dns = {k.lower().rstrip("."): v for k, v in req["dns"].items()}
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    value = dns.get(name.lower().rstrip("."))
    return value.encode() if value is not None else None
out = []
for m in req["messages"]:
    raw = base64.b64decode(m)
    d = dkim.DKIM(raw)
    try:
        ok = bool(d.verify(dnsfunc=dnsfunc))
        reason = "" if ok else "signature did not verify"
    except Exception as e:
        ok, reason = False, "%s: %s" % (type(e).__name__, e)
    out.append({"ok": ok, "reason": reason})
json.dump(out, sys.stdout)
"#;

/// The virtualenv's Python, set up on first use by whichever test (or test
/// process) gets the lock first.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = target_dir().join("dkim-verifier");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = std::fs::File::create(dir.join("lock")).unwrap();
        // Held until set up, across test processes too.
        lock.lock().unwrap();
        let venv = dir.join("venv");
        let python = venv.join("bin").join("python");
        let ready = dir.join("ready");
        if !ready.exists() {
            let _ = std::fs::remove_dir_all(&venv);
            run(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "create a Python virtualenv for the DKIM verifier (needs python3 with venv; Debian: apt-get install python3-venv)",
            );
            run(
                Command::new(&python).args([
                    "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "dkimpy", "pynacl",
                ]),
                "install dkimpy and pynacl from PyPI into the verifier's virtualenv",
            );
            run(
                Command::new(&python).args(["-c", "import dkim, nacl"]),
                "import dkimpy and pynacl",
            );
            std::fs::write(&ready, b"").unwrap();
        }
        lock.unlock().unwrap();
        python
    })
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: {e}"));
    assert!(
        output.status.success(),
        "cannot {what}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `<target>/debug/deps/api-…` is this test binary.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// Whether each message's DKIM signature verifies, and dkimpy's reason when
/// not, given the TXT records (name → value) it may look up.
pub async fn verify(messages: &[Vec<u8>], dns: &HashMap<String, String>) -> Vec<(bool, String)> {
    let request = json!({
        "dns": dns,
        "messages": messages.iter().map(|m| STANDARD.encode(m)).collect::<Vec<_>>(),
    });
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python())
            .args(["-c", VERIFY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the verifier starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the verifier failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        results
            .into_iter()
            .map(|r| {
                (
                    r["ok"].as_bool().unwrap(),
                    r["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    })
    .await
    .unwrap()
}
