//! Invoice documents: `POST /invoices/{id}/download` hands out a signed `file_url` at once, and the
//! PDF and HTML behind it are served without an API key while the link is genuine and fresh.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tally_core::id::{InvoiceId, OrganizationId};
use tally_server::file_links::{DEFAULT_LINK_LIFETIME, FileFormat, FileLinks, LinkSecret};

use crate::helpers::{TestApp, spawn_configured, spawn_simulated};

/// A customer on a 31.00 USD monthly plan with two charges; by April 1st its March invoice is
/// 22.00 (prorated) + 7.50 (calls) + 15.25 (storage) = 44.75.
async fn march_invoice(app: &TestApp, grace_days: Option<u32>) -> String {
    app.create_metric(
        json!({"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"}),
    )
    .await;
    app.create_metric(json!({"name": "Storage", "code": "storage", "aggregation_type": "sum_agg", "field_name": "gb"}))
        .await;
    let metrics = app
        .get("/api/v1/billable_metrics", &app.read_key)
        .await
        .json();
    let id = |code: &str| {
        metrics["billable_metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["code"] == code)
            .expect("metric")["lago_id"]
            .clone()
    };
    let plan = json!({"plan": {"name": "Pro", "code": "pro", "interval": "monthly", "amount_cents": 3100,
        "amount_currency": "USD", "pay_in_advance": false, "charges": [
            {"billable_metric_id": id("api_calls"), "charge_model": "graduated", "properties": {"graduated_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
                {"from_value": 101, "to_value": null, "per_unit_amount": "0.05", "flat_amount": "0"}]}},
            {"billable_metric_id": id("storage"), "charge_model": "standard", "properties": {"amount": "0.5"}}]}});
    app.post_json("/api/v1/plans", &plan, &app.admin_key)
        .await
        .assert_status(200);
    let mut customer = json!({"external_id": "acme", "timezone": "UTC",
        "name": "Acme <Rockets> & Co", "address_line1": "1 Launch Road", "city": "Lyon",
        "zipcode": "69001", "country": "FR", "email": "billing@acme.test"});
    if let Some(days) = grace_days {
        customer["billing_configuration"] = json!({"invoice_grace_period": days});
    }
    app.post_json(
        "/api/v1/customers",
        &json!({ "customer": customer }),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    app.post_json(
        "/api/v1/subscriptions",
        &json!({"subscription": {"external_customer_id": "acme", "plan_code": "pro", "external_id": "sub"}}),
        &app.admin_key,
    )
    .await
    .assert_status(200);
    let calls: Vec<Value> = (0..250)
        .map(|i| {
            json!({"transaction_id": format!("c-{i}"), "external_subscription_id": "sub",
            "code": "api_calls", "timestamp": 1_773_104_400 + i})
        })
        .collect();
    for chunk in calls.chunks(100) {
        app.post_json(
            "/api/v1/events/batch",
            &json!({ "events": chunk }),
            &app.ingest_key,
        )
        .await
        .assert_status(200);
    }
    for (tx, gb) in [("s1", "10.5"), ("s2", "20")] {
        app.post_json(
            "/api/v1/events",
            &json!({"event": {"transaction_id": tx, "external_customer_id": "acme", "code": "storage",
            "timestamp": "2026-03-20T08:00:00Z", "properties": {"gb": gb}}}),
            &app.ingest_key,
        )
        .await
        .assert_status(200);
    }
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    created[0].clone()
}

async fn download(app: &TestApp, id: &str) -> Value {
    let reply = app
        .post_json(
            &format!("/api/v1/invoices/{id}/download"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(200);
    reply.json()["invoice"].clone()
}

/// Fetches a URL with no API key and returns the status, content type and raw body.
pub async fn fetch(app: &TestApp, url: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app.client.get(url).send().await.expect("request sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = response.bytes().await.expect("body").to_vec();
    (status, content_type, body)
}

/// Parses a PDF (panics when it is not one) and returns the text of every page.
pub fn pdf_text(bytes: &[u8]) -> String {
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let document = lopdf::Document::load_mem(bytes).expect("a well-formed PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    assert!(!pages.is_empty(), "the PDF has pages");
    document.extract_text(&pages).expect("extractable text")
}

fn url(invoice: &Value, field: &str) -> String {
    invoice[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is set: {invoice}"))
        .to_owned()
}

#[tokio::test]
async fn download_links_to_a_pdf_and_an_html_page_served_without_a_key() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    let id = march_invoice(&app, None).await;
    let invoice = download(&app, &id).await;
    assert_eq!(invoice["lago_id"], id.as_str());
    assert_eq!(invoice["status"], "finalized");
    assert_eq!(invoice["total_amount_cents"], 4475);
    let number = invoice["number"].as_str().expect("number").to_owned();
    let file_url = url(&invoice, "file_url");
    assert!(
        file_url.starts_with(&format!("{}/api/v1/invoices/{id}/file.pdf?", app.address)),
        "{file_url}"
    );
    assert!(file_url.contains("&signature="), "{file_url}");

    // Every answer about the finalized invoice carries a link, lists included.
    let read = app
        .get(&format!("/api/v1/invoices/{id}"), &app.read_key)
        .await
        .json();
    assert!(read["invoice"]["file_url"].is_string());
    let listed = app.get("/api/v1/invoices", &app.read_key).await.json();
    assert!(listed["invoices"][0]["file_url"].is_string());

    let (status, content_type, pdf) = fetch(&app, &file_url).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/pdf");
    let text = pdf_text(&pdf);
    for expected in [
        number.as_str(),
        "44.75",
        "22.00",
        "7.50",
        "15.25",
        "Acme <Rockets> & Co",
        "1 Launch Road",
        "2026-03-10",
        "2026-03-31",
        "Storage",
        "Total (USD)",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF:\n{text}"
        );
    }
    // The content streams are not compressed: the total is in the bytes as written.
    assert!(pdf.windows(7).any(|w| w == b"(44.75)"));

    let (status, content_type, html) = fetch(&app, &url(&invoice, "html_url")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(html).expect("utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for expected in [
        number.as_str(),
        "44.75",
        "22.00",
        "Acme &lt;Rockets&gt; &amp; Co",
    ] {
        assert!(html.contains(expected), "{expected:?} not in the HTML");
    }
    assert!(!html.contains("<Rockets>"));

    // A voided invoice still has its document, marked as such.
    let voided = app
        .post_json(
            &format!("/api/v1/invoices/{id}/void"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    voided.assert_status(200);
    let voided = voided.json()["invoice"].clone();
    let (status, _, pdf) = fetch(&app, &url(&voided, "file_url")).await;
    assert_eq!(status, 200);
    assert!(pdf_text(&pdf).contains("VOIDED"));
    app.shutdown().await;
}

#[tokio::test]
async fn tampered_moved_and_expired_links_are_refused() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    let id = march_invoice(&app, None).await;
    let invoice = download(&app, &id).await;
    let file_url = url(&invoice, "file_url");

    let forbidden = |code: &str| json!({"status": 403, "error": "Forbidden", "code": code});
    let refused = async |link: &str, code: &str| {
        let (status, content_type, body) = fetch(&app, link).await;
        assert_eq!(status, 403, "{link}");
        assert!(content_type.starts_with("application/json"));
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body, forbidden(code), "{link}");
    };

    // One hex digit changed.
    let last = file_url.chars().last().expect("a signature");
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &file_url[..file_url.len() - 1]);
    refused(&tampered, "invalid_signature").await;
    // The PDF's signature does not open the HTML.
    refused(
        &file_url.replace("/file.pdf?", "/file.html?"),
        "invalid_signature",
    )
    .await;
    // A later expiry with the old signature.
    let expires: i64 = file_url
        .split("expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .and_then(|e| e.parse().ok())
        .expect("expires");
    refused(
        &file_url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        ),
        "invalid_signature",
    )
    .await;
    // No signature at all, or no query.
    refused(
        file_url.split("&signature=").next().expect("prefix"),
        "invalid_signature",
    )
    .await;
    refused(
        &app.url(&format!("/api/v1/invoices/{id}/file.pdf")),
        "invalid_signature",
    )
    .await;

    // Links work for seven days, then expire; a new download hands out a fresh one.
    app.advance("2026-04-07T23:59:59Z").await;
    assert_eq!(fetch(&app, &file_url).await.0, 200);
    app.advance("2026-04-08T00:00:01Z").await;
    refused(&file_url, "link_expired").await;
    let fresh = url(&download(&app, &id).await, "file_url");
    assert_eq!(fetch(&app, &fresh).await.0, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_draft_has_no_document_until_it_is_finalized() {
    let app = spawn_simulated("2026-03-10T00:00:00Z").await;
    let id = march_invoice(&app, Some(3)).await;
    let read = app
        .get(&format!("/api/v1/invoices/{id}"), &app.read_key)
        .await
        .json();
    assert_eq!(read["invoice"]["status"], "draft");
    assert!(read["invoice"]["file_url"].is_null());
    let reply = app
        .post_json(
            &format!("/api/v1/invoices/{id}/download"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    reply.assert_status(405);
    assert_eq!(
        reply.json(),
        json!({"status": 405, "error": "Method Not Allowed", "code": "is_draft"})
    );

    let finalized = app
        .put_json(
            &format!("/api/v1/invoices/{id}/finalize"),
            &json!({}),
            &app.admin_key,
        )
        .await;
    finalized.assert_status(200);
    let finalized = finalized.json()["invoice"].clone();
    let (status, _, pdf) = fetch(&app, &url(&finalized, "file_url")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    assert!(text.contains(finalized["number"].as_str().expect("number")));
    assert!(text.contains("44.75"));
    app.shutdown().await;
}

#[tokio::test]
async fn links_start_with_the_public_url_and_are_signed_with_the_configured_secret() {
    let secret = b"a secret shared by every node".to_vec();
    let app = spawn_configured("2026-03-10T00:00:00Z", |config| {
        config.public_url = Some("https://billing.example.com/".into());
        config.link_secret = LinkSecret::new(secret.clone());
    })
    .await;
    let id = march_invoice(&app, None).await;
    let file_url = url(&download(&app, &id).await, "file_url");
    let path = file_url
        .strip_prefix("https://billing.example.com")
        .unwrap_or_else(|| panic!("{file_url}"));
    assert!(path.starts_with(&format!("/api/v1/invoices/{id}/file.pdf?organization=")));
    assert_eq!(fetch(&app, &app.url(path)).await.0, 200);

    // A genuine link to an invoice that does not exist: 404.
    let links = FileLinks::new(LinkSecret::new(secret), DEFAULT_LINK_LIFETIME);
    let now = tally_core::Timestamp::parse_rfc3339("2026-04-01T00:00:00Z").expect("time");
    let missing = links.issue(
        app.org,
        InvoiceId(uuid::Uuid::new_v4()),
        FileFormat::Pdf,
        now,
    );
    let (status, _, body) = fetch(&app, &app.url(&missing.path_and_query())).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["code"], "invoice_not_found");

    // The same invoice in another organization, or signed with another secret: 403.
    let invoice = InvoiceId(uuid::Uuid::parse_str(&id).expect("uuid"));
    let elsewhere = links.issue(
        OrganizationId(uuid::Uuid::new_v4()),
        invoice,
        FileFormat::Pdf,
        now,
    );
    let moved = elsewhere.path_and_query().replace(
        &elsewhere.organization.0.to_string(),
        &app.org.0.to_string(),
    );
    assert_eq!(fetch(&app, &app.url(&moved)).await.0, 403);
    let forged = FileLinks::new(LinkSecret::new(b"guess".to_vec()), DEFAULT_LINK_LIFETIME).issue(
        app.org,
        invoice,
        FileFormat::Html,
        now,
    );
    assert_eq!(fetch(&app, &app.url(&forged.path_and_query())).await.0, 403);
    let genuine = links.issue(app.org, invoice, FileFormat::Html, now);
    assert_eq!(
        fetch(&app, &app.url(&genuine.path_and_query())).await.0,
        200
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_document_itemizes_coupons_and_taxes() {
    let app = spawn_simulated("2026-03-01T00:00:00Z").await;
    for (path, body) in [
        (
            "/api/v1/taxes",
            json!({"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": true}}),
        ),
        (
            "/api/v1/plans",
            json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
            "amount_cents": 10000, "amount_currency": "USD", "pay_in_advance": false}}),
        ),
        (
            "/api/v1/customers",
            json!({"customer": {"external_id": "acme"}}),
        ),
        (
            "/api/v1/coupons",
            json!({"coupon": {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
            "amount_cents": 2500, "amount_currency": "USD", "frequency": "once", "expiration": "no_expiration"}}),
        ),
        (
            "/api/v1/applied_coupons",
            json!({"applied_coupon": {"external_customer_id": "acme", "coupon_code": "welcome"}}),
        ),
        (
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "acme", "plan_code": "basic", "external_id": "sub"}}),
        ),
    ] {
        app.post_json(path, &body, &app.admin_key)
            .await
            .assert_status(200);
    }
    let created = app.advance("2026-04-01T00:00:00Z").await;
    assert_eq!(created.len(), 1);
    let invoice = download(&app, &created[0]).await;
    // 100.00 − 25.00 = 75.00; 20 % VAT = 15.00; 90.00.
    assert_eq!(invoice["total_amount_cents"], 9000);
    let (status, _, pdf) = fetch(&app, &url(&invoice, "file_url")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    let (status, _, html) = fetch(&app, &url(&invoice, "html_url")).await;
    assert_eq!(status, 200);
    let html = String::from_utf8(html).expect("utf-8");
    for expected in [
        "Subtotal",
        "100.00",
        "Coupon Welcome",
        "-25.00",
        "75.00",
        "VAT (20%)",
        "15.00",
        "90.00",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF:\n{text}"
        );
        assert!(html.contains(expected), "{expected:?} not in the HTML");
    }
    app.shutdown().await;
}
