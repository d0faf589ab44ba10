//! Operations endpoints and the API documentation.

use reqwest::{Method, StatusCode};

use crate::helpers::{Reply, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = spawn_app().await;
    let health = Reply::from(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    let ready = Reply::from(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    let mut admin = app.db.connect_admin().await.unwrap();
    // Terminate the app's connections and forbid new ones.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
        app.db.name
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&app.db.name)
        .execute(&mut admin)
        .await
        .unwrap();

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    app.get(&format!("/api/v1/lists/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        metrics.contains(
            r#"http_requests_total{method="GET",route="/api/v1/lists/{id}",status="404"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    assert!(
        !metrics.contains(&id.to_string()),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    assert!(generated.headers()["x-request-id"].to_str().unwrap().len() >= 32);
}

#[tokio::test]
async fn the_openapi_document_is_served_and_describes_the_api() {
    let app = spawn_app().await;
    let doc = Reply::from(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc.body["paths"]["/subscribers"]["get"].is_object());
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_api_viewer_is_served_with_its_own_assets() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no CDN: {html}"
    );
    let js = app
        .client
        .get(app.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.unwrap().len() > 100_000);
}

/// The headers every response must carry, whatever answered it.
#[track_caller]
fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    // Arrange
    let app = spawn_app_with(|s| s.http.max_body_bytes = 1024).await;
    let token = format!("Bearer {}", app.token);
    let cases: [(&str, reqwest::Method, &str, Option<&str>); 12] = [
        ("API reply", Method::GET, "/api/v1/lists", Some(&token)),
        ("API 401", Method::GET, "/api/v1/lists", None),
        ("API 404", Method::GET, "/api/v1/nowhere", Some(&token)),
        ("API 413", Method::POST, "/api/v1/lists", Some(&token)),
        (
            "OpenAPI document",
            Method::GET,
            "/api/v1/openapi.json",
            None,
        ),
        ("API viewer", Method::GET, "/api/docs/", None),
        (
            "API viewer script",
            Method::GET,
            "/api/docs/swagger-ui-bundle.js",
            None,
        ),
        ("public page", Method::GET, "/unsubscribe/not-a-token", None),
        ("static asset", Method::GET, "/static/css/app.css", None),
        ("login page", Method::GET, "/login", None),
        ("page not found", Method::GET, "/nowhere", None),
        ("health", Method::GET, "/healthz", None),
    ];

    for (what, method, path, auth) in cases {
        // Act
        let mut req = app.client.request(method.clone(), app.url(path));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if method == Method::POST {
            req = req
                .header("content-type", "application/json")
                .body("x".repeat(4096));
        }
        let response = req.send().await.unwrap();

        // Assert
        assert_security_headers(
            &format!("{what} ({})", response.status()),
            response.headers(),
        );
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_security_headers("metrics", metrics.headers());
}

#[tokio::test]
async fn metrics_need_the_configured_bearer_token() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.http.metrics_token = Some("scrape-secret-0123456789".to_owned().into());
    })
    .await;
    let scrape = |auth: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };

    // Act
    let none = scrape(None).await.unwrap();
    let wrong = scrape(Some("Bearer scrape-secret-0123456780"))
        .await
        .unwrap();
    let api_token = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    let right = scrape(Some("Bearer scrape-secret-0123456789"))
        .await
        .unwrap();

    // Assert
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("http_requests_total"));
}

#[tokio::test]
async fn metrics_can_move_to_a_listener_of_their_own() {
    // Arrange
    let app = spawn_app_with(|s| s.http.metrics_listen = Some("127.0.0.1:0".to_owned())).await;
    let metrics_address = app.metrics_address.clone().expect("a metrics port");
    app.get("/api/v1/lists").await.expect(StatusCode::OK);

    // Act
    let on_main = app.client.get(app.url("/metrics")).send().await.unwrap();
    let on_own = app
        .client
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .unwrap();
    let api_on_own = app
        .client
        .get(format!("{metrics_address}/api/v1/lists"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(on_main.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api_on_own.status(),
        StatusCode::NOT_FOUND,
        "only metrics there"
    );
    assert_eq!(on_own.status(), StatusCode::OK);
    assert_security_headers("own metrics listener", on_own.headers());
    assert!(on_own.text().await.unwrap().contains("http_requests_total"));
}
