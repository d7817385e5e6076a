//! `tally serve`: open the store, make sure an admin key exists, serve until SIGINT/SIGTERM.

use anyhow::{Context, Result};
use tally_core::apikey::{Scope, secret_from_bytes, visible_prefix};
use tally_server::auth::digest;
use tally_server::{Application, ServerConfig};
use tally_store::Store;

use super::open_store;
use crate::config::{DatabaseArgs, ServeArgs, ServeConfig};

/// Runs the server.
pub async fn run(args: &ServeArgs, db: &DatabaseArgs) -> Result<()> {
    let config = ServeConfig::resolve(args, db)?;
    crate::telemetry::init(&config.log, config.log_format);
    let store = open_store(&config.database_url, config.durability, true)?;
    ensure_admin_key(store.as_ref(), config.api_key.as_ref().map(|k| k.expose())).await?;
    let server = ServerConfig {
        listen: config.listen,
        clock: config.clock,
        ..ServerConfig::default()
    };
    let app = Application::build(&server, store)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = app.local_addr()?;
    eprintln!(
        "tally listening on http://{addr} (database {})",
        config.database_url
    );
    if let tally_server::ClockMode::Simulated(start) = config.clock {
        eprintln!(
            "billing clock simulated from {}: move it with POST /api/v1/clock",
            start.to_rfc3339_seconds()
        );
    }
    tracing::info!(%addr, "listening");
    app.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Makes sure the configured key exists as an admin key, or creates and prints one when the database
/// has no key at all.
async fn ensure_admin_key(store: &dyn Store, configured: Option<&str>) -> Result<()> {
    let org = store.default_organization().await?;
    if let Some(secret) = configured {
        if store.api_key_by_hash(digest(secret)).await?.is_none() {
            store
                .create_api_key(
                    org.id,
                    "TALLY_API_KEY",
                    Scope::Admin,
                    &visible_prefix(secret),
                    digest(secret),
                )
                .await?;
            tracing::info!("registered the configured API key as an admin key");
        }
        return Ok(());
    }
    if store
        .list_api_keys()
        .await?
        .iter()
        .any(|k| k.revoked_at.is_none())
    {
        return Ok(());
    }
    let secret = secret_from_bytes(&rand::random::<[u8; 32]>());
    store
        .create_api_key(
            org.id,
            "admin",
            Scope::Admin,
            &visible_prefix(&secret),
            digest(&secret),
        )
        .await?;
    eprintln!("created an admin API key (shown once, keep it): {secret}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
