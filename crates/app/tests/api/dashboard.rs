//! The dashboard's sessions, lockout, CSRF protection and roles, seen from an
//! HTTP client that keeps cookies but follows no redirects.

use postino_domain::{Password, Role};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

pub(crate) const PASSWORD: &str = "a long enough password";

/// A person using the dashboard: their own cookie jar.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Reply::from(response).await
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        Reply::from(response).await
    }

    /// Opens the login page and sends its form, as a person would.
    async fn login_with_next(&self, email: &str, password: &str, next: &str) -> Reply {
        let page = self.get("/login").await.expect(StatusCode::OK);
        let token = hidden_field(&page.text, "csrf_token");
        self.post(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.login_with_next(email, password, "/").await
    }

    /// A browser signed in as an existing user.
    pub(crate) async fn signed_in_as(app: &TestApp, email: &str, password: &str) -> Self {
        let browser = Self::new(app);
        browser
            .login(email, password)
            .await
            .expect(StatusCode::SEE_OTHER);
        browser
    }

    /// This session's CSRF token, from a page's meta tag.
    pub(crate) async fn csrf_token(&self) -> String {
        let page = self.get("/lists").await.expect(StatusCode::OK);
        between(&page.text, r#"<meta name="csrf-token" content=""#, "\"")
    }
}

pub(crate) fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    text[from..from + len].to_owned()
}

fn hidden_field(html: &str, name: &str) -> String {
    between(html, &format!(r#"name="{name}" value=""#), "\"")
}

pub(crate) fn location(reply: &Reply) -> &str {
    reply.headers[LOCATION].to_str().unwrap()
}

fn session_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("postino_session="))
}

async fn user(app: &TestApp, email: &str, role: Role) {
    postino_app::commands::create_user(
        &app.pool,
        email,
        "Dana Example",
        Password::parse(PASSWORD).unwrap(),
        role,
    )
    .await
    .unwrap();
}

pub(crate) async fn signed_in(app: &TestApp, role: Role) -> Browser {
    let email = format!("{}@example.com", role.as_str());
    user(app, &email, role).await;
    let browser = Browser::new(app);
    browser
        .login(&email, PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);
    browser
}

#[tokio::test]
async fn dashboard_signing_in_sets_an_http_only_lax_session_cookie_and_opens_the_overview() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Editor).await;
    let browser = Browser::new(&app);

    // Act
    let reply = browser
        .login("Dana@Example.com", PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&reply), "/");
    let cookie = session_cookie(&reply).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
    let secret = between(&cookie, "postino_session=", ";");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, secret.as_bytes(), "the session id is stored hashed");
    let overview = browser.get("/").await.expect(StatusCode::OK);
    assert!(
        overview.text.contains("<h1>Overview</h1>"),
        "{}",
        overview.text
    );
    assert!(overview.text.contains("Dana Example"));
}

