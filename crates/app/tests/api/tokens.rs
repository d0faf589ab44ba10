//! `/api/v1/tokens`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_works_until_revoked() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let created = app
        .post("/api/v1/tokens", json!({"name": "CRM sync"}))
        .await
        .expect(StatusCode::CREATED);
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    let listed = app.get("/api/v1/tokens").await.expect(StatusCode::OK);
    let with_new = app
        .client
        .get(app.url("/api/v1/lists"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    app.delete(&format!("/api/v1/tokens/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let after_revoke = app
        .client
        .get(app.url("/api/v1/lists"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();

    // Assert
    assert!(secret.starts_with("pst_") && secret.len() > 40);
    assert_eq!(created.body["prefix"], secret[..12]);
    assert!(
        !listed.text.contains(&secret),
        "the list never shows secrets"
    );
    let mine = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(mine["name"], "CRM sync");
    assert!(mine.get("token").is_none());
    assert_eq!(with_new.status(), StatusCode::OK);
    assert_eq!(after_revoke.status(), StatusCode::UNAUTHORIZED);
    let stored_as_sha256 = app
        .count(&format!(
            "SELECT count(*) FROM api_tokens WHERE token_hash = sha256(convert_to('{secret}', 'UTF8'))"
        ))
        .await;
    assert_eq!(
        stored_as_sha256, 1,
        "the secret is stored as its SHA-256 hash"
    );
    let stored_in_clear = app
        .count(&format!(
            "SELECT count(*) FROM api_tokens t WHERE position('{}' in t::text) > 0",
            &secret[12..]
        ))
        .await;
    assert_eq!(stored_in_clear, 0, "no column holds the secret in clear");
    let revoked = app
        .count("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn invalid_token_requests_are_refused() {
    let app = spawn_app().await;
    app.post("/api/v1/tokens", json!({}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "name");
    app.post("/api/v1/tokens", json!({"name": ""}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "name");
    app.delete(&format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn the_last_use_of_a_token_is_recorded() {
    let app = spawn_app().await;
    app.get("/api/v1/lists").await.expect(StatusCode::OK);
    let tokens = app.get("/api/v1/tokens").await.expect(StatusCode::OK);
    assert!(
        tokens.body["items"][0]["last_used_at"].is_string(),
        "{}",
        tokens.text
    );
}
