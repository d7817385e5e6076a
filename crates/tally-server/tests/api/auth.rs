//! API keys, scopes, error shapes per route family, unauthenticated endpoints and request ids.

use serde_json::json;

use crate::helpers::{assert_json, spawn_app};

#[tokio::test]
async fn requests_without_a_key_or_with_an_unknown_key_are_unauthorized() {
    let app = spawn_app().await;
    let unauthorized = json!({"status": 401, "error": "Unauthorized"});

    let reply = app.send(app.client.get(app.url("/api/v1/customers"))).await;
    reply.assert_status(401);
    assert_eq!(reply.content_type(), "application/json");
    assert_json(&reply.json(), &unauthorized);

    let reply = app
        .send(
            app.client.get(app.url("/api/v1/customers")).bearer_auth(
                "tally_0000000000000000000000000000000000000000000000000000000000000000",
            ),
        )
        .await;
    reply.assert_status(401);
    assert_json(&reply.json(), &unauthorized);

    // Not a bearer token at all.
    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/customers"))
                .header("Authorization", format!("Basic {}", app.admin_key)),
        )
        .await;
    reply.assert_status(401);
    assert_json(&reply.json(), &unauthorized);
}

#[tokio::test]
async fn a_read_key_cannot_write() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "cus_1"}}),
            &app.read_key,
        )
        .await;
    reply.assert_status(403);
    assert_json(
        &reply.json(),
        &json!({"status": 403, "error": "Forbidden", "code": "write_action_not_allowed_for_customer"}),
    );
    // Nothing was written.
    app.get("/api/v1/customers/cus_1", &app.read_key)
        .await
        .assert_status(404);
    // Reading is allowed.
    app.get("/api/v1/customers", &app.read_key)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn an_ingest_key_may_send_events_but_not_read() {
    let app = spawn_app().await;
    let reply = app
        .post_json(
            "/api/v1/events",
            &json!({"event": {"transaction_id": "tx-1", "external_customer_id": "cus_1", "code": "calls"}}),
            &app.ingest_key,
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["event"]["transaction_id"], "tx-1");

    let reply = app
        .post_json(
            "/api/v1/events/batch",
            &json!({"events": [{"transaction_id": "tx-2", "external_customer_id": "cus_1", "code": "calls"}]}),
            &app.ingest_key,
        )
        .await;
    reply.assert_status(200);

    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/events"))
                .bearer_auth(&app.ingest_key)
                .header("Content-Type", "application/cloudevents+json")
                .body(
                    json!({"specversion": "1.0", "id": "ce-1", "source": "s", "type": "calls", "subject": "cus_1"})
                        .to_string(),
                ),
        )
        .await;
    reply.assert_status(204);
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/events/bulk"))
                .bearer_auth(&app.ingest_key)
                .header("Content-Type", "application/x-ndjson")
                .body(
                    json!({"transaction_id": "tx-3", "external_customer_id": "cus_1", "code": "calls"})
                        .to_string(),
                ),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.json()["accepted"], 1);

    let reply = app
        .post_json(
            "/api/v1/meters",
            &json!({"slug": "m", "aggregation": "COUNT", "eventType": "calls"}),
            &app.ingest_key,
        )
        .await;
    reply.assert_status(403);
    assert_eq!(reply.content_type(), "application/problem+json");

    let reply = app.get("/api/v1/customers", &app.ingest_key).await;
    reply.assert_status(403);
    assert_json(
        &reply.json(),
        &json!({"status": 403, "error": "Forbidden", "code": "read_action_not_allowed_for_customer"}),
    );

    let reply = app.get("/api/v1/events/tx-1", &app.ingest_key).await;
    reply.assert_status(403);
    assert_json(
        &reply.json(),
        &json!({"status": 403, "error": "Forbidden", "code": "read_action_not_allowed_for_event"}),
    );

    let reply = app
        .post_json(
            "/api/v1/customers",
            &json!({"customer": {"external_id": "cus_1"}}),
            &app.ingest_key,
        )
        .await;
    reply.assert_status(403);
    assert_json(
        &reply.json(),
        &json!({"status": 403, "error": "Forbidden", "code": "write_action_not_allowed_for_customer"}),
    );
}

#[tokio::test]
async fn openmeter_routes_answer_problem_documents() {
    let app = spawn_app().await;

    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/meters"))
                .header("X-Request-Id", "req-om-401"),
        )
        .await;
    reply.assert_status(401);
    assert_eq!(reply.content_type(), "application/problem+json");
    assert_json(
        &reply.json(),
        &json!({
            "type": "about:blank", "title": "Unauthorized", "status": 401,
            "detail": "missing or unknown API key", "instance": "urn:request:req-om-401",
            "extensions": {},
        }),
    );

    let reply = app.get("/api/v1/meters/nope", &app.admin_key).await;
    reply.assert_status(404);
    assert_eq!(reply.content_type(), "application/problem+json");
    let body = reply.json();
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["status"], 404);
    assert_eq!(body["type"], "about:blank");

    // A read key creating a meter: 403, still a problem document.
    let reply = app
        .post_json(
            "/api/v1/meters",
            &json!({"slug": "m", "aggregation": "COUNT", "eventType": "e"}),
            &app.read_key,
        )
        .await;
    reply.assert_status(403);
    assert_eq!(reply.content_type(), "application/problem+json");
    assert_eq!(reply.json()["title"], "Forbidden");

    // CloudEvents ingest without a key is an OpenMeter request too.
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/events"))
                .header("Content-Type", "application/cloudevents+json")
                .body("{}"),
        )
        .await;
    reply.assert_status(401);
    assert_eq!(reply.content_type(), "application/problem+json");
}

