//! Organizations and API keys.

use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::apikey::{ApiKey, Scope};
use tally_core::case::IdentifierCase;
use tally_core::id::{ApiKeyId, OrganizationId};
use tally_core::organization::{
    DocumentNumbering, Organization, OrganizationBilling, OrganizationPatch,
};
use tally_core::time::Timestamp;
use uuid::Uuid;

use super::now;
use crate::error::{StoreError, StoreResult};

const ORG_COLUMNS: &str =
    "id, name, identifier_case, timezone, created_at, invoice_grace_period, net_payment_term,
    document_numbering, document_number_prefix";

fn org_from_row(row: &Row<'_>) -> rusqlite::Result<Organization> {
    let id: String = row.get(0)?;
    let case: String = row.get(2)?;
    let tz: String = row.get(3)?;
    Ok(Organization {
        id: OrganizationId(parse_uuid(&id)?),
        name: row.get(1)?,
        identifier_case: case.parse().unwrap_or_default(),
        timezone: tz.parse().unwrap_or(chrono_tz::UTC),
        created_at: Timestamp::from_micros(row.get(4)?),
        billing: OrganizationBilling {
            invoice_grace_period: row.get(5)?,
            net_payment_term: row.get(6)?,
            document_numbering: DocumentNumbering::parse(&row.get::<_, String>(7)?)
                .unwrap_or_default(),
            document_number_prefix: row.get(8)?,
        },
    })
}

pub(super) fn parse_uuid(text: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn seq_of(conn: &Connection, org: OrganizationId) -> StoreResult<i64> {
    conn.query_row(
        "SELECT seq FROM organizations WHERE id = ?1",
        [org.0.to_string()],
        |row| row.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound("organization"))
}

pub(super) fn organization(conn: &Connection, org: OrganizationId) -> StoreResult<Organization> {
    conn.query_row(
        &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"),
        [org.0.to_string()],
        org_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("organization"))
}

/// The organization of the oldest API key, else the oldest organization.
pub(super) fn first_organization(conn: &Connection) -> StoreResult<Option<Organization>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {ORG_COLUMNS} FROM organizations o
                 ORDER BY (SELECT MIN(created_at) FROM api_keys k WHERE k.org = o.seq) IS NULL, seq LIMIT 1"
            ),
            [],
            org_from_row,
        )
        .optional()?)
}

/// An organization's name, id and invoicing defaults, by its compact id.
pub(super) fn by_seq(conn: &Connection, seq: i64) -> StoreResult<Organization> {
    Ok(conn.query_row(
        &format!("SELECT {ORG_COLUMNS} FROM organizations WHERE seq = ?1"),
        [seq],
        org_from_row,
    )?)
}

pub(super) fn ensure_default(conn: &Connection) -> StoreResult<Organization> {
    if let Some(org) = first_organization(conn)? {
        return Ok(org);
    }
    let id = OrganizationId::generate();
    conn.execute(
        "INSERT INTO organizations (id, name, identifier_case, timezone, created_at) VALUES (?1, 'Default', 'none', 'UTC', ?2)",
        params![id.0.to_string(), now().micros()],
    )?;
    organization(conn, id)
}

pub(super) fn update(
    conn: &Connection,
    org: OrganizationId,
    patch: &OrganizationPatch,
) -> StoreResult<Organization> {
    let current = organization(conn, org)?;
    let name = patch.name.clone().unwrap_or(current.name);
    let case: IdentifierCase = patch.identifier_case.unwrap_or(current.identifier_case);
    let tz = patch.timezone.unwrap_or(current.timezone);
    let billing = current.billing;
    conn.execute(
        "UPDATE organizations SET name = ?2, identifier_case = ?3, timezone = ?4, invoice_grace_period = ?5,
            net_payment_term = ?6, document_numbering = ?7, document_number_prefix = ?8
         WHERE id = ?1",
        params![
            org.0.to_string(),
            name,
            case.name(),
            tz.name(),
            patch.invoice_grace_period.unwrap_or(billing.invoice_grace_period),
            patch.net_payment_term.unwrap_or(billing.net_payment_term),
            patch.document_numbering.unwrap_or(billing.document_numbering).name(),
            patch.document_number_prefix.clone().or(billing.document_number_prefix),
        ],
    )?;
    organization(conn, org)
}

const KEY_COLUMNS: &str = "k.id, o.id, k.name, k.scope, k.prefix, k.created_at, k.revoked_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let id: String = row.get(0)?;
    let org: String = row.get(1)?;
    let scope: String = row.get(3)?;
    Ok(ApiKey {
        id: ApiKeyId(parse_uuid(&id)?),
        organization_id: OrganizationId(parse_uuid(&org)?),
        name: row.get(2)?,
        scope: scope.parse().unwrap_or(Scope::Read),
        prefix: row.get(4)?,
        created_at: Timestamp::from_micros(row.get(5)?),
        revoked_at: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_micros),
    })
}

pub(super) fn create_key(
    conn: &Connection,
    org: i64,
    name: &str,
    scope: Scope,
    prefix: &str,
    secret_hash: &[u8; 32],
) -> StoreResult<ApiKey> {
    let id = ApiKeyId::generate();
    conn.execute(
        "INSERT INTO api_keys (id, org, name, scope, prefix, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id.0.to_string(), org, name, scope.name(), prefix, &secret_hash[..], now().micros()],
    )?;
    key_by_id(conn, id)
}

fn key_by_id(conn: &Connection, id: ApiKeyId) -> StoreResult<ApiKey> {
    conn.query_row(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN organizations o ON o.seq = k.org WHERE k.id = ?1"),
        [id.0.to_string()],
        key_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("api_key"))
}

pub(super) fn key_by_hash(
    conn: &Connection,
    secret_hash: &[u8; 32],
) -> StoreResult<Option<ApiKey>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys k JOIN organizations o ON o.seq = k.org
                 WHERE k.secret_hash = ?1 AND k.revoked_at IS NULL"
            ),
            [&secret_hash[..]],
            key_from_row,
        )
        .optional()?)
}

pub(super) fn list_keys(conn: &Connection) -> StoreResult<Vec<ApiKey>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k JOIN organizations o ON o.seq = k.org ORDER BY k.created_at"
    ))?;
    let keys = stmt
        .query_map([], key_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(keys)
}

pub(super) fn revoke_key(conn: &Connection, id: ApiKeyId) -> StoreResult<ApiKey> {
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id.0.to_string(), now().micros()],
    )?;
    key_by_id(conn, id)
}
