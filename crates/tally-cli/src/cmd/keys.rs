//! `tally keys create|list|revoke`, against the same database the server uses.

use anyhow::{Context, Result};
use clap::Subcommand;
use tally_core::apikey::{Scope, secret_from_bytes, visible_prefix};
use tally_core::id::ApiKeyId;
use tally_server::auth::digest;

use super::open_for_management;
use crate::config::DatabaseArgs;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        /// A name to recognize the key by.
        #[arg(long)]
        name: String,
        /// admin (everything), ingest (send events only) or read (GET only).
        #[arg(long, default_value = "admin")]
        scope: Scope,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id, as `tally keys list` shows it.
        id: String,
    },
}

/// Runs a key command.
pub async fn run(command: KeysCommand, db: &DatabaseArgs) -> Result<()> {
    let store = open_for_management(db)?;
    match command {
        KeysCommand::Create { name, scope } => {
            let org = store.default_organization().await?;
            let secret = secret_from_bytes(&rand::random::<[u8; 32]>());
            let key = store
                .create_api_key(
                    org.id,
                    &name,
                    scope,
                    &visible_prefix(&secret),
                    digest(&secret),
                )
                .await?;
            println!("created key {} ({}, scope {})", key.id, key.name, key.scope);
            println!("secret (shown once): {secret}");
        }
        KeysCommand::List => {
            println!(
                "{:<36}  {:<20}  {:<6}  {:<12}  {:<20}  revoked",
                "id", "name", "scope", "prefix", "created"
            );
            for key in store.list_api_keys().await? {
                println!(
                    "{:<36}  {:<20}  {:<6}  {:<12}  {:<20}  {}",
                    key.id.to_string(),
                    key.name,
                    key.scope.name(),
                    key.prefix,
                    key.created_at.to_rfc3339_seconds(),
                    key.revoked_at
                        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_seconds())
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let id = ApiKeyId(
                id.parse()
                    .with_context(|| format!("{id:?} is not a key id"))?,
            );
            let key = store.revoke_api_key(id).await?;
            println!("revoked key {} ({})", key.id, key.name);
        }
    }
    store.close().await;
    Ok(())
}
