//! API keys: scopes and how secrets are made and recognized.
//!
//! A key's secret is shown once, when it is created; tally keeps only its SHA-256 digest. Secrets carry
//! 256 bits of entropy, so a plain digest (no salt, no slow hash) is enough to make a stolen database
//! useless for authentication while keeping the lookup on every request cheap.

use std::fmt;
use std::str::FromStr;

use crate::id::{ApiKeyId, OrganizationId};
use crate::time::Timestamp;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Send events only.
    Ingest,
    /// Read only (`GET`).
    Read,
}

impl Scope {
    /// Returns the name used in the CLI and the database.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Scope::Admin),
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            other => Err(format!(
                "unknown scope {other:?}; expected admin, ingest or read"
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The organization it acts for.
    pub organization_id: OrganizationId,
    /// A name people recognize it by.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The first characters of the secret, for people to tell keys apart.
    pub prefix: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// The prefix every secret starts with, so leaked keys are easy to recognize in logs and scanners.
pub const SECRET_PREFIX: &str = "tally_";

/// How many characters of a secret are kept in clear as its [`ApiKey::prefix`].
pub const VISIBLE_PREFIX_LEN: usize = 12;

/// Builds a secret from 32 random bytes: `tally_` followed by 64 hex digits.
pub fn secret_from_bytes(bytes: &[u8; 32]) -> String {
    let mut secret = String::with_capacity(SECRET_PREFIX.len() + 64);
    secret.push_str(SECRET_PREFIX);
    for byte in bytes {
        secret.push_str(&format!("{byte:02x}"));
    }
    secret
}

/// Returns the part of a secret kept in clear.
pub fn visible_prefix(secret: &str) -> String {
    secret.chars().take(VISIBLE_PREFIX_LEN).collect()
}