#[tokio::test]
async fn health_metrics_and_openapi_need_no_key() {
    let app = spawn_app().await;
    let reply = app.send(app.client.get(app.url("/healthz"))).await;
    reply.assert_status(200);
    assert_json(&reply.json(), &json!({"status": "ok"}));

    let reply = app.send(app.client.get(app.url("/readyz"))).await;
    reply.assert_status(200);
    assert_json(&reply.json(), &json!({"status": "ready"}));

    let reply = app.send(app.client.get(app.url("/metrics"))).await;
    reply.assert_status(200);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );

    app.send(app.client.get(app.url("/api/v1/openapi.json")))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("X-Request-Id", "my-request-42"),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(
        reply
            .headers
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii")),
        Some("my-request-42")
    );

    // Also on authenticated and refused requests.
    let reply = app
        .send(
            app.client
                .get(app.url("/api/v1/customers"))
                .header("X-Request-Id", "refused-1"),
        )
        .await;
    reply.assert_status(401);
    assert_eq!(
        reply
            .headers
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii")),
        Some("refused-1")
    );

    let first = app.send(app.client.get(app.url("/healthz"))).await;
    let second = app.send(app.client.get(app.url("/healthz"))).await;
    let id = |reply: &crate::helpers::Reply| {
        reply
            .headers
            .get("x-request-id")
            .expect("a generated request id")
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let (a, b) = (id(&first), id(&second));
    assert!(uuid::Uuid::parse_str(&a).is_ok(), "not a UUID: {a}");
    assert!(uuid::Uuid::parse_str(&b).is_ok(), "not a UUID: {b}");
    assert_ne!(a, b, "each request gets its own id");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_not_found() {
    let app = spawn_app().await;
    let not_found = json!({"status": 404, "error": "Not Found", "code": "resource_not_found"});
    // As in Lago, a method a path does not serve is an unknown route.
    for (method, path) in [
        ("GET", "/api/v1/billing_entities"),
        ("GET", "/api/v1/analytics/mrr"),
        ("PATCH", "/api/v1/customers"),
        ("DELETE", "/api/v1/customers"),
        ("PUT", "/api/v1/events"),
        ("GET", "/api/v1/events/batch"),
        ("POST", "/api/v1/customers/cus_1"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        for key in [Some(&app.admin_key), None] {
            let mut request = app.client.request(method.clone(), app.url(path));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let reply = app.send(request).await;
            reply.assert_status(404);
            assert_eq!(reply.content_type(), "application/json", "{method} {path}");
            assert_json(&reply.json(), &not_found);
        }
    }
    for (method, path) in [
        ("PATCH", "/api/v1/meters"),
        ("GET", "/api/v1/meters/m/subjects"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let reply = app
            .send(
                app.client
                    .request(method.clone(), app.url(path))
                    .bearer_auth(&app.admin_key),
            )
            .await;
        reply.assert_status(404);
        assert_eq!(
            reply.content_type(),
            "application/problem+json",
            "{method} {path}"
        );
        assert_eq!(reply.json()["title"], "Not Found");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_in_the_route_family_format() {
    let app = spawn_app().await;
    // More than the 2 MiB a request body may hold.
    let padding = "x".repeat(3 * 1024 * 1024);
    let body =
        json!({"events": [{"transaction_id": "big", "external_customer_id": "c", "code": "x",
                                   "properties": {"padding": padding}}]})
        .to_string();
    for path in [
        "/api/v1/events/batch",
        "/api/v1/events",
        "/api/v1/customers",
    ] {
        let reply = app.post_raw(path, "application/json", body.clone()).await;
        reply.assert_status(413);
        assert_eq!(reply.content_type(), "application/json", "{path}");
        let error = reply.json();
        assert_eq!(error["status"], 413, "{path}");
        assert_eq!(error["error"], "Payload Too Large", "{path}");
        assert_eq!(error["code"], "payload_too_large", "{path}");
    }
    let reply = app
        .post_raw(
            "/api/v1/events",
            "application/cloudevents-batch+json",
            body.clone(),
        )
        .await;
    reply.assert_status(413);
    assert_eq!(reply.content_type(), "application/problem+json");
    assert_eq!(reply.json()["title"], "Payload Too Large");
    let reply = app
        .post_raw("/api/v1/meters", "application/json", body)
        .await;
    reply.assert_status(413);
    assert_eq!(reply.content_type(), "application/problem+json");
    app.get("/api/v1/events/big", &app.admin_key)
        .await
        .assert_status(404);
}