#[tokio::test]
async fn dashboard_session_cookie_is_secure_when_postino_is_served_over_https() {
    // Arrange
    let app = spawn_app_with(|s| s.http.root_url = "https://news.example.com".to_owned()).await;
    user(&app, "dana@example.com", Role::Viewer).await;

    // Act
    let reply = Browser::new(&app)
        .login("dana@example.com", PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    let cookie = session_cookie(&reply).unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn dashboard_a_wrong_password_or_unknown_address_gets_the_same_refusal_and_no_session() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Admin).await;
    let browser = Browser::new(&app);

    // Act
    let wrong = browser.login("dana@example.com", "not the password").await;
    let unknown = browser.login("nobody@example.com", PASSWORD).await;

    // Assert
    for reply in [wrong, unknown] {
        let reply = reply.expect(StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&reply).is_none());
        assert!(
            reply
                .text
                .contains("That e-mail address and password do not match an account."),
            "{}",
            reply.text
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    browser.get("/").await.expect(StatusCode::SEE_OTHER);
}

/// Tries `password` on `email` until a 429 comes back (at most `tries`),
/// and returns each status in order with the last reply.
async fn fail_until_throttled(
    browser: &Browser,
    email: &str,
    password: &str,
    tries: usize,
) -> (Vec<StatusCode>, Reply) {
    let mut statuses = Vec::new();
    for _ in 0..tries {
        let reply = browser.login(email, password).await;
        statuses.push(reply.status);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            return (statuses, reply);
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    panic!("never throttled after {tries} tries: {statuses:?}");
}

#[tokio::test]
async fn dashboard_failures_slow_an_address_down_but_never_lock_its_owner_out_of_a_known_browser() {
    // Arrange: Dana signed in on her own browser before, and signed out.
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Editor).await;
    let dana = Browser::signed_in_as(&app, "dana@example.com", PASSWORD).await;
    let csrf = dana.csrf_token().await;
    dana.post("/logout", &[("csrf_token", csrf.as_str())])
        .await
        .expect(StatusCode::SEE_OTHER);
    let attacker = Browser::new(&app);

    // Act: an attacker fails on purpose until the address is slowed down,
    // and then has the right password too.
    let (statuses, throttled) =
        fail_until_throttled(&attacker, "dana@example.com", "wrong password!", 12).await;
    let right_from_stranger = attacker.login("dana@example.com", PASSWORD).await;
    let right_from_dana = dana.login("dana@example.com", PASSWORD).await;

    // Assert: five free tries, then waits, in words; the right password is
    // no use from a stranger's browser while the wait lasts...
    assert!(statuses.len() > 5, "{statuses:?}");
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    assert!(
        throttled
            .text
            .contains("Too many failed sign-ins with this address. Try again in"),
        "{}",
        throttled.text
    );
    let right_from_stranger = right_from_stranger.expect(StatusCode::TOO_MANY_REQUESTS);
    assert!(session_cookie(&right_from_stranger).is_none());
    assert!(!throttled.text.contains("locked"));
    // ...but Dana's own browser signs in at once, and clears the count.
    let right_from_dana = right_from_dana.expect(StatusCode::SEE_OTHER);
    assert!(session_cookie(&right_from_dana).is_some());
    assert_eq!(app.count("SELECT count(*) FROM login_throttle").await, 0);
    attacker
        .login("dana@example.com", "wrong password!")
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn dashboard_the_known_browser_cookie_is_http_only_for_login_only_and_stored_hashed() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Viewer).await;

    // Act
    let reply = Browser::new(&app)
        .login("dana@example.com", PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    let cookie = reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("postino_device="))
        .expect("a known-browser cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/login"), "{cookie}");
    let secret = between(&cookie, "postino_device=", ";");
    let stored = app
        .count(&format!(
            "SELECT count(*) FROM login_devices WHERE id_hash = sha256(convert_to('{secret}', 'UTF8'))"
        ))
        .await;
    assert_eq!(stored, 1, "stored as its SHA-256 hash");
}

#[tokio::test]
async fn dashboard_real_and_unknown_addresses_get_the_same_answers_whatever_the_password() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Admin).await;
    let long = "x".repeat(5000);
    let passwords = ["short", "wrong but long enough", long.as_str()];

    for password in passwords {
        // Act
        let real = Browser::new(&app).login("dana@example.com", password).await;
        let unknown = Browser::new(&app)
            .login("nobody@example.com", password)
            .await;

        // Assert: the same status and the same page but for the address.
        assert_eq!(real.status, StatusCode::UNAUTHORIZED, "{}", real.text);
        assert_eq!(unknown.status, real.status);
        let page = |reply: &Reply, email: &str| {
            let token = hidden_field(&reply.text, "csrf_token");
            reply.text.replace(email, "EMAIL").replace(&token, "TOKEN")
        };
        assert_eq!(
            page(&real, "dana@example.com"),
            page(&unknown, "nobody@example.com"),
            "password of {} characters",
            password.len()
        );
    }

    // And once throttled, the same again: no address is ever "locked".
    let (real, real_reply) = fail_until_throttled(
        &Browser::new(&app),
        "dana@example.com",
        "wrong password!",
        12,
    )
    .await;
    let (unknown, unknown_reply) = fail_until_throttled(
        &Browser::new(&app),
        "nobody@example.com",
        "wrong password!",
        12,
    )
    .await;
    assert_eq!(real, unknown);
    assert_eq!(
        between(&real_reply.text, "Too many", "."),
        between(&unknown_reply.text, "Too many", ".")
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
}

