//! Settings: one place where every flag, `TALLY_*` environment variable and `tally.toml` key is
//! defined. Precedence is flag > environment > file > default; clap resolves the first two, the file
//! fills what they leave unset.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use tally_store::sqlite::Durability;

/// The default database: an SQLite file under `./tally-data`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tally-data/tally.db";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default log filter.
pub const DEFAULT_LOG: &str = "info";
/// The default server the client commands (`ingest`, `usage`) talk to.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A secret that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// Returns the secret, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Reads a secret from a flag or an environment variable; empty values count as absent.
pub fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.trim().is_empty() {
        return Err("the API key is empty".into());
    }
    Ok(Secret::new(text.trim().to_owned()))
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Settings shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH (default sqlite://./tally-data/tally.db) or postgres://… (not built yet).
    #[arg(long, env = "TALLY_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Configuration file (TOML). Default: ./tally.toml when it exists.
    #[arg(long, env = "TALLY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// `tally serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TALLY_LISTEN")]
    pub listen: Option<String>,

    /// Admin API key to ensure exists (deployments and tests). The secret is never logged.
    #[arg(long, env = "TALLY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Log filter, e.g. info or tally=debug,info [default: info].
    #[arg(long, env = "TALLY_LOG")]
    pub log: Option<String>,

    /// Log format: json, pretty or auto (pretty on a terminal) [default: auto].
    #[arg(long, env = "TALLY_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// Commit durability: full (fsync every commit) or normal (fsync at checkpoints) [default: full].
    #[arg(long, env = "TALLY_DURABILITY")]
    pub durability: Option<String>,

    /// Billing clock: system, or simulated (time moves only by POST /api/v1/clock; for tests and demos)
    /// [default: system].
    #[arg(long, env = "TALLY_CLOCK")]
    pub clock: Option<String>,

    /// Start of the simulated clock, RFC 3339 [default: now].
    #[arg(long, env = "TALLY_CLOCK_START")]
    pub clock_start: Option<String>,
}

/// How the client commands (`ingest`, `usage`) reach a running server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the tally server [default: http://127.0.0.1:8080].
    #[arg(long, env = "TALLY_URL")]
    pub url: Option<String>,

    /// API key sent as a bearer token (required). The secret is never printed.
    #[arg(long, env = "TALLY_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub api_key: Option<Secret>,
}

/// The optional `tally.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<String>,
    /// Database URL.
    pub database_url: Option<String>,
    /// Admin API key the server ensures; the client commands also send it when no key is given.
    pub api_key: Option<String>,
    /// Base URL the client commands talk to.
    pub url: Option<String>,
    /// Log filter.
    pub log: Option<String>,
    /// Log format.
    pub log_format: Option<String>,
    /// Durability.
    pub durability: Option<String>,
    /// Billing clock.
    pub clock: Option<String>,
    /// Start of the simulated clock.
    pub clock_start: Option<String>,
}

impl FileConfig {
    /// Reads the file named by `--config`, else `./tally.toml` if present, else nothing.
    pub fn load(path: Option<&PathBuf>) -> Result<FileConfig> {
        let (path, required) = match path {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from("tally.toml"), false),
        };
        if !required && !path.exists() {
            return Ok(FileConfig::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid tally configuration", path.display()))
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
    /// Pretty on a terminal, JSON otherwise.
    Auto,
}

/// Settings of `tally serve`, merged and validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Admin key to ensure.
    pub api_key: Option<Secret>,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Commit durability.
    pub durability: Durability,
    /// Billing clock.
    pub clock: tally_server::ClockMode,
}

/// Settings of the client commands, merged and validated.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's base URL (scheme, host, port and an optional path prefix).
    pub url: reqwest::Url,
    /// The bearer token.
    pub api_key: Secret,
}

impl ClientConfig {
    /// Merges flags and environment (already in `args`), the file, and defaults; an API key is required.
    pub fn resolve(args: &ClientArgs, db: &DatabaseArgs) -> Result<ClientConfig> {
        let file = FileConfig::load(db.config.as_ref())?;
        let text = args
            .url
            .clone()
            .or(file.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let mut url = reqwest::Url::parse(&text)
            .with_context(|| format!("{text:?} is not a URL such as http://127.0.0.1:8080"))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            anyhow::bail!("the server URL must start with http:// or https://, not {text:?}");
        }
        // A base path (`https://host/tally`) must end with a slash, or joining drops its last segment.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let api_key = match args.api_key.clone() {
            Some(key) => key,
            None => file
                .api_key
                .filter(|k| !k.trim().is_empty())
                .map(Secret::new)
                .context("an API key is required: pass --api-key or set TALLY_API_KEY")?,
        };
        Ok(ClientConfig { url, api_key })
    }
}

