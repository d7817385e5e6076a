//! `tally serve` as people run it: the real binary, a real signal, the same database reopened.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const KEY: &str = "tally_test_key_0123456789abcdef0123456789abcdef";

/// Starts `tally serve` on a free port over `db`, returning the child and its base URL.
fn serve(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "warn"])
        .env("TALLY_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("TALLY_API_KEY", KEY)
        .env_remove("TALLY_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tally serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("serve prints where it listens")
            .expect("stderr line");
        if let Some(rest) = line.strip_prefix("tally listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("tally serve did not stop within 10 s of SIGTERM");
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_every_acknowledged_event_survives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("data").join("tally.db");
    let (mut child, url) = serve(&db);
    let client = reqwest::Client::new();
    let events: Vec<Value> = (0..50)
        .map(|i| json!({"transaction_id": format!("t{i}"), "external_customer_id": "acme", "code": "calls", "timestamp": 1_767_225_600 + i}))
        .collect();
    let answer = client
        .post(format!("{url}/api/v1/events/batch"))
        .bearer_auth(KEY)
        .json(&json!({"events": events}))
        .send()
        .await
        .expect("batch sent");
    assert_eq!(answer.status(), 200);

    let status = terminate(&mut child);
    assert!(status.success(), "exit status {status:?}");
    // The WAL was checkpointed and truncated on the way out, and the ingest lock released.
    let wal = db.with_extension("db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).expect("wal").len() == 0);

    let (mut child, url) = serve(&db);
    let listed: Value = client
        .get(format!("{url}/api/v1/events?per_page=100"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("list sent")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["meta"]["total_count"], 50);
    assert!(terminate(&mut child).success());
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tally.db");
    let (mut first, _) = serve(&db);
    let second = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TALLY_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("TALLY_API_KEY", KEY)
        .output()
        .expect("second serve runs");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already recording events"), "{stderr}");
    // Key management works beside the running server.
    let keys = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["keys", "list"])
        .env("TALLY_DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .expect("keys list runs");
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    assert!(String::from_utf8_lossy(&keys.stdout).contains("TALLY_API_KEY"));
    assert!(!String::from_utf8_lossy(&keys.stdout).contains(KEY));
    assert!(terminate(&mut first).success());
}
