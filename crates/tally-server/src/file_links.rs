//! Signed, expiring links to invoice documents (`file_url`).
//!
//! An invoice's PDF and HTML renderings are served at
//! `GET /api/v1/invoices/{lago_id}/file.pdf` and `…/file.html` without an API key: the link is the
//! credential. Its query carries the organization, an expiry (Unix seconds) and an HMAC-SHA256
//! signature, in hex, over the organization, the invoice, the format and the expiry, keyed with the
//! server's [`LinkSecret`]. A link cannot be moved to another invoice, format or expiry without
//! invalidating the signature. Several nodes behind one address need the same secret.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tally_core::id::{InvoiceId, OrganizationId};
use tally_core::time::Timestamp;

/// How long a link works by default: seven days.
pub const DEFAULT_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The two renderings of an invoice a link can point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A PDF document (`file.pdf`, Lago's `file_url`).
    Pdf,
    /// A self-contained HTML page (`file.html`).
    Html,
}

impl FileFormat {
    /// Returns the format's name, as it appears in the path (`file.<name>`) and in the signature.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Pdf => "pdf",
            FileFormat::Html => "html",
        }
    }

    /// Returns the `Content-Type` the rendering is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Pdf => "application/pdf",
            FileFormat::Html => "text/html; charset=utf-8",
        }
    }
}

/// The key links are signed with. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct LinkSecret(Vec<u8>);

impl LinkSecret {
    /// Wraps a secret (any length; 32 random bytes or more are advised).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        LinkSecret(bytes.into())
    }

    /// Draws a fresh random 32-byte secret: links then stop working when the server restarts.
    pub fn random() -> Self {
        LinkSecret(rand::random::<[u8; 32]>().to_vec())
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature is missing, malformed, or does not match the link.
    #[error("the link's signature is not valid")]
    InvalidSignature,
    /// The link is genuine but its expiry has passed.
    #[error("the link has expired")]
    Expired,
}

impl LinkError {
    /// Returns the code sent in the 403 body (`invalid_signature`, `link_expired`).
    pub fn code(self) -> &'static str {
        match self {
            LinkError::InvalidSignature => "invalid_signature",
            LinkError::Expired => "link_expired",
        }
    }
}

/// One signed link's parts, as carried in its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    /// The invoice's organization.
    pub organization: OrganizationId,
    /// The invoice.
    pub invoice: InvoiceId,
    /// Which rendering.
    pub format: FileFormat,
    /// The last second (Unix) the link works.
    pub expires: i64,
    /// HMAC-SHA256 in lowercase hex.
    pub signature: String,
}

impl SignedLink {
    /// Returns the path and query of the link, to append to the public base URL.
    pub fn path_and_query(&self) -> String {
        format!(
            "/api/v1/invoices/{}/file.{}?organization={}&expires={}&signature={}",
            self.invoice.0,
            self.format.name(),
            self.organization.0,
            self.expires,
            self.signature
        )
    }
}

/// Makes and checks signed links with one secret and lifetime.
#[derive(Debug, Clone)]
pub struct FileLinks {
    secret: LinkSecret,
    lifetime: Duration,
}

type HmacSha256 = Hmac<Sha256>;

impl FileLinks {
    /// Builds a signer; links made at `now` work until `now + lifetime`.
    pub fn new(secret: LinkSecret, lifetime: Duration) -> Self {
        FileLinks { secret, lifetime }
    }

    fn mac(
        &self,
        organization: OrganizationId,
        invoice: InvoiceId,
        format: FileFormat,
        expires: i64,
    ) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail; an empty key is still a key.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret.0)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        let message = format!(
            "tally-invoice-file\n{}\n{}\n{}\n{expires}",
            organization.0,
            invoice.0,
            format.name()
        );
        mac.update(message.as_bytes());
        mac
    }

    /// Signs a link to `invoice`'s `format` rendering that works until `expires` (Unix seconds).
    pub fn sign(
        &self,
        organization: OrganizationId,
        invoice: InvoiceId,
        format: FileFormat,
        expires: i64,
    ) -> SignedLink {
        let signature = hex::encode(
            self.mac(organization, invoice, format, expires)
                .finalize()
                .into_bytes(),
        );
        SignedLink {
            organization,
            invoice,
            format,
            expires,
            signature,
        }
    }

    /// Signs a link that works for the configured lifetime from `now`.
    pub fn issue(
        &self,
        organization: OrganizationId,
        invoice: InvoiceId,
        format: FileFormat,
        now: Timestamp,
    ) -> SignedLink {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        self.sign(
            organization,
            invoice,
            format,
            now.seconds().saturating_add(lifetime),
        )
    }

    /// Checks a link's signature (in constant time), then its expiry against `now`.
    pub fn verify(&self, link: &SignedLink, now: Timestamp) -> Result<(), LinkError> {
        let signature = hex::decode(&link.signature).map_err(|_| LinkError::InvalidSignature)?;
        self.mac(link.organization, link.invoice, link.format, link.expires)
            .verify_slice(&signature)
            .map_err(|_| LinkError::InvalidSignature)?;
        if now.seconds() > link.expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> FileLinks {
        FileLinks::new(LinkSecret::new(b"secret".to_vec()), DEFAULT_LINK_LIFETIME)
    }

    fn ids() -> (OrganizationId, InvoiceId) {
        (
            OrganizationId(uuid::Uuid::from_u128(1)),
            InvoiceId(uuid::Uuid::from_u128(2)),
        )
    }

    #[test]
    fn a_link_works_until_it_expires() {
        let (org, invoice) = ids();
        let now = Timestamp::from_seconds(1_000);
        let link = links().issue(org, invoice, FileFormat::Pdf, now);
        assert_eq!(link.expires, 1_000 + 7 * 24 * 3600);
        assert_eq!(link.signature.len(), 64);
        assert_eq!(links().verify(&link, now), Ok(()));
        assert_eq!(
            links().verify(&link, Timestamp::from_seconds(link.expires)),
            Ok(())
        );
        assert_eq!(
            links().verify(&link, Timestamp::from_seconds(link.expires + 1)),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let (org, invoice) = ids();
        let now = Timestamp::from_seconds(1_000);
        let link = links().issue(org, invoice, FileFormat::Pdf, now);
        let changed = [
            SignedLink {
                format: FileFormat::Html,
                ..link.clone()
            },
            SignedLink {
                expires: link.expires + 1,
                ..link.clone()
            },
            SignedLink {
                invoice: InvoiceId(uuid::Uuid::from_u128(3)),
                ..link.clone()
            },
            SignedLink {
                organization: OrganizationId(uuid::Uuid::from_u128(3)),
                ..link.clone()
            },
            SignedLink {
                signature: "zz".into(),
                ..link.clone()
            },
        ];
        for other in changed {
            assert_eq!(
                links().verify(&other, now),
                Err(LinkError::InvalidSignature),
                "{other:?}"
            );
        }
        let elsewhere = FileLinks::new(LinkSecret::new(b"other".to_vec()), DEFAULT_LINK_LIFETIME);
        assert_eq!(
            elsewhere.verify(&link, now),
            Err(LinkError::InvalidSignature)
        );
    }

    #[test]
    fn the_secret_never_prints() {
        assert_eq!(
            format!("{:?}", LinkSecret::new(b"hunter2".to_vec())),
            "LinkSecret(<redacted>)"
        );
    }
}
