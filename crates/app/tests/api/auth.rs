//! Every API route refuses requests without a valid token. The route table is
//! read from the OpenAPI document, which is built from the same registrations
//! as the router, so a route added later is covered without editing this test.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

fn concrete(path: &str) -> String {
    // Replace every {param} with a syntactically valid id.
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_api_route_refuses_missing_malformed_unknown_and_revoked_tokens() {
    // Arrange
    let app = spawn_app().await;
    let revoked = app
        .post("/api/v1/tokens", json!({"name": "old"}))
        .await
        .expect(StatusCode::CREATED);
    let revoked_secret = revoked.body["token"].as_str().unwrap().to_owned();
    app.delete(&format!(
        "/api/v1/tokens/{}",
        revoked.body["id"].as_str().unwrap()
    ))
    .await
    .expect(StatusCode::NO_CONTENT);
    let operations = postino_web::api_operations();
    assert!(
        operations.len() >= 15,
        "route table looks incomplete: {operations:?}"
    );

    let attempts: [(&str, Option<String>); 5] = [
        ("no header", None),
        ("wrong scheme", Some(format!("Basic {}", app.token))),
        (
            "unknown token",
            Some(format!("Bearer pst_{}", "0".repeat(64))),
        ),
        ("garbage", Some("Bearer \u{1}".to_owned())),
        ("revoked token", Some(format!("Bearer {revoked_secret}"))),
    ];
    for (method, path) in &operations {
        for (label, header) in &attempts {
            // Act
            let method = Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let mut req = app.client.request(method.clone(), app.url(&concrete(path)));
            if let Some(h) = header {
                req = req.header("authorization", h.as_str());
            }
            let response = req.json(&json!({})).send().await;

            // Assert
            let Ok(response) = response else {
                // reqwest refuses to send some invalid header values at all.
                continue;
            };
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {label}"
            );
            assert!(response.headers().contains_key("www-authenticate"));
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM smtp_servers").await,
        1,
        "only the server seeded from [smtp]"
    );
}

#[tokio::test]
async fn the_route_table_covers_every_resource() {
    let paths: Vec<String> = postino_web::api_operations()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    for expected in [
        "/api/v1/lists",
        "/api/v1/lists/{id}",
        "/api/v1/subscribers",
        "/api/v1/subscribers/{id}",
        "/api/v1/subscribers/{id}/lists",
        "/api/v1/subscribers/{id}/lists/{list_id}",
        "/api/v1/subscribers/bulk",
        "/api/v1/subscribers/{id}/export",
        "/api/v1/subscribers/{id}/erase",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/campaigns/{id}/deliveries",
        "/api/v1/campaigns/{id}/deliveries/retry",
        "/api/v1/smtp-servers",
        "/api/v1/smtp-servers/{id}",
        "/api/v1/smtp-servers/{id}/test",
        "/api/v1/sending-limits",
        "/api/v1/domain-limits",
        "/api/v1/domain-limits/{domain}",
        "/api/v1/dkim-keys",
        "/api/v1/dkim-keys/{id}",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[tokio::test]
async fn every_api_route_with_a_body_refuses_one_over_the_size_limit() {
    let app = spawn_app_with(|s| s.http.max_body_bytes = 64 * 1024).await;
    let big = json!({"name": "x".repeat(100 * 1024)});
    let mut checked = 0;
    for (method, path) in postino_web::api_operations() {
        // CSV uploads have their own, larger limit (import.max_upload_bytes),
        // tested in imports.rs. Erasure, retries and the SMTP connection test take no
        // body, so they never read one.
        if !matches!(method.as_str(), "POST" | "PATCH" | "PUT")
            || path.ends_with("/erase")
            || path.ends_with("/deliveries/retry")
            || path == "/api/v1/smtp-servers/{id}/test"
            || path == "/api/v1/imports"
        {
            continue;
        }
        let method = Method::from_bytes(method.as_str().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete(&path)))
            .bearer_auth(&app.token)
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} routes take a body");
}
