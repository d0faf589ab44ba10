//! `spawn_app` and request helpers.

use postino_app::{Application, Settings};
use postino_testkit::TestDb;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served when `http.metrics_listen` is set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub token: String,
    pub db: TestDb,
    pub pool: sqlx::PgPool,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    settings.database.max_connections = 5;
    settings.http.listen = "127.0.0.1:0".to_owned();
    // Templates render in children of the real binary, not of this test harness.
    settings.templates.sandbox_program = Some(env!("CARGO_BIN_EXE_postino").into());
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_as(postino_app::Role::Web, configure).await
}

/// The app running `role`; `spawn_app` runs only the web role, so tests
/// drive the scheduler themselves.
pub async fn spawn_app_as(
    role: postino_app::Role,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        // The application's logs, for a test being debugged.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn")
            .with_test_writer()
            .try_init();
    }
    let db = TestDb::new().await.expect("test database");
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let pool = app.pool().clone();
    let token = postino_app::commands::create_token(&pool, "tests")
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(role, shutdown.clone()));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        token,
        db,
        pool,
        shutdown,
    }
}

/// A response with its body read, for assertions.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an RFC 9457 problem with `status` that names `field`.
    #[track_caller]
    pub fn expect_problem(self, status: StatusCode, field: &str) -> Self {
        let reply = self.expect(status);
        assert_eq!(
            reply.headers["content-type"], "application/problem+json",
            "problem content type"
        );
        assert_eq!(reply.body["status"], status.as_u16());
        if !field.is_empty() {
            let fields: Vec<&str> = reply.body["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                fields.contains(&field),
                "expected field {field:?} in {}",
                reply.text
            );
        }
        reply
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, None).await
    }

    pub async fn create_list(&self, name: &str, opt_in: &str) -> String {
        let reply = self
            .post("/api/v1/lists", json!({"name": name, "opt_in": opt_in}))
            .await
            .expect(StatusCode::CREATED);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_subscriber(&self, body: Value) -> Value {
        self.post("/api/v1/subscribers", body)
            .await
            .expect(StatusCode::CREATED)
            .body
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}
