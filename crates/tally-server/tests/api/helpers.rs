//! Starts a real tally server on a temporary SQLite file and talks to it over HTTP.

use std::path::Path;
use std::sync::Arc;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_core::apikey::{Scope, visible_prefix};
use tally_core::id::OrganizationId;
use tally_server::{Application, ServerConfig};
use tally_store::Store;
use tally_store::sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// Secret of a key with the `admin` scope.
    pub admin_key: String,
    /// Secret of a key with the `ingest` scope.
    pub ingest_key: String,
    /// Secret of a key with the `read` scope.
    pub read_key: String,
    /// The store the server runs on (closed once the server has shut down).
    pub store: Arc<dyn Store>,
    /// The organization the keys belong to.
    pub org: OrganizationId,
    /// An HTTP client.
    pub client: reqwest::Client,
    _dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii content type").to_owned())
            .unwrap_or_default()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
}

/// A 70-character random secret (`tally_` + 64 hex digits).
fn random_secret() -> String {
    format!(
        "tally_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Starts a server on a fresh database in a new temporary folder.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let mut app = spawn_app_at(&path).await;
    app._dir = Some(dir);
    app
}

/// Starts a server on a fresh database whose billing clock is simulated from `start` (RFC 3339).
pub async fn spawn_simulated(start: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let start = tally_core::Timestamp::parse_rfc3339(start).expect("clock start");
    let mut app = spawn_with(&path, tally_server::ClockMode::Simulated(start)).await;
    app._dir = Some(dir);
    app
}

/// Starts a server on the database at `path` (created when missing) whose billing clock is
/// simulated from `start` (RFC 3339).
pub async fn spawn_simulated_at(path: &Path, start: &str) -> TestApp {
    let start = tally_core::Timestamp::parse_rfc3339(start).expect("clock start");
    spawn_with(path, tally_server::ClockMode::Simulated(start)).await
}

/// Starts a server on a fresh database with a simulated clock from `start` (RFC 3339), after
/// `configure` has changed its config.
pub async fn spawn_configured(start: &str, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let start = tally_core::Timestamp::parse_rfc3339(start).expect("clock start");
    let mut config = ServerConfig {
        clock: tally_server::ClockMode::Simulated(start),
        ..Default::default()
    };
    configure(&mut config);
    let mut app = spawn_config(&path, config).await;
    app._dir = Some(dir);
    app
}

/// Starts a server on the database at `path` (created when missing), with three new keys.
pub async fn spawn_app_at(path: &Path) -> TestApp {
    spawn_with(path, tally_server::ClockMode::System).await
}

async fn spawn_with(path: &Path, clock: tally_server::ClockMode) -> TestApp {
    let config = ServerConfig {
        clock,
        ..Default::default()
    };
    spawn_config(path, config).await
}

async fn spawn_config(path: &Path, config: ServerConfig) -> TestApp {
    let store = SqliteStore::open(&SqliteOptions::new(path)).expect("open the store");
    let org = store
        .default_organization()
        .await
        .expect("default organization");
    let (admin_key, ingest_key, read_key) = (random_secret(), random_secret(), random_secret());
    for (name, scope, secret) in [
        ("admin", Scope::Admin, &admin_key),
        ("ingest", Scope::Ingest, &ingest_key),
        ("read", Scope::Read, &read_key),
    ] {
        store
            .create_api_key(
                org.id,
                name,
                scope,
                &visible_prefix(secret),
                tally_server::auth::digest(secret),
            )
            .await
            .expect("create an API key");
    }
    let store: Arc<dyn Store> = Arc::new(store);
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..config
    };
    let app = Application::build(&config, store.clone())
        .await
        .expect("build the application");
    let address = format!("http://{}", app.local_addr().expect("bound address"));
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = signal.await;
    }));
    TestApp {
        address,
        admin_key,
        ingest_key,
        read_key,
        store,
        org: org.id,
        client: reqwest::Client::new(),
        _dir: None,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Moves the simulated clock and returns the ids of the invoices billing created.
    pub async fn advance(&self, now: &str) -> Vec<String> {
        let reply = self
            .post_json("/api/v1/clock", &json!({"now": now}), &self.admin_key)
            .await;
        reply.assert_status(200);
        reply.json()["invoices"]
            .as_array()
            .expect("invoice ids")
            .iter()
            .map(|id| id.as_str().expect("id").to_owned())
            .collect()
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// Sends a request with `key` as the bearer token.
    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    /// `POST` a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value, key: &str) -> Reply {
        self.call(Method::POST, path, key, Some(body)).await
    }

    /// `PUT` a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value, key: &str) -> Reply {
        self.call(Method::PUT, path, key, Some(body)).await
    }

    /// `GET` a path.
    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, key, None).await
    }

    /// `DELETE` a path.
    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, key, None).await
    }

    /// `POST` a raw body with the admin key.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<String>) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.admin_key)
            .header(CONTENT_TYPE, content_type)
            .body(body.into());
        self.send(request).await
    }

    /// `POST` with the admin key; the body is JSON text sent as is (keeps numbers exactly as written).
    pub async fn post_text(&self, path: &str, json_text: &str) -> Reply {
        self.post_raw(path, "application/json", json_text).await
    }

    /// `POST`s JSON with the admin key, expects 200 and returns the answer.
    pub async fn post_ok(&self, path: &str, body: Value) -> Value {
        let reply = self.post_json(path, &body, &self.admin_key).await;
        reply.assert_status(200);
        reply.json()
    }

    /// Reads an invoice (expects 200) and returns its `invoice` object.
    pub async fn invoice(&self, id: &str) -> Value {
        let reply = self
            .get(&format!("/api/v1/invoices/{id}"), &self.read_key)
            .await;
        reply.assert_status(200);
        reply.json()["invoice"].clone()
    }

    /// Creates a Lago billable metric and returns its JSON.
    pub async fn create_metric(&self, metric: Value) -> Value {
        let reply = self
            .post_json(
                "/api/v1/billable_metrics",
                &json!({ "billable_metric": metric }),
                &self.admin_key,
            )
            .await;
        reply.assert_status(200);
        reply.json()["billable_metric"].clone()
    }

    /// Creates a customer with this external id.
    pub async fn create_customer(&self, external_id: &str) -> Value {
        let reply = self
            .post_json(
                "/api/v1/customers",
                &json!({"customer": {"external_id": external_id}}),
                &self.admin_key,
            )
            .await;
        reply.assert_status(200);
        reply.json()["customer"].clone()
    }

    /// Sends one Lago event (expects 200) and returns the stored event.
    pub async fn send_event(&self, event: Value) -> Value {
        let reply = self
            .post_json(
                "/api/v1/events",
                &json!({ "event": event }),
                &self.admin_key,
            )
            .await;
        reply.assert_status(200);
        reply.json()["event"].clone()
    }

    /// Queries a meter (expects 200) and returns the answer.
    pub async fn query_meter(&self, meter: &str, query: &str) -> Value {
        let reply = self
            .get(
                &format!("/api/v1/meters/{meter}/query?{query}"),
                &self.admin_key,
            )
            .await;
        reply.assert_status(200);
        reply.json()
    }

    /// Stops the server, waits for it to finish its requests and close the store.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// Parses JSON text, keeping numbers exactly as written (serde_json's `arbitrary_precision`).
pub fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

/// A JSON number written exactly as `text`.
pub fn number(text: &str) -> Value {
    let value = parse(text);
    assert!(value.is_number(), "{text} is not a JSON number");
    value
}

/// Asserts that a JSON body equals the expected value, showing both when they differ.
#[track_caller]
pub fn assert_json(actual: &Value, expected: &Value) {
    assert_eq!(
        actual,
        expected,
        "\nactual:   {}\nexpected: {}",
        serde_json::to_string_pretty(actual).unwrap_or_default(),
        serde_json::to_string_pretty(expected).unwrap_or_default()
    );
}

/// The Lago 422 body for field errors.
pub fn validation_error(details: Value) -> Value {
    json!({
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    })
}