#[tokio::test]
async fn dashboard_pages_without_a_session_redirect_to_login_and_come_back_after() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Viewer).await;
    let browser = Browser::new(&app);

    // Act
    let page = browser
        .get("/lists?notice=x")
        .await
        .expect(StatusCode::SEE_OTHER);
    let post = browser
        .post("/lists", &[("name", "x")])
        .await
        .expect(StatusCode::SEE_OTHER);
    let htmx = browser
        .client
        .post(format!(
            "{}/lists/00000000-0000-0000-0000-000000000000/delete",
            app.address
        ))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(location(&page), "/login?next=%2Flists%3Fnotice%3Dx");
    assert_eq!(location(&post), "/login");
    assert_eq!(htmx.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(htmx.headers()["hx-redirect"], "/login");
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
    let back = browser
        .login_with_next("dana@example.com", PASSWORD, "/lists?notice=x")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/lists?notice=x");
}

#[tokio::test]
async fn dashboard_login_never_redirects_to_another_site() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Viewer).await;

    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        // Act
        let reply = Browser::new(&app)
            .login_with_next("dana@example.com", PASSWORD, next)
            .await
            .expect(StatusCode::SEE_OTHER);
        // Assert
        assert_eq!(location(&reply), "/", "next = {next}");
    }
}

#[tokio::test]
async fn dashboard_a_form_without_its_csrf_token_is_refused_and_with_it_accepted() {
    // Arrange
    let app = spawn_app().await;
    let browser = signed_in(&app, Role::Editor).await;
    let token = browser.csrf_token().await;

    // Act
    let missing = browser.post("/lists", &[("name", "No token")]).await;
    let wrong = browser
        .post("/lists", &[("name", "Wrong token"), ("csrf_token", "0123")])
        .await;
    let with_field = browser
        .post(
            "/lists",
            &[
                ("name", "Weekly news"),
                ("opt_in", "double"),
                ("visibility", "public"),
                ("tags", "news, weekly"),
                ("csrf_token", &token),
            ],
        )
        .await;
    let with_header = browser
        .client
        .post(format!("{}/lists", app.address))
        .header("x-csrf-token", &token)
        .form(&[("name", "Product updates")])
        .send()
        .await
        .unwrap();

    // Assert
    let missing = missing.expect(StatusCode::FORBIDDEN);
    assert!(
        missing.text.contains("This form has expired"),
        "{}",
        missing.text
    );
    wrong.expect(StatusCode::FORBIDDEN);
    let created = with_field.expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&created), "/lists?notice=created");
    assert_eq!(with_header.status(), StatusCode::SEE_OTHER);
    let lists = app.get("/api/v1/lists").await.expect(StatusCode::OK);
    let names: Vec<&str> = lists.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Weekly news", "Product updates"]);
    assert_eq!(lists.body["items"][0]["opt_in"], "double");
    assert_eq!(
        lists.body["items"][0]["tags"],
        serde_json::json!(["news", "weekly"])
    );
    let page = browser
        .get("/lists?notice=created")
        .await
        .expect(StatusCode::OK);
    assert!(page.text.contains("The list was created."));
    assert!(page.text.contains("Weekly news"));
}

#[tokio::test]
async fn dashboard_the_login_form_is_refused_without_its_own_csrf_token() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Admin).await;

    // Act: a form posted from elsewhere never loaded the login page.
    let reply = Browser::new(&app)
        .post(
            "/login",
            &[
                ("email", "dana@example.com"),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
            ],
        )
        .await;

    // Assert
    let reply = reply.expect(StatusCode::FORBIDDEN);
    assert!(session_cookie(&reply).is_none());
}

