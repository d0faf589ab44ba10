//! `/api/v1/lists`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_list_is_created_read_updated_and_deleted() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let created = app
        .post(
            "/api/v1/lists",
            json!({"name": " Weekly news ", "description": "Every Friday", "opt_in": "double",
                   "visibility": "public", "tags": ["news", "weekly", "news"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap();
    let fetched = app
        .get(&format!("/api/v1/lists/{id}"))
        .await
        .expect(StatusCode::OK);
    let updated = app
        .patch(
            &format!("/api/v1/lists/{id}"),
            json!({"name": "Friday news", "tags": []}),
        )
        .await
        .expect(StatusCode::OK);
    let all = app.get("/api/v1/lists").await.expect(StatusCode::OK);
    app.delete(&format!("/api/v1/lists/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);

    // Assert
    assert_eq!(created.body["name"], "Weekly news");
    assert_eq!(created.body["tags"], json!(["news", "weekly"]));
    assert_eq!(fetched.body["opt_in"], "double");
    assert_eq!(fetched.body["visibility"], "public");
    assert_eq!(updated.body["name"], "Friday news");
    assert_eq!(
        updated.body["description"], "Every Friday",
        "absent fields are kept"
    );
    assert_eq!(updated.body["tags"], json!([]));
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/v1/lists/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn a_list_reports_its_subscriber_counts_by_status() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "double").await;
    for (email, status) in [
        ("a@x.io", None),
        ("b@x.io", Some("confirmed")),
        ("c@x.io", Some("unsubscribed")),
    ] {
        let mut body = json!({"email": email, "lists": [list]});
        if let Some(status) = status {
            body["list_status"] = json!(status);
        }
        app.create_subscriber(body).await;
    }

    // Act
    let reply = app
        .get(&format!("/api/v1/lists/{list}"))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(
        reply.body["subscriber_counts"],
        json!({"unconfirmed": 1, "confirmed": 1, "unsubscribed": 1, "total": 3})
    );
}

#[tokio::test]
async fn deleting_a_list_keeps_its_subscribers() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    app.create_subscriber(json!({"email": "a@x.io", "lists": [list]}))
        .await;

    app.delete(&format!("/api/v1/lists/{list}"))
        .await
        .expect(StatusCode::NO_CONTENT);

    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM subscriber_lists").await, 0);
}

#[tokio::test]
async fn invalid_list_bodies_are_refused_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "a\nb"}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "ok", "opt_in": "triple"}), "opt_in"),
        (json!({"name": "ok", "visibility": 3}), "visibility"),
        (json!({"name": "ok", "tags": ["", "b"]}), "tags"),
        (
            json!({"name": "ok", "description": "x".repeat(2001)}),
            "description",
        ),
        (json!({"name": "ok", "colour": "red"}), "colour"),
    ] {
        app.post("/api/v1/lists", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/lists");

    let broken = app
        .client
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    let not_json = app
        .client
        .post(&url)
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    let huge = app
        .client
        .post(&url)
        .bearer_auth(&app.token)
        .json(&json!({"name": "big", "description": "x".repeat(2 * 1024 * 1024)}))
        .send()
        .await
        .unwrap();

    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.headers()["content-type"], "application/problem+json");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn unknown_and_malformed_list_ids_are_not_found() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/api/v1/lists/{unknown}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.patch(&format!("/api/v1/lists/{unknown}"), json!({"name": "x"}))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.delete(&format!("/api/v1/lists/{unknown}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.get("/api/v1/lists/not-a-uuid")
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
}
