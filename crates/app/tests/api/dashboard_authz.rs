//! Every changing dashboard route, read from the route table itself, is
//! refused to a viewer, and every settings page to anyone but an admin. A
//! route added later is covered without touching this file.

use postino_domain::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::dashboard::signed_in;
use crate::helpers::spawn_app;

/// The dashboard's route tables, as written.
const TABLES: [&str; 2] = [
    include_str!("../../../web/src/dashboard/mod.rs"),
    include_str!("../../../web/src/dashboard/settings/mod.rs"),
];

/// Routes any signed-in user, or anyone, may post to.
const OPEN_TO_ALL: [&str; 2] = ["/login", "/logout"];

/// `(path, methods)` for each `.route(...)` in the table: the path is the
/// first string literal, the methods the `get(`/`post(` calls before the
/// next route.
fn routes() -> Vec<(String, Vec<&'static str>)> {
    TABLES
        .iter()
        .flat_map(|table| table.split(".route(").skip(1))
        .filter_map(|chunk| {
            let start = chunk.find('"')? + 1;
            let len = chunk[start..].find('"')?;
            let path = chunk[start..start + len].to_owned();
            let methods = ["get(", "post("]
                .into_iter()
                .filter(|m| chunk.contains(m))
                .map(|m| m.trim_end_matches('('))
                .collect();
            Some((path, methods))
        })
        .collect()
}

/// A path with its `{id}`s filled in by ids nobody has: the role is checked
/// before anything is looked up, so a refusal never says whether an id
/// exists.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/').skip(1) {
        out.push('/');
        if segment.starts_with('{') {
            out.push_str(&Uuid::new_v4().to_string());
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// What the tables hold, to see that nothing changed.
async fn snapshot(app: &crate::helpers::TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "lists",
        "subscribers",
        "campaigns",
        "templates",
        "imports",
        "smtp_servers",
        "dkim_keys",
        "domain_limits",
        "api_tokens",
        "users",
    ] {
        counts.push(app.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

#[test]
fn the_route_table_is_read() {
    let routes = routes();
    assert!(
        routes
            .iter()
            .any(|(p, m)| p == "/lists" && m.contains(&"post"))
    );
    assert!(
        routes
            .iter()
            .any(|(p, m)| p == "/campaigns/{id}/status" && m == &["post"])
    );
    assert!(routes.iter().any(|(p, m)| p == "/" && m == &["get"]));
    assert!(
        routes
            .iter()
            .any(|(p, m)| p == "/settings/users/{id}/role" && m == &["post"])
    );
}

#[tokio::test]
async fn dashboard_a_viewer_can_change_nothing_through_any_route() {
    // Arrange
    let app = spawn_app().await;
    app.create_list("Weekly news", "single").await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let token = viewer.csrf_token().await;
    let before = snapshot(&app).await;

    // Act and assert
    let mut checked = 0;
    for (path, methods) in routes() {
        if !methods.contains(&"post") || OPEN_TO_ALL.contains(&path.as_str()) {
            continue;
        }
        let url = concrete(&path);
        let reply = viewer
            .post(&url, &[("csrf_token", &token), ("name", "Sneaky")])
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "a viewer's POST {path} got {}: {}",
            reply.status,
            reply.text
        );
        assert!(
            reply.text.contains("role"),
            "the refusal of POST {path} does not say why: {}",
            reply.text
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} changing routes were found");
    assert_eq!(snapshot(&app).await, before, "a refused POST changed data");
}

#[tokio::test]
async fn dashboard_settings_are_for_admins_only() {
    // Arrange
    let app = spawn_app().await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let editor = signed_in(&app, Role::Editor).await;
    let admin = signed_in(&app, Role::Admin).await;
    let before = snapshot(&app).await;
    let settings: Vec<_> = routes()
        .into_iter()
        .filter(|(p, _)| p == "/settings" || p.starts_with("/settings/"))
        .collect();
    assert!(!settings.is_empty(), "no settings routes in the table");

    // Act and assert
    for who in [&viewer, &editor] {
        let token = who.csrf_token().await;
        for (path, methods) in &settings {
            let url = concrete(path);
            if methods.contains(&"get") {
                let reply = who.get(&url).await;
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "GET {path}");
            }
            if methods.contains(&"post") {
                let reply = who.post(&url, &[("csrf_token", &token)]).await;
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "POST {path}");
            }
        }
    }
    assert_eq!(snapshot(&app).await, before, "a refused POST changed data");
    let page = admin.get("/settings").await;
    assert!(
        page.status == StatusCode::OK || page.status == StatusCode::SEE_OTHER,
        "an admin's /settings got {}",
        page.status
    );
}
