//! Operations endpoints and the API documentation.

use reqwest::StatusCode;

use crate::helpers::{Reply, spawn_app};

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
