//! The dashboard's subscriber pages over HTTP: search, pages, export, one
//! subscriber's page, editing, blocklisting, deleting, and who may do it.

use postino_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::dashboard::{Browser, between, location, signed_in};
use crate::helpers::TestApp;
use crate::helpers::spawn_app;

/// `n` subscribers `reader1@example.com` … with names `Reader 1` …
async fn seed_readers(app: &TestApp, n: i32) {
    sqlx::query(
        "INSERT INTO subscribers (uuid, email, name)
         SELECT gen_random_uuid(), 'reader' || i || '@example.com', 'Reader ' || i
         FROM generate_series(1, $1) i",
    )
    .bind(n)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// The subscriber addresses in a page's table, in order.
fn emails(html: &str) -> Vec<String> {
    html.split(r#"<a class="list-name" href="/subscribers/"#)
        .skip(1)
        .map(|part| between(part, "\">", "</a>"))
        .collect()
}

/// The href of the element with `data-testid`, unescaped.
fn link(html: &str, testid: &str) -> Option<String> {
    let at = html.find(&format!(r#"data-testid="{testid}""#))?;
    let start = html[..at].rfind("<a ")?;
    Some(
        between(&html[start..], "href=\"", "\"")
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn subscriber_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM subscribers WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn dashboard_subscribers_search_by_text_list_and_status_returns_the_right_rows() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Customers", "single").await;
    for (email, status, on_list) in [
        ("ann@shop.example", "enabled", Some("confirmed")),
        ("bob@shop.example", "enabled", Some("unsubscribed")),
        ("cid@other.example", "blocklisted", None),
        ("dee@shop.example", "blocklisted", Some("confirmed")),
    ] {
        let mut body = json!({"email": email, "status": status});
        if let Some(list_status) = on_list {
            body["lists"] = json!([list]);
            body["list_status"] = json!(list_status);
        }
        app.create_subscriber(body).await;
    }
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let everyone = viewer.get("/subscribers").await.expect(StatusCode::OK);
    let by_text = viewer
        .get("/subscribers?email=SHOP.example")
        .await
        .expect(StatusCode::OK);
    let by_list = viewer
        .get(&format!("/subscribers?list={list}&list_status=confirmed"))
        .await
        .expect(StatusCode::OK);
    let by_status = viewer
        .get("/subscribers?email=shop&status=blocklisted&list=&created_from=")
        .await
        .expect(StatusCode::OK);
    let by_attributes = viewer
        .get("/subscribers?attributes=%7B%22city%22%3A%22Rome%22%7D")
        .await
        .expect(StatusCode::OK);
    let htmx = viewer
        .client
        .get(format!("{}/subscribers?email=cid", viewer.base))
        .header("hx-request", "true")
        .header("hx-target", "results")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        emails(&everyone.text),
        [
            "ann@shop.example",
            "bob@shop.example",
            "cid@other.example",
            "dee@shop.example"
        ]
    );
    assert_eq!(
        emails(&by_text.text),
        ["ann@shop.example", "bob@shop.example", "dee@shop.example"]
    );
    assert_eq!(
        emails(&by_list.text),
        ["ann@shop.example", "dee@shop.example"]
    );
    assert_eq!(emails(&by_status.text), ["dee@shop.example"]);
    assert!(emails(&by_attributes.text).is_empty());
    assert!(by_attributes.text.contains("No subscribers match"));
    assert!(by_attributes.text.contains("Clear filters"));
    // The filters stay filled in.
    assert!(by_text.text.contains(r#"value="SHOP.example""#));
    // htmx gets the table alone, to swap in under the form.
    assert_eq!(htmx.status(), StatusCode::OK);
    let part = htmx.text().await.unwrap();
    assert!(!part.contains("<html"), "{part}");
    assert_eq!(emails(&part), ["cid@other.example"]);
}

#[tokio::test]
async fn dashboard_subscribers_empty_states_point_to_import_or_clear_the_filters() {
    // Arrange
    let app = spawn_app().await;
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let none = viewer.get("/subscribers").await.expect(StatusCode::OK);
    seed_readers(&app, 3).await;
    let no_match = viewer
        .get("/subscribers?email=nobody")
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(none.text.contains("No subscribers yet"), "{}", none.text);
    assert!(none.text.contains(r#"href="/import""#));
    assert!(none.text.contains("/api/docs"));
    assert!(no_match.text.contains("No subscribers match"));
    assert!(
        no_match
            .text
            .contains(r#"href="/subscribers">Clear filters"#)
    );
}

#[tokio::test]
async fn dashboard_subscribers_bad_filters_are_named_next_to_their_field() {
    // Arrange
    let app = spawn_app().await;
    seed_readers(&app, 3).await;
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let reply = viewer
        .get("/subscribers?attributes=city%3DRome&list_status=confirmed&created_to=31%2F03")
        .await;

    // Assert
    let reply = reply.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.text.contains("Write a JSON object"), "{}", reply.text);
    assert!(reply.text.contains("Choose a list as well"));
    assert!(reply.text.contains("Enter a date such as"));
    assert!(
        reply.text.contains(r#"value="city=Rome""#),
        "what was typed stays"
    );
    assert!(emails(&reply.text).is_empty());
}

#[tokio::test]
async fn dashboard_subscribers_pages_walk_every_row_exactly_once_forward_and_back() {
    // Arrange: 150 people, pages of 50, and a filter that keeps the 70 with
    // a 1 in their number.
    let app = spawn_app().await;
    seed_readers(&app, 150).await;
    let viewer = signed_in(&app, Role::Viewer).await;

    for (start, expected) in [("/subscribers", 150), ("/subscribers?email=1", 70)] {
        // Act: forward by the Next links.
        let mut pages = Vec::new();
        let mut at = Some(start.to_owned());
        while let Some(path) = at {
            let page = viewer.get(&path).await.expect(StatusCode::OK);
            at = link(&page.text, "page-next");
            pages.push((path, page.text));
            assert!(pages.len() < 10, "the pages never end");
        }
        // And back by the Previous links from the last page.
        let mut back = Vec::new();
        let mut at = link(&pages.last().unwrap().1, "page-previous");
        while let Some(path) = at {
            let page = viewer.get(&path).await.expect(StatusCode::OK);
            at = link(&page.text, "page-previous");
            back.push(emails(&page.text));
            assert!(back.len() < 10, "the pages never end");
        }

        // Assert
        let forward: Vec<Vec<String>> = pages.iter().map(|(_, html)| emails(html)).collect();
        let all: Vec<String> = forward.concat();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(all.len(), expected, "{start}: every row once");
        assert_eq!(unique.len(), expected, "{start}: no row twice");
        assert!(forward.iter().all(|p| p.len() <= 50));
        assert!(
            link(&pages[0].1, "page-previous").is_none(),
            "no way before the first page"
        );
        back.reverse();
        assert_eq!(
            back,
            forward[..forward.len() - 1],
            "{start}: paging back shows the same pages"
        );
        assert!(
            pages
                .iter()
                .skip(1)
                .all(|(path, _)| path.contains("email=1") == (expected == 70)),
            "the filter is kept on every page"
        );
    }
}

#[tokio::test]
async fn dashboard_subscribers_export_is_a_csv_of_the_filtered_rows() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Customers", "single").await;
    app.create_subscriber(json!({
        "email": "ann@shop.example", "name": "Ann", "attributes": {"city": "Rome"}, "lists": [list]
    }))
    .await;
    app.create_subscriber(json!({"email": "bob@shop.example", "lists": [list]}))
        .await;
    app.create_subscriber(json!({"email": "cid@other.example"}))
        .await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let page = viewer
        .get(&format!("/subscribers?list={list}&email=ann"))
        .await
        .expect(StatusCode::OK);

    // Act: the page's own link.
    let href = link(&page.text, "export-csv").unwrap();
    let csv = viewer.get(&href).await.expect(StatusCode::OK);
    let everyone = viewer
        .get("/subscribers/export.csv")
        .await
        .expect(StatusCode::OK);
    let signed_out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/subscribers/export.csv"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        href,
        format!("/subscribers/export.csv?email=ann&list={list}")
    );
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers["content-disposition"],
        "attachment; filename=\"subscribers.csv\""
    );
    assert_eq!(
        csv.text,
        "email,name,attributes\nann@shop.example,Ann,\"{\"\"city\"\":\"\"Rome\"\"}\"\n"
    );
    assert_eq!(everyone.text.lines().count(), 4, "{}", everyone.text);
    assert_eq!(
        signed_out.status(),
        StatusCode::SEE_OTHER,
        "no export without a session"
    );
}

#[tokio::test]
async fn dashboard_subscribers_a_subscriber_page_shows_lists_deliveries_and_bounces() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Weekly news", "double").await;
    let created = app
        .create_subscriber(json!({
            "email": "ann@shop.example", "name": "Ann Example",
            "attributes": {"city": "Rome", "plan": {"tier": "pro"}},
            "lists": [list], "list_status": "confirmed"
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    for sql in [
        "INSERT INTO campaigns (uuid, name, subject, from_email, body, body_format, status)
         VALUES (gen_random_uuid(), 'Autumn newsletter', 'Autumn', 'news@example.com', 'Hi', 'markdown', 'finished')",
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, attempts, last_code, last_reply, sent_at)
         SELECT c.id, s.id, 'failed', 2, 550, '5.1.1 mailbox unavailable', NULL FROM campaigns c, subscribers s",
        "INSERT INTO bounces (subscriber_id, campaign_id, delivery_id, kind, source, code, reply)
         SELECT s.id, c.id, d.id, 'hard', 'smtp', 550, '5.1.1 mailbox unavailable'
         FROM campaigns c, subscribers s, deliveries d",
        "INSERT INTO subscription_events (subscriber_id, list_id, campaign_id, kind, source)
         SELECT s.id, l.id, c.id, 'unsubscribed', 'one-click' FROM campaigns c, subscribers s, lists l",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let page = viewer
        .get(&format!("/subscribers/{id}"))
        .await
        .expect(StatusCode::OK);
    let missing = viewer
        .get("/subscribers/00000000-0000-0000-0000-000000000000")
        .await;

    // Assert
    let memberships = between(&page.text, r#"data-testid="memberships""#, "</table>");
    assert!(memberships.contains("Weekly news") && memberships.contains("confirmed"));
    let deliveries = between(&page.text, r#"data-testid="deliveries""#, "</table>");
    assert!(deliveries.contains("Autumn newsletter"), "{deliveries}");
    assert!(deliveries.contains("failed") && deliveries.contains("2 attempts"));
    assert!(deliveries.contains("550 5.1.1 mailbox unavailable"));
    let bounces = between(&page.text, r#"data-testid="bounces""#, "</table>");
    assert!(bounces.contains("hard") && bounces.contains("550 5.1.1 mailbox unavailable"));
    let events = between(&page.text, r#"data-testid="events""#, "</table>");
    assert!(events.contains("Unsubscribed") && events.contains("one-click"));
    let attributes = between(&page.text, r#"data-testid="attributes""#, "</dl>");
    assert!(attributes.contains("Rome"), "{attributes}");
    assert!(
        attributes.contains("{&quot;tier&quot;:&quot;pro&quot;}")
            || attributes.contains(r#"{&#34;tier&#34;:&#34;pro&#34;}"#),
        "{attributes}"
    );
    assert!(page.text.contains("Ann Example"));
    missing.expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dashboard_subscribers_an_edit_is_saved_and_bad_attributes_are_shown_again_unsaved() {
    // Arrange
    let app = spawn_app().await;
    app.create_subscriber(json!({"email": "taken@example.com"}))
        .await;
    let created = app
        .create_subscriber(json!({"email": "ann@example.com", "name": "Ann"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    let path = format!("/subscribers/{id}");

    // Act
    let bad = editor
        .post(
            &path,
            &[
                ("csrf_token", &csrf),
                ("email", "ann.new@example.com"),
                ("name", "Ann New"),
                ("attributes", "{city: Rome}"),
            ],
        )
        .await;
    let taken = editor
        .post(
            &path,
            &[
                ("csrf_token", &csrf),
                ("email", "TAKEN@example.com"),
                ("name", "Ann"),
                ("attributes", ""),
            ],
        )
        .await;

    // Assert
    let bad = bad.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text.contains(r#"data-testid="attributes-error""#),
        "{}",
        bad.text
    );
    assert!(bad.text.contains("not valid JSON (line 1, column 2)"));
    assert!(
        bad.text.contains(">{city: Rome}</textarea>"),
        "what was typed stays"
    );
    assert!(bad.text.contains(r#"value="ann.new@example.com""#));
    let taken = taken.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        taken
            .text
            .contains("Another subscriber already has this address")
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM subscribers WHERE email = 'ann@example.com' AND name = 'Ann'"
        )
        .await,
        1,
        "nothing was written"
    );
    // Act and assert: a good form is saved.
    let good = editor
        .post(
            &path,
            &[
                ("csrf_token", &csrf),
                ("email", "ann.new@example.com"),
                ("name", "Ann New"),
                ("attributes", r#"{"city": "Rome", "vip": true}"#),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&good), format!("{path}?notice=saved"));
    let stored = app.get(&format!("/api/v1/subscribers/{id}")).await;
    assert_eq!(stored.body["email"], "ann.new@example.com");
    assert_eq!(stored.body["name"], "Ann New");
    assert_eq!(
        stored.body["attributes"],
        json!({"city": "Rome", "vip": true})
    );
    let shown = editor
        .get(&format!("{path}?notice=saved"))
        .await
        .expect(StatusCode::OK);
    assert!(shown.text.contains("Your changes were saved."));
}

#[tokio::test]
async fn dashboard_subscribers_lists_blocklisting_and_deleting_change_the_database() {
    // Arrange
    let app = spawn_app().await;
    let news = app.create_list("News", "single").await;
    let offers = app.create_list("Offers", "double").await;
    let created = app
        .create_subscriber(json!({"email": "ann@example.com", "lists": [news]}))
        .await;
    let id = created["id"].as_str().unwrap();
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    let token = [("csrf_token", csrf.as_str())];
    let status_on = |list: &'static str| {
        format!(
            "SELECT count(*) FROM subscriber_lists sl JOIN lists l ON l.id = sl.list_id
             WHERE l.name = '{list}' AND sl.status = "
        )
    };

    // Act and assert: add to a list with its default status.
    let page = editor
        .get(&format!("/subscribers/{id}"))
        .await
        .expect(StatusCode::OK);
    assert!(page.text.contains(r#"data-testid="add-to-list""#));
    editor
        .post(
            &format!("/subscribers/{id}/lists"),
            &[("csrf_token", &csrf), ("list", &offers), ("status", "")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(app.count(&(status_on("Offers") + "'unconfirmed'")).await, 1);

    // Unsubscribe from one list, remove from the other.
    editor
        .post(
            &format!("/subscribers/{id}/lists/{news}/unsubscribe"),
            &token,
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(app.count(&(status_on("News") + "'unsubscribed'")).await, 1);
    editor
        .post(&format!("/subscribers/{id}/lists/{offers}/remove"), &token)
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists sl JOIN lists l ON l.id = sl.list_id WHERE l.name = 'Offers'")
            .await,
        0
    );

    // Blocklist, then enable again.
    editor
        .post(
            &format!("/subscribers/{id}/lists"),
            &[
                ("csrf_token", &csrf),
                ("list", &offers),
                ("status", "confirmed"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let blocked = editor
        .post(
            &format!("/subscribers/{id}/status"),
            &[("csrf_token", &csrf), ("status", "blocklisted")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        location(&blocked),
        format!("/subscribers/{id}?notice=blocklisted")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE status = 'blocklisted'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists WHERE status <> 'unsubscribed'")
            .await,
        0,
        "blocklisting unsubscribes from every list"
    );
    let page = editor.get(location(&blocked)).await.expect(StatusCode::OK);
    assert!(page.text.contains(r#"data-testid="unblocklist""#));
    editor
        .post(
            &format!("/subscribers/{id}/status"),
            &[("csrf_token", &csrf), ("status", "enabled")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE status = 'enabled'")
            .await,
        1
    );

    // Delete, and land on the table with a notice.
    let deleted = editor
        .post(&format!("/subscribers/{id}/delete"), &token)
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/subscribers?notice=deleted");
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscriber_lists").await, 0);
    let table = editor.get(location(&deleted)).await.expect(StatusCode::OK);
    assert!(table.text.contains("The subscriber was deleted"));
    editor
        .post(&format!("/subscribers/{id}/delete"), &token)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dashboard_subscribers_a_viewer_sees_no_controls_and_every_change_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let created = app
        .create_subscriber(json!({"email": "ann@example.com", "name": "Ann", "lists": [list]}))
        .await;
    let id = created["id"].as_str().unwrap();
    let viewer = signed_in(&app, Role::Viewer).await;
    let csrf = viewer.csrf_token().await;

    // Act
    let page = viewer
        .get(&format!("/subscribers/{id}"))
        .await
        .expect(StatusCode::OK);
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/subscribers/{id}"),
            vec![
                ("email", "x@example.com"),
                ("name", "X"),
                ("attributes", ""),
            ],
        ),
        (
            format!("/subscribers/{id}/status"),
            vec![("status", "blocklisted")],
        ),
        (
            format!("/subscribers/{id}/lists"),
            vec![("list", list.as_str()), ("status", "")],
        ),
        (
            format!("/subscribers/{id}/lists/{list}/unsubscribe"),
            vec![],
        ),
        (format!("/subscribers/{id}/lists/{list}/remove"), vec![]),
        (format!("/subscribers/{id}/delete"), vec![]),
        (
            "/subscribers/bulk".to_owned(),
            vec![("ids", id), ("action", "delete"), ("list", "")],
        ),
    ];

    // Assert
    assert!(page.text.contains("ann@example.com"));
    let table = viewer.get("/subscribers").await.expect(StatusCode::OK);
    assert!(
        !table.text.contains("bulk-form"),
        "a viewer gets no bulk form"
    );
    for control in ["edit-subscriber", "blocklist", "delete", "add-to-list"] {
        assert!(
            !page.text.contains(&format!(r#"data-testid="{control}""#)),
            "a viewer sees {control}"
        );
    }
    assert!(
        !page.text.contains("/unsubscribe\""),
        "no membership buttons"
    );
    for (path, mut fields) in posts {
        fields.push(("csrf_token", &csrf));
        viewer
            .post(&path, &fields)
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    let stored = app.get(&format!("/api/v1/subscribers/{id}")).await;
    assert_eq!(stored.body["email"], "ann@example.com");
    assert_eq!(stored.body["status"], "enabled");
    assert_eq!(stored.body["lists"][0]["status"], "confirmed");
}

#[tokio::test]
async fn dashboard_subscribers_a_change_without_the_csrf_token_is_refused() {
    // Arrange
    let app = spawn_app().await;
    app.create_subscriber(json!({"email": "ann@example.com"}))
        .await;
    let id = subscriber_id(&app, "ann@example.com").await;
    let editor: Browser = signed_in(&app, Role::Editor).await;

    // Act
    let blocklist = editor
        .post(
            &format!("/subscribers/{id}/status"),
            &[("status", "blocklisted")],
        )
        .await;
    let delete = editor
        .post(
            &format!("/subscribers/{id}/delete"),
            &[("csrf_token", "forged")],
        )
        .await;

    // Assert
    blocklist.expect(StatusCode::FORBIDDEN);
    delete.expect(StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE status = 'enabled'")
            .await,
        1
    );
}

#[tokio::test]
async fn dashboard_subscribers_ticked_rows_are_changed_in_bulk_and_the_search_is_kept() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    seed_readers(&app, 5).await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    let table = editor
        .get("/subscribers?email=reader")
        .await
        .expect(StatusCode::OK);
    assert!(table.text.contains(r#"data-testid="bulk-form""#));
    let back = between(&table.text, r#"name="back" value=""#, "\"");
    let (one, two, three) = (
        subscriber_id(&app, "reader1@example.com").await,
        subscriber_id(&app, "reader2@example.com").await,
        subscriber_id(&app, "reader3@example.com").await,
    );
    let bulk = |action: &'static str, ids: Vec<String>, list: String| {
        let mut fields = vec![
            ("csrf_token".to_owned(), csrf.clone()),
            ("back".to_owned(), back.clone()),
            ("action".to_owned(), action.to_owned()),
            ("list".to_owned(), list),
        ];
        fields.extend(ids.into_iter().map(|id| ("ids".to_owned(), id)));
        let client = editor.client.clone();
        let url = format!("{}/subscribers/bulk", editor.base);
        async move { client.post(url).form(&fields).send().await.unwrap() }
    };

    // Act
    let added = bulk("add_to_list", vec![one.clone(), two.clone()], list.clone()).await;
    let blocked = bulk("blocklist", vec![two.clone(), three.clone()], String::new()).await;
    let no_list = bulk("remove_from_list", vec![one.clone()], String::new()).await;
    let deleted = bulk("delete", vec![one.clone(), three.clone()], String::new()).await;
    let none = bulk("delete", Vec::new(), String::new()).await;

    // Assert
    for (reply, to) in [
        (
            &added,
            "/subscribers?email=reader&notice=bulk-added&affected=2",
        ),
        (
            &blocked,
            "/subscribers?email=reader&notice=bulk-blocklisted&affected=2",
        ),
        (&no_list, "/subscribers?email=reader&notice=choose-list"),
        (
            &deleted,
            "/subscribers?email=reader&notice=bulk-deleted&affected=2",
        ),
        (&none, "/subscribers?email=reader&notice=none-ticked"),
    ] {
        assert_eq!(reply.status(), StatusCode::SEE_OTHER);
        assert_eq!(reply.headers()["location"], to);
    }
    let remaining: Vec<String> =
        sqlx::query_scalar("SELECT email || ':' || status FROM subscribers ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        remaining,
        [
            "reader2@example.com:blocklisted",
            "reader4@example.com:enabled",
            "reader5@example.com:enabled"
        ]
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists WHERE status = 'unsubscribed'")
            .await,
        1,
        "the blocklisted member of News is unsubscribed from it"
    );
    let page = editor
        .get("/subscribers?email=reader&notice=bulk-deleted&affected=2")
        .await
        .expect(StatusCode::OK);
    assert!(
        page.text.contains("2 subscribers were deleted."),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn dashboard_subscribers_an_editor_adds_one_person_to_lists_and_a_taken_address_is_named() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let weekly = app.create_list("Weekly", "single").await;
    let news = app.create_list("News", "double").await;
    let csrf = editor.csrf_token().await;
    let form = editor.get("/subscribers/new").await.expect(StatusCode::OK);
    assert!(form.text.contains("double opt-in"), "{}", form.text);

    // Act
    let added = editor
        .post(
            "/subscribers",
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "ada@example.com"),
                ("name", "Ada Lovelace"),
                ("lists", weekly.as_str()),
                ("lists", news.as_str()),
                ("attributes", r#"{"city": "London"}"#),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let taken = editor
        .post(
            "/subscribers",
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "ada@example.com"),
                ("lists", weekly.as_str()),
            ],
        )
        .await
        .expect(StatusCode::CONFLICT);
    let bad = editor
        .post(
            "/subscribers",
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "grace@example.com"),
                ("attributes", "{city: London}"),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // Assert: on both lists, each with its list's default status.
    assert!(location(&added).ends_with("?notice=created"));
    let page = editor.get(location(&added)).await.expect(StatusCode::OK);
    assert!(page.text.contains("The subscriber was added."));
    let statuses: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.name, sl.status FROM subscriber_lists sl JOIN lists l ON l.id = sl.list_id
         JOIN subscribers s ON s.id = sl.subscriber_id WHERE s.email = 'ada@example.com' ORDER BY l.name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [
            ("News".to_owned(), "unconfirmed".to_owned()),
            ("Weekly".to_owned(), "confirmed".to_owned())
        ]
    );
    let city: String = sqlx::query_scalar(
        "SELECT attributes->>'city' FROM subscribers WHERE email = 'ada@example.com'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(city, "London");
    assert!(taken.text.contains("already in Postino"), "{}", taken.text);
    assert!(bad.text.contains("not valid JSON"), "{}", bad.text);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 1);
}

#[tokio::test]
async fn dashboard_subscribers_a_viewer_downloads_everything_held_on_one_person() {
    // Arrange
    let app = spawn_app().await;
    let created = app
        .create_subscriber(
            json!({"email": "ada@example.com", "name": "Ada", "attributes": {"city": "London"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let page = viewer
        .get(&format!("/subscribers/{id}"))
        .await
        .expect(StatusCode::OK);
    let download = viewer
        .get(&format!("/subscribers/{id}/export.json"))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(
        page.text
            .contains(&format!("/subscribers/{id}/export.json"))
    );
    assert_eq!(
        download.headers["content-disposition"],
        format!("attachment; filename=\"subscriber-{id}.json\"")
    );
    assert_eq!(download.body["subscriber"]["email"], "ada@example.com");
    assert_eq!(download.body["subscriber"]["attributes"]["city"], "London");
}

#[tokio::test]
async fn dashboard_subscribers_a_lists_total_leads_to_its_members() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Weekly", "single").await;
    app.create_subscriber(json!({"email": "on@example.com", "lists": [list]}))
        .await;
    app.create_subscriber(json!({"email": "off@example.com"}))
        .await;
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let lists = viewer.get("/lists").await.expect(StatusCode::OK);
    let members = link(&lists.text, "list-members").unwrap();
    let shown = viewer.get(&members).await.expect(StatusCode::OK);

    // Assert
    assert_eq!(members, format!("/subscribers?list={list}"));
    assert_eq!(emails(&shown.text), ["on@example.com"]);
}
