//! The OpenAPI document: version 3.1, every route listed, and every listed route served.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_simulated};

/// Every route tally serves under `/api/v1`, written by hand.
const ROUTES: [(&str, &str); 81] = [
    ("post", "/api/v1/customers"),
    ("get", "/api/v1/customers"),
    ("get", "/api/v1/customers/{external_customer_id}"),
    ("delete", "/api/v1/customers/{external_customer_id}"),
    ("post", "/api/v1/billable_metrics"),
    ("get", "/api/v1/billable_metrics"),
    ("get", "/api/v1/billable_metrics/{code}"),
    ("put", "/api/v1/billable_metrics/{code}"),
    ("delete", "/api/v1/billable_metrics/{code}"),
    ("get", "/api/v1/organizations"),
    ("put", "/api/v1/organizations"),
    ("post", "/api/v1/events"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/events/batch"),
    ("post", "/api/v1/events/bulk"),
    ("get", "/api/v1/events/{transaction_id}"),
    ("post", "/api/v1/events/estimate_fees"),
    ("get", "/api/v1/meters"),
    ("post", "/api/v1/meters"),
    ("get", "/api/v1/meters/{meterIdOrSlug}"),
    ("put", "/api/v1/meters/{meterIdOrSlug}"),
    ("delete", "/api/v1/meters/{meterIdOrSlug}"),
    ("get", "/api/v1/meters/{meterIdOrSlug}/query"),
    ("post", "/api/v1/plans"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/plans/{code}"),
    ("put", "/api/v1/plans/{code}"),
    ("delete", "/api/v1/plans/{code}"),
    ("post", "/api/v1/subscriptions"),
    ("get", "/api/v1/subscriptions"),
    ("get", "/api/v1/subscriptions/{external_id}"),
    ("put", "/api/v1/subscriptions/{external_id}"),
    ("delete", "/api/v1/subscriptions/{external_id}"),
    ("get", "/api/v1/subscriptions/{external_id}/lifetime_usage"),
    ("put", "/api/v1/subscriptions/{external_id}/lifetime_usage"),
    ("get", "/api/v1/invoices"),
    ("post", "/api/v1/invoices"),
    ("get", "/api/v1/invoices/{lago_id}"),
    ("put", "/api/v1/invoices/{lago_id}"),
    ("put", "/api/v1/invoices/{lago_id}/finalize"),
    ("post", "/api/v1/invoices/{lago_id}/finalize"),
    ("put", "/api/v1/invoices/{lago_id}/refresh"),
    ("post", "/api/v1/invoices/{lago_id}/refresh"),
    ("post", "/api/v1/invoices/{lago_id}/void"),
    ("post", "/api/v1/invoices/{lago_id}/download"),
    ("get", "/api/v1/fees"),
    ("get", "/api/v1/fees/{lago_id}"),
    (
        "get",
        "/api/v1/customers/{external_customer_id}/current_usage",
    ),
    ("get", "/api/v1/clock"),
    ("post", "/api/v1/wallets"),
    ("get", "/api/v1/wallets"),
    ("get", "/api/v1/wallets/{lago_id}"),
    ("delete", "/api/v1/wallets/{lago_id}"),
    ("post", "/api/v1/wallet_transactions"),
    ("get", "/api/v1/wallets/{lago_id}/wallet_transactions"),
    ("get", "/api/v1/wallet_transactions/{lago_id}"),
    ("get", "/api/v1/customers/{external_customer_id}/past_usage"),
    ("post", "/api/v1/credit_notes"),
    ("get", "/api/v1/credit_notes"),
    ("post", "/api/v1/credit_notes/estimate"),
    ("get", "/api/v1/credit_notes/{lago_id}"),
    ("put", "/api/v1/credit_notes/{lago_id}/void"),
    ("post", "/api/v1/taxes"),
    ("get", "/api/v1/taxes"),
    ("get", "/api/v1/taxes/{code}"),
    ("put", "/api/v1/taxes/{code}"),
    ("delete", "/api/v1/taxes/{code}"),
    ("post", "/api/v1/coupons"),
    ("get", "/api/v1/coupons"),
    ("get", "/api/v1/coupons/{code}"),
    ("delete", "/api/v1/coupons/{code}"),
    ("post", "/api/v1/applied_coupons"),
    ("get", "/api/v1/applied_coupons"),
    (
        "delete",
        "/api/v1/customers/{external_customer_id}/applied_coupons/{lago_id}",
    ),
    ("post", "/api/v1/clock"),
    ("post", "/api/v1/add_ons"),
    ("get", "/api/v1/add_ons"),
    ("get", "/api/v1/add_ons/{code}"),
    ("put", "/api/v1/add_ons/{code}"),
    ("delete", "/api/v1/add_ons/{code}"),
    // Counted separately: the document itself.
    ("get", "/api/v1/openapi.json"),
];

#[tokio::test]
async fn the_document_lists_every_route() {
    let app = spawn_app().await;
    let reply = app
        .send(app.client.get(app.url("/api/v1/openapi.json")))
        .await;
    reply.assert_status(200);
    assert!(reply.content_type().starts_with("application/json"));
    let doc = reply.json();
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(doc["info"]["title"], "tally");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");

    let api_routes = &ROUTES[..ROUTES.len() - 1];
    for (method, path) in api_routes {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is missing from the document"
        );
    }
    // And nothing else: every documented operation is one of the routes above.
    let methods = [
        "get", "post", "put", "delete", "patch", "head", "options", "trace",
    ];
    for (path, item) in paths {
        for method in methods {
            if item.get(method).is_some() {
                assert!(
                    api_routes.contains(&(method, path.as_str())),
                    "{method} {path} is documented but not expected"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    // A simulated clock, so the clock routes exist too.
    let app = spawn_simulated("2026-01-01T00:00:00Z").await;
    let doc = app
        .send(app.client.get(app.url("/api/v1/openapi.json")))
        .await
        .json();
    let paths = doc["paths"].as_object().expect("paths");
    let mut called = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{external_customer_id}", "cus_x")
            .replace("{code}", "metric_x")
            .replace("{transaction_id}", "tx_x")
            .replace("{meterIdOrSlug}", "meter_x");
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let reply = app
                .call(method.clone(), &concrete, &app.admin_key, body.as_ref())
                .await;
            called += 1;
            assert_ne!(
                reply.status.as_u16(),
                405,
                "{method} {concrete}: {}",
                reply.text
            );
            if reply.status.as_u16() == 404 {
                let body = reply.json();
                assert_ne!(body["code"], "resource_not_found", "{method} {concrete}");
                assert_ne!(body["detail"], "resource not found", "{method} {concrete}");
            }
        }
    }
    assert_eq!(called, ROUTES.len() - 1);

    // An unknown route, for contrast.
    let reply = app.get("/api/v1/plans_x", &app.admin_key).await;
    reply.assert_status(404);
    assert_eq!(
        reply.json(),
        json!({"status": 404, "error": "Not Found", "code": "resource_not_found"})
    );
}