#[tokio::test]
async fn dashboard_a_viewer_is_refused_list_changes_that_an_editor_may_make() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Weekly news", "single").await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let editor = signed_in(&app, Role::Editor).await;
    let (viewer_token, editor_token) = (viewer.csrf_token().await, editor.csrf_token().await);

    // Act and assert: the viewer reads but changes nothing, and sees no controls.
    let page = viewer.get("/lists").await.expect(StatusCode::OK);
    assert!(page.text.contains("Weekly news"));
    assert!(!page.text.contains("Create list"), "no form for a viewer");
    assert!(
        !page.text.contains("/delete"),
        "no delete button for a viewer"
    );
    viewer
        .post(
            "/lists",
            &[("name", "Sneaky"), ("csrf_token", &viewer_token)],
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    viewer
        .post(
            &format!("/lists/{list}/delete"),
            &[("csrf_token", &viewer_token)],
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    viewer
        .post(
            &format!("/lists/{list}"),
            &[("name", "Renamed"), ("csrf_token", &viewer_token)],
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    viewer
        .get(&format!("/lists/{list}/edit"))
        .await
        .expect(StatusCode::FORBIDDEN);
    viewer.get("/settings").await.expect(StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) FROM lists WHERE name = 'Weekly news'")
            .await,
        1
    );

    // The editor may.
    editor
        .post(
            "/lists",
            &[("name", "Product updates"), ("csrf_token", &editor_token)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    editor
        .get(&format!("/lists/{list}/edit"))
        .await
        .expect(StatusCode::OK);
    editor
        .post(
            &format!("/lists/{list}"),
            &[
                ("name", "Weekly digest"),
                ("opt_in", "single"),
                ("visibility", "private"),
                ("csrf_token", &editor_token),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let deleted = editor
        .post(
            &format!("/lists/{list}/delete"),
            &[("csrf_token", &editor_token)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&deleted), "/lists?notice=deleted");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM lists ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(names, ["Product updates"]);
}

#[tokio::test]
async fn dashboard_an_invalid_list_form_is_shown_again_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let token = editor.csrf_token().await;

    // Act
    let reply = editor
        .post(
            "/lists",
            &[
                ("name", "   "),
                ("description", "kept"),
                ("opt_in", "triple"),
                ("csrf_token", &token),
            ],
        )
        .await;

    // Assert
    let reply = reply.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.text.contains("field-error"), "{}", reply.text);
    assert!(reply.text.contains("choose single or double opt-in"));
    assert!(
        reply.text.contains(">kept</textarea>"),
        "what was typed stays"
    );
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
}

#[tokio::test]
async fn dashboard_signing_out_ends_the_session_for_good() {
    // Arrange
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Editor).await;
    let browser = Browser::new(&app);
    let login = browser.login("dana@example.com", PASSWORD).await;
    let cookie = session_cookie(&login).unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let token = browser.csrf_token().await;

    // Act
    let reply = browser
        .post("/logout", &[("csrf_token", &token)])
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&reply), "/login");
    let cleared = session_cookie(&reply).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    // The old cookie, replayed by hand, opens nothing.
    let replay = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert_eq!(replay.headers()[LOCATION], "/login");
}