/// Resolves the database URL: flag/env, then file, then default.
pub fn database_url(db: &DatabaseArgs, file: &FileConfig) -> String {
    db.database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

/// Parses the billing clock settings.
pub fn resolve_clock(mode: Option<&str>, start: Option<&str>) -> Result<tally_server::ClockMode> {
    match mode.unwrap_or("system") {
        "system" => {
            if start.is_some() {
                anyhow::bail!("--clock-start needs --clock simulated");
            }
            Ok(tally_server::ClockMode::System)
        }
        "simulated" => {
            let start = match start {
                Some(text) => tally_core::Timestamp::parse_rfc3339(text)
                    .with_context(|| format!("clock start {text:?} is not an RFC 3339 time"))?,
                None => tally_core::Timestamp::from_datetime(chrono::Utc::now()),
            };
            Ok(tally_server::ClockMode::Simulated(start))
        }
        other => anyhow::bail!("clock must be system or simulated, not {other:?}"),
    }
}

/// Parses a durability name.
pub fn parse_durability(text: &str) -> Result<Durability> {
    match text {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => anyhow::bail!("durability must be full or normal, not {other:?}"),
    }
}

impl ServeConfig {
    /// Merges flags and environment (already in `args`), the file, and defaults.
    pub fn resolve(args: &ServeArgs, db: &DatabaseArgs) -> Result<ServeConfig> {
        let file = FileConfig::load(db.config.as_ref())?;
        let listen = args
            .listen
            .clone()
            .or(file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen.parse().with_context(|| {
            format!("listen address {listen:?} is not HOST:PORT (e.g. 127.0.0.1:8080)")
        })?;
        let log_format = match args
            .log_format
            .clone()
            .or(file.log_format.clone())
            .as_deref()
        {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => anyhow::bail!("log format must be json, pretty or auto, not {other:?}"),
        };
        let durability = parse_durability(
            args.durability
                .as_deref()
                .or(file.durability.as_deref())
                .unwrap_or("full"),
        )?;
        let api_key = args
            .api_key
            .clone()
            .or(file.api_key.clone())
            .filter(|k| !k.is_empty());
        if let Some(key) = &api_key
            && key.len() < 16
        {
            anyhow::bail!("the API key must be at least 16 characters long");
        }
        Ok(ServeConfig {
            listen,
            database_url: database_url(db, &file),
            api_key: api_key.map(Secret::new),
            log: args
                .log
                .clone()
                .or(file.log.clone())
                .unwrap_or_else(|| DEFAULT_LOG.into()),
            log_format,
            durability,
            clock: resolve_clock(
                args.clock.as_deref().or(file.clock.as_deref()),
                args.clock_start.as_deref().or(file.clock_start.as_deref()),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tally.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\ndatabase_url = \"sqlite://file.db\"\n",
        )
        .expect("write");
        let db = DatabaseArgs {
            database_url: None,
            config: Some(path),
        };
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".into()),
            api_key: None,
            log: None,
            log_format: None,
            durability: None,
            clock: None,
            clock_start: None,
        };
        let config = ServeConfig::resolve(&args, &db).expect("config");
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.log, "debug");
        assert_eq!(config.database_url, "sqlite://file.db");
        assert_eq!(config.durability, Durability::Full);
    }

    #[test]
    fn client_settings_need_a_key_and_keep_a_base_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tally.toml");
        std::fs::write(&path, "url = \"https://meter.example/tally\"\n").expect("write");
        let db = DatabaseArgs {
            database_url: None,
            config: Some(path.clone()),
        };
        let mut args = ClientArgs {
            url: None,
            api_key: None,
        };
        let missing = ClientConfig::resolve(&args, &db).expect_err("no key");
        assert!(missing.to_string().contains("API key is required"));
        args.api_key = Some(Secret::new("k".into()));
        let config = ClientConfig::resolve(&args, &db).expect("config");
        assert_eq!(config.url.as_str(), "https://meter.example/tally/");
        args.url = Some("ftp://x".into());
        assert!(ClientConfig::resolve(&args, &db).is_err());
        std::fs::write(&path, "api_key = \"from-the-file\"\n").expect("write");
        args.url = None;
        args.api_key = None;
        let config = ClientConfig::resolve(&args, &db).expect("config");
        assert_eq!(config.api_key.expose(), "from-the-file");
        assert_eq!(config.url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(
            format!("{:?}", Secret::new("tally_abc".into())),
            "Secret(****)"
        );
    }
}
