//! The HTTP client behind the client commands (`ingest`, `usage`): bearer authentication, retries with
//! exponential backoff and full jitter, and the server's own words when it refuses a request.
//!
//! Retrying is safe because every tally write the client commands make is idempotent: a re-sent event is
//! recognized by its transaction id and answered as a duplicate.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::config::{ClientConfig, Secret};

/// How long one request may take before it counts as failed (and is retried); longer than the
/// server's own 120-second request timeout so the server's answer arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Server messages longer than this are cut when shown.
const MAX_MESSAGE_CHARS: usize = 600;

/// When and how often a failed request is tried again: exponential backoff with full jitter (each wait
/// is uniform between zero and `min(cap, base · 2^attempt)`), so many clients retrying together spread
/// out instead of hammering the server in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// No wait is longer than this.
    pub cap: Duration,
    /// How many times a request is retried after its first try.
    pub retries: u32,
}

impl Backoff {
    /// The policy the client commands use unless told otherwise: 200 ms base, 30 s cap.
    pub fn standard(retries: u32) -> Self {
        Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
            retries,
        }
    }

    /// Returns the longest wait before retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Returns a random wait before retry number `attempt`, at least `floor` (a server's `Retry-After`)
    /// but never above the cap.
    pub fn delay(&self, attempt: u32, floor: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = ceiling.mul_f64(rand::random::<f64>());
        floor.map_or(jittered, |f| jittered.max(f)).min(self.cap)
    }
}

/// A retry about to happen, for the caller to tell the user.
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// What went wrong: a network error or the status and the server's message.
    pub cause: String,
    /// Which retry this is (1 for the first).
    pub attempt: u32,
    /// How many retries are allowed.
    pub retries: u32,
    /// How long the client waits first.
    pub wait: Duration,
}

/// A client of one tally server with one API key.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    key: Secret,
    backoff: Backoff,
}

impl ApiClient {
    /// Builds a client; `connections` is how many connections it keeps open for reuse.
    pub fn new(config: &ClientConfig, backoff: Backoff, connections: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(connections)
            .user_agent(concat!("tally-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot start the HTTP client")?;
        Ok(ApiClient {
            http,
            base: config.url.clone(),
            key: config.api_key.clone(),
            backoff,
        })
    }

    /// Returns the URL of an API path given as segments (each one percent-encoded), such as
    /// `["api", "v1", "meters", code, "query"]`.
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| anyhow::anyhow!("the server URL {} cannot take a path", self.base))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// Sends a request until it gets a 2xx answer, retrying network errors, 408, 429 and 5xx with
    /// backoff; any other status fails at once with the server's message. Returns the answer's body;
    /// `notify` hears of each retry.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        content_type: Option<&str>,
        body: Option<Bytes>,
        mut notify: impl FnMut(&RetryNotice),
    ) -> Result<Bytes> {
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.key.expose());
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let (cause, floor) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    match response.bytes().await {
                        Ok(body) if status.is_success() => return Ok(body),
                        Ok(body) if retryable(status) => {
                            (describe_refusal(status, &body), retry_after)
                        }
                        Ok(body) => bail!("{}{}", describe_refusal(status, &body), hint(status)),
                        Err(error) => (format!("reading the answer failed: {error}"), None),
                    }
                }
                Err(error) if error.is_builder() => {
                    return Err(error).context("the request could not be built");
                }
                Err(error) => (network_error(&error), None),
            };
            if attempt >= self.backoff.retries {
                bail!(
                    "{cause} (gave up after {} {})",
                    attempt + 1,
                    if attempt == 0 { "try" } else { "tries" }
                );
            }
            let wait = self.backoff.delay(attempt, floor);
            attempt += 1;
            notify(&RetryNotice {
                cause,
                attempt,
                retries: self.backoff.retries,
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }
}

