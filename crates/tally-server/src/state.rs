//! What every handler shares: the store, the clock, the key cache, the limits and the signer of
//! invoice document links.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tally_core::apikey::ApiKey;
use tally_core::id::OrganizationId;
use tally_core::organization::Organization;
use tally_store::Store;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::file_links::FileLinks;

/// How long a verified key or an organization's settings are trusted without asking the database; a
/// revoked key stops working within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Shared state of one server.
#[derive(Clone)]
pub struct AppState {
    /// Where everything is stored.
    pub store: Arc<dyn Store>,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// The simulated clock, when the server runs on one (`/api/v1/clock` exists only then).
    pub simulated: Option<Arc<crate::clock::SimulatedClock>>,
    /// Signs and checks the links to invoice documents (`file_url`).
    pub links: Arc<FileLinks>,
    /// The base URL clients reach the server at, when configured (otherwise taken from `Host`).
    pub public_url: Option<Arc<str>>,
    cache: Arc<Caches>,
}

#[derive(Default)]
struct Caches {
    keys: RwLock<HashMap<[u8; 32], (ApiKey, Instant)>>,
    orgs: RwLock<HashMap<OrganizationId, (Organization, Instant)>>,
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        simulated: Option<Arc<crate::clock::SimulatedClock>>,
        links: FileLinks,
        public_url: Option<&str>,
    ) -> Self {
        AppState {
            store,
            clock,
            simulated,
            links: Arc::new(links),
            public_url: public_url
                .map(|url| url.trim_end_matches('/'))
                .filter(|url| !url.is_empty())
                .map(Arc::from),
            cache: Arc::new(Caches::default()),
        }
    }

    /// Finds a live key by the digest of its secret, through a short-lived cache.
    pub async fn key(&self, digest: [u8; 32]) -> Result<Option<ApiKey>, ApiError> {
        if let Some((key, at)) = self
            .cache
            .keys
            .read()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(key));
        }
        let key = self.store.api_key_by_hash(digest).await?;
        if let Ok(mut keys) = self.cache.keys.write() {
            match &key {
                Some(key) => {
                    keys.insert(digest, (key.clone(), Instant::now()));
                }
                None => {
                    keys.remove(&digest);
                }
            }
        }
        Ok(key)
    }

    /// Reads an organization's settings through a short-lived cache.
    pub async fn organization(&self, org: OrganizationId) -> Result<Organization, ApiError> {
        if let Some((found, at)) = self
            .cache
            .orgs
            .read()
            .ok()
            .and_then(|m| m.get(&org).cloned())
            && at.elapsed() < CACHE_TTL
        {
            return Ok(found);
        }
        let found = self.store.organization(org).await?;
        self.remember_organization(found.clone());
        Ok(found)
    }

    /// Returns the zone a customer's billing periods are cut in.
    pub async fn billing_zone(
        &self,
        org: OrganizationId,
        customer: tally_core::id::CustomerId,
    ) -> Result<chrono_tz::Tz, ApiError> {
        Ok(self.store.customer_timezone(org, customer).await?)
    }

    /// Replaces the cached settings after a change made through this server.
    pub fn remember_organization(&self, org: Organization) {
        if let Ok(mut orgs) = self.cache.orgs.write() {
            orgs.insert(org.id, (org, Instant::now()));
        }
    }
}
