//! The `tally` binary's client commands against a real server: each test starts tally's server in
//! this process on a temporary SQLite database (port 0, an admin key created through the store), runs
//! the built binary, and checks the result through the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tally_core::apikey::{Scope, secret_from_bytes, visible_prefix};
use tally_server::auth::digest;
use tally_server::{Application, ServerConfig};
use tally_store::Store;
use tally_store::sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A running server and what a test needs to talk to it.
struct TestApp {
    addr: SocketAddr,
    key: String,
    dir: TempDir,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&SqliteOptions::new(dir.path().join("tally.db"))).expect("store"),
    );
    let org = store.default_organization().await.expect("organization");
    let key = secret_from_bytes(&rand::random::<[u8; 32]>());
    store
        .create_api_key(
            org.id,
            "test",
            Scope::Admin,
            &visible_prefix(&key),
            digest(&key),
        )
        .await
        .expect("api key");
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    };
    let app = Application::build(&config, store).await.expect("server");
    let addr = app.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        key,
        dir,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

impl TestApp {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write input");
        path
    }

    /// Runs `tally` with the server's URL and key in the environment, in the temp folder (so no
    /// `tally.toml` is picked up), feeding `stdin` when given.
    async fn tally(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("TALLY_URL", self.url())
            .env("TALLY_API_KEY", &self.key)
            .env_remove("TALLY_CONFIG")
            .env_remove("TALLY_DATABASE_URL")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run tally");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        child.wait_with_output().await.expect("tally output")
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.url()))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url()))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create_meter(&self, meter: Value) {
        let (status, body) = self.post("/api/v1/meters", meter).await;
        assert_eq!(status, 201, "meter not created: {body}");
    }

    /// The meter's values for one customer over January 1st 2026, one row per group.
    async fn usage(&self, meter: &str, customer: &str, group_by: Option<&str>) -> Vec<Value> {
        let group = group_by.map_or(String::new(), |g| format!("&groupBy={g}"));
        let (status, body) = self
            .get(&format!(
                "/api/v1/meters/{meter}/query?subject={customer}&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z{group}"
            ))
            .await;
        assert_eq!(status, 200, "query failed: {body}");
        body["data"].as_array().expect("data").clone()
    }

    async fn events_of(&self, customer: &str) -> u64 {
        let (status, body) = self
            .get(&format!("/api/v1/events?external_customer_id={customer}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["meta"]["total_count"].as_u64().expect("total_count")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SUM_METER: &str = "tokens";

fn sum_meter() -> Value {
    json!({"slug": SUM_METER, "aggregation": "SUM", "eventType": "tokens",
           "valueProperty": "$.tokens", "groupBy": {"model": "$.model"}})
}

/// Line 2 is blank, line 4 lacks its code and line 6 is not JSON; with two events per request the
/// refusals land in different requests, so their line numbers must be mapped back per request.
const NDJSON: &str = r#"{"transaction_id":"t1","external_customer_id":"acme","code":"tokens","timestamp":1767225600,"properties":{"tokens":100}}

{"event":{"transaction_id":"t2","external_customer_id":"acme","code":"tokens","timestamp":1767229200,"properties":{"tokens":"20.5"}}}
{"transaction_id":"t3","external_customer_id":"acme","timestamp":1767232800,"properties":{"tokens":7}}
{"transaction_id":"t4","external_customer_id":"acme","code":"tokens","timestamp":1767236400,"properties":{"tokens":3}}
{not json
{"transaction_id":"t5","external_customer_id":"globex","code":"tokens","timestamp":1767240000,"properties":{"tokens":1000}}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn ingest_reports_bad_lines_stores_the_rest_and_is_safe_to_rerun() {
    let app = spawn_app().await;
    app.create_meter(sum_meter()).await;
    let path = app.write("events.ndjson", NDJSON);
    let file = path.to_str().expect("utf-8 path");

    let first = app.tally(&["ingest", file, "--chunk", "2"], None).await;
    let stdout = text(&first.stdout);
    assert!(!first.status.success(), "a rejected line must fail the run");
    assert!(
        stdout.contains(&format!("{file}:4: ")) && stdout.contains("code"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{file}:6: not valid JSON")),
        "{stdout}"
    );
    assert!(
        stdout.contains("accepted 4, duplicates 0, rejected 2"),
        "{stdout}"
    );
    assert!(text(&first.stderr).contains("2 line(s)"));
    assert!(!stdout.contains(&app.key) && !text(&first.stderr).contains(&app.key));

    // 100 + 20.5 + 3 for acme; the refused t3 is not stored.
    let acme = app.usage(SUM_METER, "acme", None).await;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0]["value"].to_string(), "123.5");
    assert_eq!(
        app.usage(SUM_METER, "globex", None).await[0]["value"].to_string(),
        "1000"
    );
    assert_eq!(app.events_of("acme").await, 3);
    assert_eq!(app.get("/api/v1/events/t3").await.0, 404);

    let again = app.tally(&["ingest", file, "--chunk", "2"], None).await;
    let stdout = text(&again.stdout);
    assert!(!again.status.success());
    assert!(
        stdout.contains("accepted 0, duplicates 4, rejected 2"),
        "{stdout}"
    );
    assert_eq!(
        app.usage(SUM_METER, "acme", None).await[0]["value"].to_string(),
        "123.5"
    );
    assert_eq!(app.events_of("acme").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_from_stdin_twice_counts_every_event_once() {
    let app = spawn_app().await;
    app.create_meter(sum_meter()).await;
    let input = r#"{"transaction_id":"s1","external_customer_id":"acme","code":"tokens","timestamp":1767225600,"properties":{"tokens":1}}
{"transaction_id":"s2","external_customer_id":"acme","code":"tokens","timestamp":1767225601,"properties":{"tokens":2}}
{"transaction_id":"s3","external_customer_id":"acme","code":"tokens","timestamp":1767225602,"properties":{"tokens":4}}"#;

    let first = app.tally(&["ingest", "-"], Some(input)).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("accepted 3, duplicates 0, rejected 0"));
    let second = app.tally(&["ingest", "-"], Some(input)).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("accepted 0, duplicates 3, rejected 0"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(
        app.usage(SUM_METER, "acme", None).await[0]["value"].to_string(),
        "7"
    );
    assert_eq!(app.events_of("acme").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_csv_turns_extra_columns_into_properties() {
    let app = spawn_app().await;
    app.create_meter(sum_meter()).await;
    // Line 1 is the header; line 6 holds broken properties JSON and is refused before sending.
    let csv = "transaction_id,external_customer_id,code,timestamp,tokens,model,region,properties\n\
               c1,acme,tokens,1767225600,120,gpt-4,,\"{\"\"tier\"\":\"\"pro\"\"}\"\n\
               c2,acme,tokens,2026-01-01T02:00:00Z,80,gpt-4,eu,\n\
               c3,acme,tokens,1767236400,5.5,claude,,\n\
               c4,globex,tokens,1767236400,9,claude,,\n\
               c5,acme,tokens,1767240000,1,gpt-4,,{oops\n";
    let path = app.write("usage.csv", csv);
    let file = path.to_str().expect("utf-8 path");

    let output = app.tally(&["ingest", file], None).await;
    let stdout = text(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains(&format!("{file}:6: properties is not valid JSON")),
        "{stdout}"
    );
    assert!(
        stdout.contains("accepted 4, duplicates 0, rejected 1"),
        "{stdout}"
    );

    let (_, c1) = app.get("/api/v1/events/c1").await;
    assert_eq!(
        c1["event"]["properties"],
        json!({"tier": "pro", "tokens": "120", "model": "gpt-4"})
    );
    let (_, c2) = app.get("/api/v1/events/c2").await;
    assert_eq!(
        c2["event"]["properties"],
        json!({"tokens": "80", "model": "gpt-4", "region": "eu"})
    );
    assert_eq!(c2["event"]["timestamp"], json!("2026-01-01T02:00:00.000Z"));
    assert_eq!(app.get("/api/v1/events/c5").await.0, 404);

    // acme: gpt-4 = 120 + 80 = 200, claude = 5.5 (c4 belongs to globex, c5 was refused).
    let mut rows: Vec<(String, String)> = app
        .usage(SUM_METER, "acme", Some("model"))
        .await
        .iter()
        .map(|r| {
            (
                r["groupBy"]["model"].as_str().expect("model").to_owned(),
                r["value"].to_string(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("claude".to_owned(), "5.5".to_owned()),
            ("gpt-4".to_owned(), "200".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_prints_the_meter_query() {
    let app = spawn_app().await;
    app.create_meter(sum_meter()).await;
    let events: Vec<Value> = [
        ("u1", 1_767_225_600, 10, "gpt-4"),
        ("u2", 1_767_226_000, 5, "claude"),
        ("u3", 1_767_229_300, 7, "gpt-4"),
    ]
    .iter()
    .map(|(id, at, tokens, model)| {
        json!({"transaction_id": id, "external_customer_id": "acme", "code": "tokens",
               "timestamp": at, "properties": {"tokens": tokens, "model": model}})
    })
    .collect();
    let (status, body) = app
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, 200, "{body}");

    let range = [
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T03:00:00Z",
    ];
    let mut args = vec![
        "usage",
        "--customer",
        "acme",
        "--metric",
        SUM_METER,
        "--window",
        "HOUR",
        "--group-by",
        "model",
    ];
    args.extend(range);
    let mut json_args = args.clone();
    json_args.push("--json");
    let output = app.tally(&json_args, None).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("usage --json prints JSON");
    let (status, direct) = app
        .get("/api/v1/meters/tokens/query?subject=acme&from=2026-01-01T00:00:00Z&to=2026-01-01T03:00:00Z&windowSize=HOUR&groupBy=model")
        .await;
    assert_eq!(status, 200);
    assert_eq!(printed, direct);
    assert_eq!(printed["data"].as_array().map(Vec::len), Some(3));

    let table = app.tally(&args, None).await;
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(
        rows[0],
        ["WINDOW", "START", "WINDOW", "END", "MODEL", "VALUE"]
    );
    assert!(
        rows.contains(&vec![
            "2026-01-01T01:00:00Z",
            "2026-01-01T02:00:00Z",
            "gpt-4",
            "7"
        ]),
        "{table}"
    );

    let missing = app
        .tally(
            &["usage", "--customer", "acme", "--metric", "nope", "--json"],
            None,
        )
        .await;
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("404 Not Found: meter not found"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn case_converts_each_argument() {
    let app = spawn_app().await;
    let output = app
        .tally(&["case", "snake_case", "inputTokens", "Input-Tokens"], None)
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "input_tokens\ninput_tokens\n");
}

/// A stand-in server answering request N with the Nth canned (status, body) (the last one repeats),
/// one connection per request; returns its address and the number of requests it received.
async fn canned_server(answers: Vec<(u16, &'static str)>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 65_536];
            let body_start = loop {
                let n = socket.read(&mut buffer).await.expect("read");
                assert!(n > 0, "connection closed mid-request");
                request.extend_from_slice(&buffer[..n]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
            };
            let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("length"));
            while request.len() < body_start + length {
                let n = socket.read(&mut buffer).await.expect("read body");
                request.extend_from_slice(&buffer[..n]);
            }
            let index = seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answers[index.min(answers.len() - 1)];
            let response = format!(
                "HTTP/1.1 {status} Canned\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 0\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.expect("write");
            let _ = socket.shutdown().await;
        }
    });
    (addr, count)
}

const TWO_EVENTS: &str = r#"{"transaction_id":"r1","external_customer_id":"acme","code":"tokens","properties":{"tokens":1}}
{"transaction_id":"r2","external_customer_id":"acme","code":"tokens","properties":{"tokens":2}}
"#;

async fn ingest_against(addr: SocketAddr, dir: &TempDir, input: &str, extra: &[&str]) -> Output {
    let path = dir.path().join("events.ndjson");
    std::fs::write(&path, input).expect("write input");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["ingest", path.to_str().expect("utf-8 path")])
        .args(extra)
        .current_dir(dir.path())
        .env("TALLY_URL", format!("http://{addr}"))
        .env("TALLY_API_KEY", "canned-test-key-0123456789")
        .env_remove("TALLY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run tally")
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_retries_unavailable_and_rate_limited_answers() {
    let (addr, requests) = canned_server(vec![
        (503, r#"{"status":503,"error":"Service Unavailable"}"#),
        (429, r#"{"status":429,"error":"Too Many Requests"}"#),
        (
            200,
            r#"{"accepted":2,"duplicates":0,"rejected":0,"rejected_lines":[]}"#,
        ),
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = ingest_against(addr, &dir, TWO_EVENTS, &[]).await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert!(
        stderr.contains("503 Service Unavailable; retry 1 of 8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("429 Too Many Requests; retry 2 of 8"),
        "{stderr}"
    );
    assert!(text(&output.stdout).contains("accepted 2, duplicates 0, rejected 0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_stops_at_once_on_a_refusal_with_the_servers_message() {
    let (addr, requests) = canned_server(vec![(
        413,
        r#"{"status":413,"error":"Payload Too Large","code":"payload_too_large","message":"a bulk request holds at most 100000 lines"}"#,
    )])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = ingest_against(addr, &dir, TWO_EVENTS, &[]).await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert!(
        stderr.contains("413 Payload Too Large") && stderr.contains("at most 100000 lines"),
        "{stderr}"
    );
    assert!(!stderr.contains("canned-test-key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_stopping_mid_file_reports_progress_and_exits() {
    let (addr, requests) = canned_server(vec![
        (
            200,
            r#"{"accepted":1,"duplicates":0,"rejected":0,"rejected_lines":[]}"#,
        ),
        (401, r#"{"status":401,"error":"Unauthorized"}"#),
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let input: String = (0..500)
        .map(|i| format!("{{\"transaction_id\":\"m{i}\",\"code\":\"tokens\"}}\n"))
        .collect();
    let run = ingest_against(addr, &dir, &input, &["--chunk", "1", "--concurrency", "1"]);
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("tally must exit when a request is refused, not wait for the reader");
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    assert!(stderr.contains("stopped after 1 line(s)"), "{stderr}");
    assert!(stderr.contains("from line 2 of"), "{stderr}");
    assert!(
        stderr.contains("401 Unauthorized (check the API key"),
        "{stderr}"
    );
}