/// Tells whether a status means "try again later": request timeout, rate limiting, server errors.
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Points at the usual cause of an authentication or permission refusal.
fn hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => " (check the API key given with --api-key or TALLY_API_KEY)",
        StatusCode::FORBIDDEN => " (the API key's scope does not allow this request)",
        _ => "",
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// Describes a network failure by its kind and cause chain (reqwest's own message is mostly the URL).
fn network_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "the request timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect to the server".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Returns `"<status>: <the server's message>"` for a refused request, reading problem+json `detail`,
/// Lago's `error`/`code`/`message`/`error_details`, or the raw text.
pub fn describe_refusal(status: StatusCode, body: &[u8]) -> String {
    let message = server_message(body);
    match message {
        Some(message) if Some(message.as_str()) != status.canonical_reason() => {
            format!("{status}: {message}")
        }
        _ => status.to_string(),
    }
}

fn server_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => {
            if let Some(detail) = object
                .get("detail")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
            {
                detail.to_owned()
            } else {
                let mut parts = Vec::new();
                if let Some(error) = object.get("error").and_then(Value::as_str) {
                    parts.push(error.to_owned());
                }
                if let Some(code) = object.get("code").and_then(Value::as_str) {
                    parts.push(format!("({code})"));
                }
                if let Some(message) = object.get("message").and_then(Value::as_str) {
                    parts.push(message.to_owned());
                }
                if let Some(details) = object.get("error_details") {
                    parts.push(details.to_string());
                }
                if parts.is_empty() {
                    Value::Object(object).to_string()
                } else {
                    parts.join(" ")
                }
            }
        }
        _ => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if text.is_empty() {
        return None;
    }
    Some(if text.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let backoff = Backoff::standard(8);
        assert_eq!(backoff.ceiling(0), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(400));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(3_200));
        assert_eq!(backoff.ceiling(8), Duration::from_secs(30));
        assert_eq!(backoff.ceiling(60), Duration::from_secs(30));
        for attempt in 0..12 {
            let wait = backoff.delay(attempt, None);
            assert!(wait <= backoff.ceiling(attempt), "{wait:?} at {attempt}");
        }
    }

    #[test]
    fn retry_after_is_a_floor_below_the_cap() {
        let backoff = Backoff::standard(8);
        assert!(backoff.delay(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert_eq!(
            backoff.delay(0, Some(Duration::from_secs(3_600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn paths_are_joined_under_the_base_and_encoded() {
        let config = ClientConfig {
            url: Url::parse("https://meter.example/tally/").expect("url"),
            api_key: Secret::new("k".into()),
        };
        let client = ApiClient::new(&config, Backoff::standard(0), 1).expect("client");
        let url = client
            .url(&["api", "v1", "meters", "a/b c", "query"])
            .expect("url");
        assert_eq!(
            url.as_str(),
            "https://meter.example/tally/api/v1/meters/a%2Fb%20c/query"
        );
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(retryable(StatusCode::REQUEST_TIMEOUT));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
        assert!(!retryable(StatusCode::PAYLOAD_TOO_LARGE));
        assert!(!retryable(StatusCode::UNPROCESSABLE_ENTITY));
    }

    #[test]
    fn refusals_carry_the_servers_words() {
        let problem = br#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"groupBy \"x\" is not a groupBy key of this meter"}"#;
        assert_eq!(
            describe_refusal(StatusCode::BAD_REQUEST, problem),
            "400 Bad Request: groupBy \"x\" is not a groupBy key of this meter"
        );
        let lago = br#"{"status":413,"error":"Payload Too Large","code":"payload_too_large","message":"a bulk request holds at most 100000 lines"}"#;
        assert_eq!(
            describe_refusal(StatusCode::PAYLOAD_TOO_LARGE, lago),
            "413 Payload Too Large: Payload Too Large (payload_too_large) a bulk request holds at most 100000 lines"
        );
        assert_eq!(
            describe_refusal(
                StatusCode::UNAUTHORIZED,
                br#"{"status":401,"error":"Unauthorized"}"#
            ),
            "401 Unauthorized"
        );
        assert_eq!(
            describe_refusal(StatusCode::BAD_GATEWAY, b""),
            "502 Bad Gateway"
        );
    }
}
