//! `/api/v1/subscribers`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn membership_status(app: &TestApp, subscriber: &str, list: &str) -> Option<String> {
    let reply = app
        .get(&format!("/api/v1/subscribers/{subscriber}"))
        .await
        .expect(StatusCode::OK);
    reply.body["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == list)
        .map(|m| m["status"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_subscriber_is_created_with_a_normalised_address_and_list_defaults() {
    // Arrange
    let app = spawn_app().await;
    let single = app.create_list("Single", "single").await;
    let double = app.create_list("Double", "double").await;

    // Act
    let created = app
        .create_subscriber(json!({
            "email": " Jane.Doe@Bücher.DE ", "name": "Jane", "attributes": {"city": "Rome", "vip": true},
            "lists": [single, double]
        }))
        .await;

    // Assert
    assert_eq!(created["email"], "Jane.Doe@xn--bcher-kva.de");
    assert_eq!(created["attributes"], json!({"city": "Rome", "vip": true}));
    assert_eq!(created["status"], "enabled");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        membership_status(&app, id, &single).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        membership_status(&app, id, &double).await.as_deref(),
        Some("unconfirmed")
    );
}

#[tokio::test]
async fn a_duplicate_address_in_any_case_is_a_conflict() {
    let app = spawn_app().await;
    app.create_subscriber(json!({"email": "jane@example.com"}))
        .await;

    app.post("/api/v1/subscribers", json!({"email": "JANE@EXAMPLE.COM"}))
        .await
        .expect_problem(StatusCode::CONFLICT, "email");

    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 1);
}

#[tokio::test]
async fn invalid_subscriber_bodies_are_refused_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    for (body, field) in [
        (json!({"name": "No address"}), "email"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": "a@b"}), "email"),
        (json!({"email": 42}), "email"),
        (
            json!({"email": "a@b.co", "name": "Jane\r\nBcc: x@y.z"}),
            "name",
        ),
        (
            json!({"email": "a@b.co", "attributes": [1, 2]}),
            "attributes",
        ),
        (json!({"email": "a@b.co", "status": "deleted"}), "status"),
        (json!({"email": "a@b.co", "lists": ["nope"]}), "lists[0]"),
        (
            json!({"email": "a@b.co", "lists": [list, uuid::Uuid::new_v4()]}),
            "lists[1]",
        ),
        (
            json!({"email": "a@b.co", "list_status": "maybe"}),
            "list_status",
        ),
    ] {
        app.post("/api/v1/subscribers", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
}

#[tokio::test]
async fn a_subscriber_is_updated_and_deleted() {
    let app = spawn_app().await;
    let s = app
        .create_subscriber(json!({"email": "a@x.io", "name": "A", "attributes": {"k": 1}}))
        .await;
    let id = s["id"].as_str().unwrap();

    let updated = app
        .patch(
            &format!("/api/v1/subscribers/{id}"),
            json!({"email": "b@X.io", "attributes": {"z": 2}}),
        )
        .await
        .expect(StatusCode::OK);
    app.patch(
        &format!("/api/v1/subscribers/{id}"),
        json!({"email": "bad"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "email");
    app.delete(&format!("/api/v1/subscribers/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);

    assert_eq!(updated.body["email"], "b@x.io");
    assert_eq!(updated.body["name"], "A");
    assert_eq!(updated.body["attributes"], json!({"z": 2}));
    app.get(&format!("/api/v1/subscribers/{id}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.delete(&format!("/api/v1/subscribers/{id}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.patch(&format!("/api/v1/subscribers/{id}"), json!({"name": "B"}))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn changing_an_address_to_a_taken_one_is_a_conflict() {
    let app = spawn_app().await;
    app.create_subscriber(json!({"email": "a@x.io"})).await;
    let b = app.create_subscriber(json!({"email": "b@x.io"})).await;
    app.patch(
        &format!("/api/v1/subscribers/{}", b["id"].as_str().unwrap()),
        json!({"email": "A@x.io"}),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "email");
}

#[tokio::test]
async fn blocklisting_a_subscriber_unsubscribes_them_everywhere() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let s = app
        .create_subscriber(json!({"email": "a@x.io", "lists": [list]}))
        .await;
    let id = s["id"].as_str().unwrap();

    app.patch(
        &format!("/api/v1/subscribers/{id}"),
        json!({"status": "blocklisted"}),
    )
    .await
    .expect(StatusCode::OK);

    assert_eq!(
        membership_status(&app, id, &list).await.as_deref(),
        Some("unsubscribed")
    );
}

#[tokio::test]
async fn memberships_are_added_without_overriding_an_unsubscribe_and_removed() {
    // Arrange
    let app = spawn_app().await;
    let news = app.create_list("News", "single").await;
    let offers = app.create_list("Offers", "double").await;
    let s = app
        .create_subscriber(
            json!({"email": "a@x.io", "lists": [news], "list_status": "unsubscribed"}),
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/api/v1/subscribers/{id}/lists");

    // Act: add without a status: the unsubscribe stands, the new list gets its default.
    app.post(&path, json!({"lists": [news, offers]}))
        .await
        .expect(StatusCode::OK);
    let news_after_plain_add = membership_status(&app, id, &news).await;
    let offers_after_plain_add = membership_status(&app, id, &offers).await;
    // With an explicit status, it is written.
    app.post(&path, json!({"lists": [news], "status": "confirmed"}))
        .await
        .expect(StatusCode::OK);
    let news_after_explicit = membership_status(&app, id, &news).await;
    app.delete(&format!("{path}/{offers}"))
        .await
        .expect(StatusCode::NO_CONTENT);

    // Assert
    assert_eq!(news_after_plain_add.as_deref(), Some("unsubscribed"));
    assert_eq!(offers_after_plain_add.as_deref(), Some("unconfirmed"));
    assert_eq!(news_after_explicit.as_deref(), Some("confirmed"));
    assert_eq!(membership_status(&app, id, &offers).await, None);
    app.delete(&format!("{path}/{offers}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.delete(&format!("{path}/{}", uuid::Uuid::new_v4()))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.delete(&format!(
        "/api/v1/subscribers/{}/lists/{news}",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect_problem(StatusCode::NOT_FOUND, "");
    app.post(&path, json!({"lists": []}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "lists");
    app.post(&path, json!({"lists": [uuid::Uuid::new_v4()]}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "lists[0]");
    app.post(
        &format!("/api/v1/subscribers/{}/lists", uuid::Uuid::new_v4()),
        json!({"lists": [news]}),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "");
}

async fn seed_search_data(app: &TestApp) -> (String, String) {
    let news = app.create_list("News", "single").await;
    let other = app.create_list("Other", "single").await;
    for (email, city, lists, status) in [
        ("anna@rome.example", "Rome", vec![&news], "enabled"),
        ("bruno@rome.example", "Rome", vec![&news, &other], "enabled"),
        ("carla@oslo.example", "Oslo", vec![&news], "blocklisted"),
        ("dario@oslo.example", "Oslo", vec![&other], "enabled"),
        ("ellen_100%@lima.example", "Lima", vec![], "enabled"),
    ] {
        app.create_subscriber(
            json!({"email": email, "attributes": {"city": city}, "lists": lists, "status": status}),
        )
        .await;
    }
    (news, other)
}

#[tokio::test]
async fn search_filters_by_list_status_email_attributes_and_date() {
    // Arrange
    let app = spawn_app().await;
    let (news, _other) = seed_search_data(&app).await;
    let search = |query: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/subscribers?{query}"))
                .await
                .expect(StatusCode::OK)
                .body
        }
    };
    let attrs = |json: &str| format!("attributes={}", urlencode(json));

    // Act / Assert
    assert_eq!(emails(&search(format!("list={news}")).await).len(), 3);
    assert_eq!(
        emails(&search("status=blocklisted".into()).await),
        ["carla@oslo.example"]
    );
    assert_eq!(
        emails(&search("email=ROME".into()).await),
        ["anna@rome.example", "bruno@rome.example"]
    );
    assert_eq!(
        emails(&search(format!("email={}", urlencode("_100%"))).await),
        ["ellen_100%@lima.example"]
    );
    assert_eq!(
        emails(&search("email=_".into()).await),
        ["ellen_100%@lima.example"],
        "_ is literal"
    );
    assert_eq!(
        emails(&search(attrs(r#"{"city":"Oslo"}"#)).await),
        ["carla@oslo.example", "dario@oslo.example"]
    );
    assert_eq!(
        emails(
            &search(format!(
                "list={news}&{}&status=enabled",
                attrs(r#"{"city":"Oslo"}"#)
            ))
            .await
        )
        .len(),
        0
    );
    assert_eq!(
        emails(&search("created_after=2000-01-01T00:00:00Z".into()).await).len(),
        5
    );
    assert_eq!(
        emails(&search("created_before=2000-01-01T00:00:00Z".into()).await).len(),
        0
    );
    assert_eq!(
        emails(&search(format!("list={news}&list_status=confirmed&status=enabled")).await),
        ["anna@rome.example", "bruno@rome.example"]
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn search_rejects_bad_parameters_naming_them() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("status=gone", "status"),
        ("list=not-a-uuid", "list"),
        ("attributes=%5B1%5D", "attributes"),
        ("attributes=nojson", "attributes"),
        ("created_after=yesterday", "created_after"),
        ("sort=email", "sort"),
    ] {
        app.get(&format!("/api/v1/subscribers?{query}"))
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let list = uuid::Uuid::new_v4();
    app.get(&format!("/api/v1/subscribers?list={list}"))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "list");
}

#[tokio::test]
async fn cursor_pagination_visits_every_match_once_in_order() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let list_id: i64 = sqlx::query_scalar("SELECT id FROM lists")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    postino_db::seed::generated_subscribers(&mut conn, list_id, 250, "p", "example.com")
        .await
        .unwrap();
    drop(conn);

    // Act
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/subscribers?list={list}&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path).await.expect(StatusCode::OK).body;
        pages += 1;
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }

    // Assert
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let expected: Vec<String> = (1..=250).map(|n| format!("p{n}@example.com")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bulk_actions_apply_by_ids_or_by_filter() {
    // Arrange
    let app = spawn_app().await;
    let (news, other) = seed_search_data(&app).await;
    let ids_of = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    let rome = ids_of(&app.get("/api/v1/subscribers?email=rome").await.body);

    // Act / Assert: add by filter keeps existing memberships.
    let added = app
        .post(
            "/api/v1/subscribers/bulk",
            json!({"action": "add_to_list", "filter": {"attributes": {"city": "Oslo"}}, "list": news}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        added.body["affected"], 1,
        "carla was on the list already; dario is added"
    );

    let removed = app
        .post(
            "/api/v1/subscribers/bulk",
            json!({"action": "remove_from_list", "ids": rome, "list": other}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(removed.body["affected"], 1);

    let blocked = app
        .post(
            "/api/v1/subscribers/bulk",
            json!({"action": "blocklist", "filter": {"list": news, "email": "rome"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(blocked.body["affected"], 2);
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists sl JOIN subscribers s ON s.id = sl.subscriber_id WHERE s.email LIKE '%rome%' AND sl.status <> 'unsubscribed'")
            .await,
        0,
        "blocklisting unsubscribes"
    );

    let deleted = app
        .post(
            "/api/v1/subscribers/bulk",
            json!({"action": "delete", "filter": {"status": "blocklisted"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(deleted.body["affected"], 3);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 2);
}

#[tokio::test]
async fn bulk_requests_that_are_ambiguous_or_unbounded_are_refused() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    app.create_subscriber(json!({"email": "a@x.io"})).await;
    let id = uuid::Uuid::new_v4();
    for (body, field) in [
        (json!({"action": "delete"}), "ids"),
        (
            json!({"action": "delete", "ids": [id], "filter": {"status": "enabled"}}),
            "ids",
        ),
        (json!({"action": "delete", "ids": []}), "ids"),
        (json!({"action": "delete", "filter": {}}), "filter"),
        (json!({"action": "add_to_list", "ids": [id]}), "list"),
        (
            json!({"action": "blocklist", "ids": [id], "list": list}),
            "list",
        ),
        (
            json!({"action": "delete", "ids": [id], "status": "confirmed"}),
            "status",
        ),
        (json!({"action": "explode", "ids": [id]}), "action"),
        (
            json!({"action": "delete", "filter": {"list": uuid::Uuid::new_v4()}}),
            "filter.list",
        ),
        (
            json!({"action": "delete", "filter": {"list_status": "confirmed"}}),
            "filter.list_status",
        ),
    ] {
        app.post("/api/v1/subscribers/bulk", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let too_many: Vec<String> = (0..10_001)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    app.post(
        "/api/v1/subscribers/bulk",
        json!({"action": "delete", "ids": too_many}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "ids");
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 1);
}

#[tokio::test]
async fn everything_held_on_a_subscriber_is_exported_and_erased() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let s = app
        .create_subscriber(json!({"email": "a@x.io", "name": "Ada", "attributes": {"plan": "pro"}, "lists": [list]}))
        .await;
    let id = s["id"].as_str().unwrap();

    // Act
    let export = app
        .get(&format!("/api/v1/subscribers/{id}/export"))
        .await
        .expect(StatusCode::OK);
    let erased = app
        .post(&format!("/api/v1/subscribers/{id}/erase"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert_eq!(export.body["subscriber"]["email"], "a@x.io");
    assert_eq!(
        export.body["subscriber"]["attributes"],
        json!({"plan": "pro"})
    );
    assert_eq!(export.body["subscriber"]["lists"][0]["name"], "News");
    assert!(export.body["exported_at"].is_string());
    assert_eq!(erased.body["id"], id);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscriber_lists").await, 0);
    app.get(&format!("/api/v1/subscribers/{id}/export"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    app.post(&format!("/api/v1/subscribers/{id}/erase"), json!({}))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn a_nul_character_is_refused_naming_the_field_and_nothing_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "a@example.com", "attributes": {"city": "Ro\u{0}me"}}),
            "attributes",
        ),
        (
            json!({"email": "a@example.com", "attributes": {"ci\u{0}ty": "Rome"}}),
            "attributes",
        ),
        (
            json!({"email": "a@example.com", "attributes": {"a": {"b": ["ok", {"c": "x\u{0}"}]}}}),
            "attributes",
        ),
        (
            json!({"email": "a@example.com", "name": "Ann\u{0}Lee"}),
            "name",
        ),
        (json!({"email": "a\u{0}b@example.com"}), "email"),
    ];

    // Act and assert
    for (body, field) in cases {
        let reply = app
            .post("/api/v1/subscribers", body.clone())
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
        assert!(reply.text.contains("NUL"), "{body}: {}", reply.text);
    }
    let nested = app
        .post(
            "/api/v1/subscribers",
            json!({"email": "a@example.com", "attributes": {"a": {"b": ["ok", {"c": "x\u{0}"}]}}}),
        )
        .await;
    assert!(
        nested.text.contains(r#"\"a\".\"b\"[1].\"c\""#),
        "{}",
        nested.text
    );
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
    // The same values without the NUL are fine.
    app.post(
        "/api/v1/subscribers",
        json!({"email": "a@example.com", "name": "Ann Lee", "attributes": {"a": {"b": ["ok"]}}}),
    )
    .await
    .expect(StatusCode::CREATED);
}