#[tokio::test]
async fn dashboard_static_assets_are_served_with_their_types() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let css = app
        .client
        .get(app.url("/static/css/app.css"))
        .send()
        .await
        .unwrap();
    let htmx = app
        .client
        .get(app.url("/static/vendor/htmx.min.js"))
        .send()
        .await
        .unwrap();
    let missing = app
        .client
        .get(app.url("/static/../Cargo.toml"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(htmx.status(), StatusCode::OK);
    assert!(htmx.text().await.unwrap().contains("htmx"));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dashboard_a_burst_of_parallel_guesses_gets_no_more_than_five_password_checks() {
    // Arrange: twenty people, each with a login form open.
    let app = spawn_app().await;
    user(&app, "dana@example.com", Role::Editor).await;
    let mut forms = Vec::new();
    for _ in 0..20 {
        let browser = Browser::new(&app);
        let page = browser.get("/login").await.expect(StatusCode::OK);
        let token = hidden_field(&page.text, "csrf_token");
        forms.push((browser, token));
    }

    // Act: all send a wrong password at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (browser, token) in forms {
        tasks.spawn(async move {
            browser
                .post(
                    "/login",
                    &[
                        ("csrf_token", token.as_str()),
                        ("email", "dana@example.com"),
                        ("password", "wrong password!"),
                    ],
                )
                .await
                .status
        });
    }
    let statuses = tasks.join_all().await;

    // Assert: five are told the password is wrong (the free tries); the rest
    // are told to wait, since each attempt is counted before its check.
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((wrong, locked), (5, 15), "{statuses:?}");
}

#[tokio::test]
async fn dashboard_the_overview_shows_totals_sending_progress_and_messages_sent_per_day() {
    // Arrange: a running campaign with one message sent today and one queued.
    let app = spawn_app().await;
    let list = app.create_list("Weekly news", "single").await;
    for email in ["a@example.com", "b@example.com"] {
        app.create_subscriber(serde_json::json!({"email": email, "lists": [list]}))
            .await;
    }
    app.post(
        "/api/v1/campaigns",
        serde_json::json!({
            "name": "Spring sale", "subject": "Hello", "from_email": "news@example.com",
            "body": "Hi <a href=\"{{ unsubscribe_url }}\">unsubscribe</a>", "lists": [list]
        }),
    )
    .await
    .expect(StatusCode::CREATED);
    for sql in [
        "UPDATE campaigns SET status = 'running', started_at = now()",
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, sent_at)
         SELECT c.id, s.id, CASE WHEN s.email = 'a@example.com' THEN 'sent' ELSE 'queued' END,
                CASE WHEN s.email = 'a@example.com' THEN now() END
         FROM campaigns c CROSS JOIN subscribers s",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let page = viewer.get("/").await.expect(StatusCode::OK);

    // Assert
    let text = page.text;
    assert!(
        text.contains(r#"data-testid="stat-subscribers">2<"#),
        "{text}"
    );
    assert!(text.contains(r#"data-testid="stat-lists">1<"#));
    assert!(text.contains("Spring sale"));
    assert!(text.contains("1 of 2 sent"), "{text}");
    assert!(text.contains(r#"aria-valuenow="50""#));
    assert_eq!(text.matches("<rect x=").count(), 30, "one bar per day");
    assert!(text.contains(": 1 sent</title>"), "today's bar");
    assert!(
        !text.contains("New list"),
        "a viewer is not offered changes"
    );
}

#[tokio::test]
async fn dashboard_empty_pages_tell_a_newcomer_what_to_do_next() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let viewer = signed_in(&app, Role::Viewer).await;

    // Act
    let overview = editor.get("/").await.expect(StatusCode::OK).text;
    let lists = editor.get("/lists").await.expect(StatusCode::OK).text;
    let viewer_lists = viewer.get("/lists").await.expect(StatusCode::OK).text;

    // Assert
    assert!(overview.contains("Welcome to Postino"), "{overview}");
    assert!(overview.contains("Create your first list"));
    assert!(overview.contains("Nothing sent in the last 30 days."));
    assert!(lists.contains("No lists yet"));
    assert!(lists.contains("Create one below, then import your subscribers into it."));
    assert!(viewer_lists.contains("Ask an editor to create the first one."));
}

#[tokio::test]
async fn dashboard_a_new_password_or_a_new_login_ends_the_sessions_before_it() {
    // Arrange: a browser signed in, whose login form was opened again
    // before (another tab) and is now sent.
    let app = spawn_app().await;
    user(&app, "editor@example.com", Role::Editor).await;
    let browser = Browser::new(&app);
    let form = Browser::new(&app)
        .get("/login")
        .await
        .expect(StatusCode::OK);
    let form_token = hidden_field(&form.text, "csrf_token");
    let first = browser.login("editor@example.com", PASSWORD).await;
    let first_cookie = session_cookie(&first).unwrap();
    let old_session = between(&first_cookie, "postino_session=", ";");

    // Act
    let second = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header(
            "cookie",
            format!("postino_login_csrf={form_token}; postino_session={old_session}"),
        )
        .form(&[
            ("csrf_token", form_token.as_str()),
            ("email", "editor@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();

    // Assert: one session, the new one; the old cookie opens nothing.
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 1);
    browser.get("/").await.expect(StatusCode::SEE_OTHER);
    let second = Reply::from(second).await;
    let new_session = between(&session_cookie(&second).unwrap(), "postino_session=", ";");
    let open_with_new_session = || async {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap()
            .get(app.url("/"))
            .header("cookie", format!("postino_session={new_session}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(open_with_new_session().await, StatusCode::OK);

    // Act: the password changes.
    let mut conn = app.pool.acquire().await.unwrap();
    let id: i64 = sqlx::query_scalar("SELECT id FROM users")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let hash = password_auth::generate_hash("another long password");
    postino_db::users::set_password_hash(&mut conn, id, &hash)
        .await
        .unwrap();

    // Assert
    assert_eq!(app.count("SELECT count(*) FROM sessions").await, 0);
    assert_eq!(open_with_new_session().await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn dashboard_unknown_pages_get_a_page_in_words_and_signed_in_users_skip_the_login_form() {
    // Arrange
    let app = spawn_app().await;
    let browser = signed_in(&app, Role::Viewer).await;

    // Act
    let missing = browser.get("/no-such-page").await;
    let login = browser.get("/login?next=%2Flists").await;

    // Assert
    let missing = missing.expect(StatusCode::NOT_FOUND);
    assert!(
        missing.text.contains("This page does not exist"),
        "{}",
        missing.text
    );
    let login = login.expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/lists");
}

/// A browser whose requests reach Postino through a proxy that says they
/// came from `ip`.
fn browser_from(app: &TestApp, ip: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        format!("10.9.8.7, {ip}").parse().unwrap(),
    );
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
        base: app.address.clone(),
    }
}

#[tokio::test]
async fn dashboard_an_address_spraying_passwords_over_many_accounts_is_refused_before_any_check() {
    // Arrange: three failures allowed per client address, read from the
    // proxy's header.
    let app = spawn_app_with(|s| {
        s.http.login_failures_per_ip = 3;
        s.http.client_ip_header = "X-Forwarded-For".to_owned();
    })
    .await;
    user(&app, "dana@example.com", Role::Editor).await;
    let attacker = browser_from(&app, "203.0.113.9");
    let colleague = browser_from(&app, "198.51.100.7");

    // Act: three wrong guesses, each at another account.
    for email in ["a@example.com", "b@example.com", "dana@example.com"] {
        attacker
            .login(email, "spring2026!")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let refused = attacker
        .login("dana@example.com", PASSWORD)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    let failures = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT failures FROM login_throttle
             WHERE email_key = sha256(convert_to('dana@example.com', 'UTF8'))",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let counted = failures().await;
    let elsewhere = colleague
        .login("dana@example.com", PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert: refused in words, before the account was even looked up (only
    // the one wrong guess at it counts), while others still sign in.
    assert_eq!(counted, 1);
    assert!(
        refused
            .text
            .contains("Too many failed sign-ins came from your network"),
        "{}",
        refused.text
    );
    assert!(session_cookie(&refused).is_none());
    assert!(session_cookie(&elsewhere).is_some());
}

/// A browser sending `value` as its `X-Forwarded-For`, or none.
fn browser_with_forwarded(app: &TestApp, value: Option<&str>) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = value {
        headers.insert("x-forwarded-for", value.parse().unwrap());
    }
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
        base: app.address.clone(),
    }
}

/// Three failures, each at another address, then the fourth attempt's reply.
async fn spray(browser: &Browser) -> Reply {
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        browser
            .login(email, "spring2026!")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    browser.login("d@example.com", "spring2026!").await
}

#[tokio::test]
async fn dashboard_a_missing_or_garbage_client_ip_header_counts_against_the_connecting_address() {
    for forwarded in [None, Some("not-an-address"), Some("203.0.113.9, 999.0.0.1")] {
        // Arrange: the header is configured, but this client does not send a
        // usable one; before, such requests were never counted at all.
        let app = spawn_app_with(|s| {
            s.http.login_failures_per_ip = 3;
            s.http.client_ip_header = "X-Forwarded-For".to_owned();
        })
        .await;
        user(&app, "dana@example.com", Role::Editor).await;
        let attacker = browser_with_forwarded(&app, forwarded);
        let colleague = browser_from(&app, "198.51.100.7");

        // Act
        let refused = spray(&attacker).await;
        let colleague = colleague.login("dana@example.com", PASSWORD).await;

        // Assert: refused like any other address; a client the proxy names
        // properly is counted on its own.
        let refused = refused.expect(StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .text
                .contains("Too many failed sign-ins came from your network"),
            "{forwarded:?}: {}",
            refused.text
        );
        colleague.expect(StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn dashboard_without_a_client_ip_header_configured_a_forwarded_header_is_ignored() {
    // Arrange: no header configured, so a client cannot pick its address.
    let app = spawn_app_with(|s| s.http.login_failures_per_ip = 3).await;
    let attacker = browser_with_forwarded(&app, Some("203.0.113.1"));
    let disguised = browser_with_forwarded(&app, Some("203.0.113.2"));

    // Act
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        attacker
            .login(email, "spring2026!")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let refused = disguised.login("d@example.com", "spring2026!").await;

    // Assert: both counted against the connecting address.
    refused.expect(StatusCode::TOO_MANY_REQUESTS);
}
