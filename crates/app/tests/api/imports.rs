//! `/api/v1/imports`, CSV export, and `postino import`.

use std::time::Duration;

use postino_app::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with, test_settings};

impl TestApp {
    /// POSTs `body` as `text/csv` with `query`.
    async fn upload(&self, query: &str, body: impl Into<Vec<u8>>) -> Reply {
        let response = self
            .client
            .post(self.url(&format!("/api/v1/imports?{query}")))
            .bearer_auth(&self.token)
            .header("content-type", "text/csv")
            .body(body.into())
            .send()
            .await
            .unwrap();
        Reply::from(response).await
    }

    /// Uploads and waits for the job to end; returns the job.
    async fn import(&self, query: &str, body: impl Into<Vec<u8>>) -> Value {
        let reply = self.upload(query, body).await.expect(StatusCode::ACCEPTED);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        self.wait_for_import(&id).await
    }

    /// Polls the job until it has ended (the worker runs in the background).
    async fn wait_for_import(&self, id: &str) -> Value {
        for _ in 0..600 {
            let job = self
                .get(&format!("/api/v1/imports/{id}"))
                .await
                .expect(StatusCode::OK)
                .body;
            if ["finished", "failed", "cancelled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("import {id} did not end");
    }

    async fn error_report(&self, id: &str) -> Vec<Vec<String>> {
        let response = self
            .client
            .get(self.url(&format!("/api/v1/imports/{id}/errors")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        read_csv(&response.bytes().await.unwrap())
    }

    async fn download(&self, path: &str) -> Vec<u8> {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    async fn subscriber(&self, email: &str) -> Value {
        let page = self
            .get(&format!("/api/v1/subscribers?email={email}"))
            .await
            .expect(StatusCode::OK)
            .body;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["email"].as_str().unwrap().eq_ignore_ascii_case(email))
            .cloned()
            .unwrap_or_else(|| panic!("no subscriber {email}"))
    }

    async fn status_on(&self, email: &str, list: &str) -> Option<String> {
        self.subscriber(email).await["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == list)
            .map(|m| m["status"].as_str().unwrap().to_owned())
    }
}

fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn counts(job: &Value) -> [i64; 5] {
    ["rows_read", "imported", "updated", "skipped", "failed"].map(|k| job[k].as_i64().unwrap())
}

#[tokio::test]
async fn a_messy_semicolon_file_with_bom_crlf_and_quotes_imports_its_good_rows_and_reports_the_rest()
 {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let file = "\u{feff}Email Address;First Name;Last Name;City;Age;VIP\r\n\
                ann@example.com;Ann;Lee;\"Rome; Italy\";34;true\r\n\
                bob@example.com;Bob;\"O\"\"Neil\";\"two\r\nlines\";007;no\r\n\
                not-an-address;X;Y;Z;1;true\r\n\
                ANN@example.com;Ann;Again;Rome;1;true\r\n\
                carl@example.com;Carl\r\n\
                \r\n\
                dora@example.com;;;;;\r\n";

    // Act
    let job = app.import(&format!("list={list}"), file).await;

    // Assert
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(counts(&job), [6, 3, 0, 0, 3]);
    assert_eq!(job["progress"], 1.0);
    let ann = app.subscriber("ann@example.com").await;
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(
        ann["attributes"],
        json!({"City": "Rome; Italy", "Age": 34, "VIP": true})
    );
    let bob = app.subscriber("bob@example.com").await;
    assert_eq!(bob["name"], "Bob O\"Neil");
    assert_eq!(
        bob["attributes"],
        json!({"City": "two\r\nlines", "Age": "007", "VIP": "no"})
    );
    assert_eq!(
        app.subscriber("dora@example.com").await["attributes"],
        json!({})
    );
    assert_eq!(
        app.status_on("ann@example.com", &list).await.as_deref(),
        Some("confirmed")
    );
    let id = job["id"].as_str().unwrap();
    let report = app.error_report(id).await;
    assert_eq!(report[0], ["line", "reason", "original"]);
    let lines: Vec<&str> = report[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(lines, ["5", "6", "7"]);
    assert!(report[1][1].contains("e-mail address"), "{report:?}");
    assert_eq!(report[1][2], "not-an-address;X;Y;Z;1;true");
    assert!(
        report[2][1].contains("already appears on line 2"),
        "{report:?}"
    );
    assert!(report[3][1].contains("has 2 fields"), "{report:?}");
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 3);
}

#[tokio::test]
async fn windows_1252_files_are_decoded_and_tabs_and_json_attributes_are_read() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let latin1: &[u8] = b"email,name\nfran@example.com,Fran\xE7ois M\xFCller\n";
    let tabs = "e-mail\tname\tattributes\tplan\n\
                zoe@example.com\tZo\u{eb}\t{\"tags\":[\"a\"],\"plan\":\"x\"}\tpro\n\
                bad@example.com\tBad\t{not json\t\n\
                arr@example.com\tArr\t[1,2]\t\n";

    // Act
    let first = app.import(&format!("list={list}"), latin1).await;
    let second = app.import(&format!("list={list}"), tabs).await;

    // Assert
    assert_eq!(counts(&first), [1, 1, 0, 0, 0]);
    assert_eq!(
        app.subscriber("fran@example.com").await["name"],
        "François Müller"
    );
    assert_eq!(counts(&second), [3, 1, 0, 0, 2]);
    let zoe = app.subscriber("zoe@example.com").await;
    assert_eq!(zoe["name"], "Zoë");
    assert_eq!(zoe["attributes"], json!({"tags": ["a"], "plan": "pro"}));
    let report = app.error_report(second["id"].as_str().unwrap()).await;
    assert!(report[1][1].contains("not valid JSON"), "{report:?}");
    assert!(report[2][1].contains("JSON object"), "{report:?}");
}

#[tokio::test]
async fn double_opt_in_lists_get_unconfirmed_members_unless_the_caller_says_confirmed() {
    // Arrange
    let app = spawn_app().await;
    let single = app.create_list("Single", "single").await;
    let double = app.create_list("Double", "double").await;

    // Act
    app.import(
        &format!("list={single}&list={double}"),
        "email\na@example.com\n",
    )
    .await;
    app.import(
        &format!("list={double}&confirmed=true"),
        "email\nb@example.com\na@example.com\n",
    )
    .await;

    // Assert
    assert_eq!(
        app.status_on("a@example.com", &single).await.as_deref(),
        Some("confirmed")
    );
    // Vouching for an address confirms its pending membership too.
    assert_eq!(
        app.status_on("a@example.com", &double).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.status_on("b@example.com", &double).await.as_deref(),
        Some("confirmed")
    );
    let fresh = app
        .import(&format!("list={double}"), "email\nc@example.com\n")
        .await;
    assert_eq!(fresh["imported"], 1);
    assert_eq!(
        app.status_on("c@example.com", &double).await.as_deref(),
        Some("unconfirmed")
    );
}

#[tokio::test]
async fn existing_subscribers_keep_their_data_unless_overwrite_merges_it() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    app.create_subscriber(json!({
        "email": "jane@example.com", "name": "Jane", "attributes": {"city": "Rome", "age": 40}
    }))
    .await;
    let file = "email,name,age,plan\njane@example.com,Janet,41,pro\n";

    // Act
    let kept = app.import(&format!("list={list}"), file).await;
    let kept_data = app.subscriber("jane@example.com").await;
    let overwritten = app
        .import(&format!("list={list}&overwrite=true"), file)
        .await;
    let again = app
        .import(&format!("list={list}&overwrite=true"), file)
        .await;

    // Assert
    assert_eq!(counts(&kept), [1, 0, 1, 0, 0], "joined the list: {kept}");
    assert_eq!(kept_data["name"], "Jane");
    assert_eq!(kept_data["attributes"], json!({"city": "Rome", "age": 40}));
    assert_eq!(counts(&overwritten), [1, 0, 1, 0, 0]);
    let jane = app.subscriber("jane@example.com").await;
    assert_eq!(jane["name"], "Janet");
    assert_eq!(
        jane["attributes"],
        json!({"city": "Rome", "age": 41, "plan": "pro"})
    );
    assert_eq!(counts(&again), [1, 0, 0, 1, 0], "nothing left to change");
}

#[tokio::test]
async fn unsubscribe_mode_marks_memberships_and_creates_nobody() {
    // Arrange
    let app = spawn_app().await;
    let news = app.create_list("News", "single").await;
    let other = app.create_list("Other", "single").await;
    app.import(
        &format!("list={news}&list={other}"),
        "email\na@example.com\nb@example.com\n",
    )
    .await;

    // Act
    let job = app
        .import(
            &format!("list={news}&mode=unsubscribe"),
            "email\na@example.com\nnobody@example.com\n",
        )
        .await;

    // Assert
    assert_eq!(counts(&job), [2, 0, 1, 1, 0]);
    assert_eq!(
        app.status_on("a@example.com", &news).await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.status_on("a@example.com", &other).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        app.status_on("b@example.com", &news).await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 2);
    // An unsubscribed member is not re-subscribed by a later import.
    app.import(&format!("list={news}"), "email\na@example.com\n")
        .await;
    assert_eq!(
        app.status_on("a@example.com", &news).await.as_deref(),
        Some("unsubscribed")
    );
}

#[tokio::test]
async fn blocklisted_addresses_are_never_resubscribed_by_an_import() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    app.import(&format!("list={list}"), "email\na@example.com\n")
        .await;

    // Act
    let blocked = app
        .import("mode=blocklist", "email\na@example.com\nnew@example.com\n")
        .await;
    let again = app
        .import(
            &format!("list={list}&overwrite=true&confirmed=true"),
            "email,name\na@example.com,A\nnew@example.com,N\n",
        )
        .await;

    // Assert
    assert_eq!(counts(&blocked), [2, 1, 1, 0, 0]);
    let a = app.subscriber("a@example.com").await;
    assert_eq!(a["status"], "blocklisted");
    assert_eq!(
        app.status_on("a@example.com", &list).await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        app.subscriber("new@example.com").await["status"],
        "blocklisted"
    );
    assert_eq!(app.status_on("new@example.com", &list).await, None);
    assert_eq!(again["status"], "finished");
    assert_eq!(
        app.status_on("a@example.com", &list).await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(app.status_on("new@example.com", &list).await, None);
}

#[tokio::test]
async fn a_multipart_upload_carries_the_file_and_the_options() {
    // Arrange
    let app = spawn_app().await;
    let double = app.create_list("Double", "double").await;
    let boundary = "XyZzY";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\n{double}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nemail\nm@example.com\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"confirmed\"\r\n\r\ntrue\r\n\
         --{boundary}--\r\n"
    );

    // Act
    let reply = Reply::from(
        app.client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&app.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(StatusCode::ACCEPTED);

    // Assert
    assert_eq!(reply.body["file_name"], "people.csv");
    let location = reply.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/v1/imports/{}", reply.body["id"].as_str().unwrap())
    );
    let job = app
        .wait_for_import(reply.body["id"].as_str().unwrap())
        .await;
    assert_eq!(job["imported"], 1);
    assert_eq!(
        app.status_on("m@example.com", &double).await.as_deref(),
        Some("confirmed")
    );
    let listed = app.get("/api/v1/imports").await.expect(StatusCode::OK);
    assert_eq!(listed.body["items"][0]["id"], reply.body["id"]);
}

#[tokio::test]
async fn unusable_uploads_are_refused_before_a_job_exists() {
    // Arrange
    let app = spawn_app_with(|s| {
        private_dir(s);
        s.import.max_upload_bytes = 1000;
    })
    .await;
    let list = app.create_list("News", "single").await;

    // Act / Assert
    app.upload(&format!("list={list}"), "name,city\nAnn,Rome\n")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "file");
    app.upload("", "email\na@example.com\n")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "list");
    app.upload(
        "list=0190b3c5-0000-7000-8000-000000000000",
        "email\na@example.com\n",
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "list[0]");
    app.upload(&format!("list={list}&mode=merge"), "email\n")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "mode");
    let big = format!("email\n{}", "someone@example.com\n".repeat(100));
    app.upload(&format!("list={list}"), big)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "");
    assert_eq!(app.count("SELECT count(*) FROM imports").await, 0);
    let dir = app_import_dir(&app);
    let left = std::fs::read_dir(&dir).map(Iterator::count).unwrap_or(0);
    assert_eq!(left, 0, "refused uploads are deleted from {dir:?}");
}

fn app_import_dir(app: &TestApp) -> std::path::PathBuf {
    std::env::temp_dir()
        .join("postino-imports-tests")
        .join(&app.db.name)
}

/// An upload directory of the test's own, named after its database.
fn private_dir(settings: &mut postino_app::Settings) {
    let name = settings.database.url.rsplit('/').next().unwrap().to_owned();
    settings.import.dir = std::env::temp_dir()
        .join("postino-imports-tests")
        .join(name);
}

/// Settings for tests that drive the worker by hand: no background worker,
/// small batches, short leases, a private upload directory.
fn manual(settings: &mut postino_app::Settings) {
    private_dir(settings);
    settings.import.workers = 0;
    settings.import.batch_rows = 100;
    settings.import.lease_secs = 1;
}

fn numbered_file(rows: usize) -> String {
    let mut file = String::from("email,name,n\n");
    for i in 0..rows {
        file.push_str(&format!("user{i}@example.com,User {i},{i}\n"));
    }
    file
}

#[tokio::test]
async fn a_cancelled_import_stops_and_keeps_only_whole_committed_batches() {
    // Arrange
    let app = spawn_app_with(manual).await;
    let settings = {
        let mut s = test_settings(&app.db);
        manual(&mut s);
        s.import
    };
    let list = app.create_list("News", "single").await;
    let queued = app
        .upload(&format!("list={list}"), numbered_file(10))
        .await
        .expect(StatusCode::ACCEPTED)
        .body;
    let running = app
        .upload(&format!("list={list}"), numbered_file(1000))
        .await
        .expect(StatusCode::ACCEPTED)
        .body;

    // Act: cancel the first while queued; start the second, cancel it after its first batch.
    let cancelled = app
        .delete(&format!(
            "/api/v1/imports/{}",
            queued["id"].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    let mut conn = app.pool.acquire().await.unwrap();
    let job = postino_db::imports::claim_next(&mut conn, 60.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.uuid.to_string(), running["id"].as_str().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pool = app.pool.clone();
    let runner = tokio::spawn(async move {
        let stop = CancellationToken::new();
        postino_importer::run_job(&pool, &job, &settings, &stop, &mut |p| {
            let _ = tx.send(p.rows_read);
        })
        .await
    });
    let first = rx.recv().await.unwrap();
    app.delete(&format!(
        "/api/v1/imports/{}",
        running["id"].as_str().unwrap()
    ))
    .await
    .expect(StatusCode::OK);
    let outcome = runner.await.unwrap();

    // Assert
    assert_eq!(cancelled.body["status"], "cancelled");
    app.delete(&format!(
        "/api/v1/imports/{}",
        queued["id"].as_str().unwrap()
    ))
    .await
    .expect_problem(StatusCode::CONFLICT, "status");
    assert!(matches!(outcome, Err(postino_importer::ImportError::Lost)));
    let job = app
        .get(&format!(
            "/api/v1/imports/{}",
            running["id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(job["status"], "cancelled");
    let committed = job["imported"].as_i64().unwrap();
    assert!(
        committed >= i64::try_from(first).unwrap() && committed < 1000,
        "{job}"
    );
    assert_eq!(committed % 100, 0, "whole batches only: {job}");
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers").await,
        committed
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists").await,
        committed
    );
}

#[tokio::test]
async fn a_job_interrupted_by_a_crash_is_resumed_by_the_next_process_exactly_once() {
    // Arrange: a server that runs no worker, and a job run by hand until it is
    // killed mid-file, as if its process died.
    let app = spawn_app_with(manual).await;
    let mut settings = test_settings(&app.db);
    manual(&mut settings);
    let list = app.create_list("News", "single").await;
    let mut file = numbered_file(3000);
    file.push_str("broken-address,Nobody,1\n");
    let id = app
        .upload(&format!("list={list}"), file)
        .await
        .expect(StatusCode::ACCEPTED)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut conn = app.pool.acquire().await.unwrap();
    let job = postino_db::imports::claim_next(&mut conn, 1.0)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The "crashed process" gets a pool of its own: aborting a task in the
    // middle of a query leaves its connection unusable, and that must not
    // reach the pool the web server answers from.
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let dying = pool.clone();
    let import_settings = settings.import.clone();
    let crashed = tokio::spawn(async move {
        let stop = CancellationToken::new();
        postino_importer::run_job(&pool, &job, &import_settings, &stop, &mut |p| {
            let _ = tx.send(p.rows_read);
        })
        .await
    });
    rx.recv().await.unwrap();
    rx.recv().await.unwrap();
    crashed.abort();
    let _ = crashed.await;
    // Its connections close, as a dead process's would.
    dying.close().await;
    let mid = app.get(&format!("/api/v1/imports/{id}")).await.body;
    assert_eq!(mid["status"], "running", "{mid}");
    let committed = mid["rows_read"].as_i64().unwrap();
    assert!((200..3000).contains(&committed), "{mid}");
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers").await,
        committed,
        "committed batches are whole"
    );

    // Act: a new process starts with a worker; the dead one's lease expires.
    settings.import.workers = 1;
    settings.import.poll_ms = 50;
    let restarted = Application::build(settings).await.unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(restarted.run_until_stopped(shutdown.clone()));
    let job = app.wait_for_import(&id).await;
    shutdown.cancel();

    // Assert
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(counts(&job), [3001, 3000, 0, 0, 1]);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 3000);
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists").await,
        3000
    );
    let report = app.error_report(&id).await;
    assert_eq!(report.len(), 2);
    assert_eq!(report[1][0], "3002");
}

#[tokio::test]
async fn a_job_whose_file_is_gone_fails_with_what_was_committed() {
    // Arrange
    let app = spawn_app_with(manual).await;
    let mut settings = test_settings(&app.db);
    manual(&mut settings);
    let list = app.create_list("News", "single").await;
    let job = app
        .upload(&format!("list={list}"), numbered_file(5))
        .await
        .expect(StatusCode::ACCEPTED)
        .body;
    let id = job["id"].as_str().unwrap();
    std::fs::remove_file(app_import_dir(&app).join(format!("{id}.csv"))).unwrap();

    // Act
    let ran =
        postino_importer::worker::run_next(&app.pool, &settings.import, &CancellationToken::new())
            .await
            .unwrap();

    // Assert
    assert!(ran);
    let job = app.get(&format!("/api/v1/imports/{id}")).await.body;
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("missing"), "{job}");
    assert_eq!(counts(&job), [0, 0, 0, 0, 0]);
}

#[tokio::test]
async fn an_export_imports_back_unchanged() {
    // Arrange
    let source = spawn_app().await;
    let list = source.create_list("News", "single").await;
    let other = source.create_list("Other", "single").await;
    source
        .create_subscriber(json!({
            "email": "q@example.com", "name": "Quote \"Q\", Esq.",
            "attributes": {"nested": {"a": [1, 2]}, "city": "Zürich", "n": 1.5, "ok": false},
            "lists": [list]
        }))
        .await;
    source
        .import(
            &format!("list={list}"),
            "email,name,city\nplain@example.com,,\nsemi@example.com,\"a;b\",Köln\n",
        )
        .await;
    source
        .import(&format!("list={other}"), "email\nelsewhere@example.com\n")
        .await;

    // Act
    let exported = source
        .download(&format!("/api/v1/lists/{list}/export.csv"))
        .await;
    let target = spawn_app().await;
    let target_list = target.create_list("Copy", "single").await;
    let job = target
        .import(&format!("list={target_list}"), exported.clone())
        .await;
    let re_exported = target
        .download(&format!("/api/v1/lists/{target_list}/export.csv"))
        .await;

    // Assert
    assert_eq!(counts(&job), [3, 3, 0, 0, 0]);
    assert_eq!(
        String::from_utf8(re_exported).unwrap(),
        String::from_utf8(exported.clone()).unwrap()
    );
    let rows = read_csv(&exported);
    assert_eq!(rows[0], ["email", "name", "attributes"]);
    assert_eq!(rows.len(), 4, "only the list's members: {rows:?}");
    let q = target.subscriber("q@example.com").await;
    assert_eq!(q["name"], "Quote \"Q\", Esq.");
    assert_eq!(
        q["attributes"],
        json!({"nested": {"a": [1, 2]}, "city": "Zürich", "n": 1.5, "ok": false})
    );
    // The search export takes the same filters as the search.
    let searched = read_csv(
        &source
            .download("/api/v1/subscribers/export.csv?email=else")
            .await,
    );
    assert_eq!(searched.len(), 2);
    assert_eq!(searched[1][0], "elsewhere@example.com");
    source
        .get("/api/v1/subscribers/export.csv?cursor=x")
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "cursor");
}

#[tokio::test]
async fn postino_import_runs_a_file_with_a_summary() {
    // Arrange
    let app = spawn_app().await;
    app.create_list("Weekly digest", "single").await;
    let dir = std::env::temp_dir().join(format!("postino-cli-import-{}", app.db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("people.csv");
    std::fs::write(&path, "email;name\ncli@example.com;Cli\nbroken;B\n").unwrap();

    // Act
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postino"))
        .args(["import"])
        .arg(&path)
        .args(["--list", "Weekly digest"])
        .env_remove("POSTINO_CONFIG")
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 rows read"), "{stdout}");
    assert!(
        stdout.contains("imported 1, updated 0, skipped 0, failed 1"),
        "{stdout}"
    );
    assert!(stdout.contains("line 3"), "{stdout}");
    assert!(path.exists(), "the user's file is left in place");
    assert_eq!(app.subscriber("cli@example.com").await["name"], "Cli");
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_postino"))
        .args(["import"])
        .arg(&path)
        .args(["--list", "Nope"])
        .env_remove("POSTINO_CONFIG")
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--list Nope"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unclosed_quote_fails_the_import_naming_its_line_and_keeps_the_rows_before_it() {
    // Arrange: the quote opened on line 4 is never closed; without a limit
    // the rest of the file would be read as one record.
    let app = spawn_app_with(|s| s.import.max_record_bytes = 64 * 1024).await;
    let list = app.create_list("News", "single").await;
    let mut file = String::from("email,name\na@example.com,Ann\nb@example.com,Bob\n");
    file.push_str("c@example.com,\"Carl\n");
    for i in 0..20_000 {
        file.push_str(&format!("later{i}@example.com,Later\n"));
    }

    // Act
    let job = app.import(&format!("list={list}"), file).await;

    // Assert
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.starts_with("line 4:"), "{error}");
    assert!(error.contains("quote"), "{error}");
    assert!(error.contains("cannot be read reliably"), "{error}");
    assert_eq!(job["imported"], 2, "{job}");
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE email LIKE 'later%'")
            .await,
        0
    );
}

#[tokio::test]
async fn cancelling_an_import_stops_its_parser_inside_a_record_that_does_not_end() {
    // Arrange: a 64 GiB file (sparse: its disk blocks are never written)
    // whose one record after the header opens a quote and never closes
    // it, read with no record limit. Only cancelling can stop its parser.
    let app = spawn_app_with(manual).await;
    let mut settings = test_settings(&app.db);
    manual(&mut settings);
    settings.import.max_record_bytes = u64::MAX;
    settings.import.poll_ms = 20;
    let dir = std::env::temp_dir().join(format!("postino-endless-{}", app.db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("endless.csv");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        // A byte-order mark: the encoding is known without reading it all.
        file.write_all(b"\xEF\xBB\xBFemail,note\na@example.com,\"")
            .unwrap();
        file.set_len(64 << 30).unwrap();
    }
    let list = app.create_list("News", "single").await;
    let list_id = app
        .count(&format!("SELECT id FROM lists WHERE uuid = '{list}'"))
        .await;
    let job = postino_importer::engine::create_local_job(
        &app.pool,
        &path,
        postino_domain::ImportMode::Subscribe,
        vec![list_id],
        false,
        false,
        &settings.import,
    )
    .await
    .unwrap();
    let id = job.uuid;
    let pool = app.pool.clone();
    let import_settings = settings.import.clone();
    let runner = tokio::spawn(async move {
        postino_importer::run_job(
            &pool,
            &job,
            &import_settings,
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
    });

    // Act
    let cancelled = app
        .delete(&format!("/api/v1/imports/{id}"))
        .await
        .expect(StatusCode::OK);

    // Assert: the job's run (which waits for its parsing thread) ends
    // promptly, as given up; the job stays cancelled.
    let outcome = tokio::time::timeout(Duration::from_secs(20), runner)
        .await
        .expect("the parser stops once the job is cancelled")
        .unwrap();
    assert!(
        matches!(outcome, Err(postino_importer::ImportError::Lost)),
        "{outcome:?}"
    );
    assert_eq!(cancelled.body["status"], "cancelled");
    let job = app
        .get(&format!("/api/v1/imports/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(job.body["status"], "cancelled");
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_nul_in_a_cell_is_reported_for_its_row_and_the_rest_imports() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let file = b"email,name,city\na@example.com,Ann,Rome\nb@example.com,B\0b,Oslo\nc@example.com,Carl,Ly\0on\nd@example.com,Dora,Nice\n".to_vec();

    // Act
    let job = app.import(&format!("list={list}"), file).await;
    let report = app.error_report(job["id"].as_str().unwrap()).await;

    // Assert
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(counts(&job), [4, 2, 0, 0, 2]);
    assert_eq!(app.subscriber("a@example.com").await["name"], "Ann");
    assert_eq!(app.subscriber("d@example.com").await["name"], "Dora");
    assert_eq!(report.len(), 3, "{report:?}");
    assert_eq!(report[1][0], "3");
    assert!(
        report[1][1].contains("name") && report[1][1].contains("NUL"),
        "{report:?}"
    );
    assert_eq!(report[1][2], "b@example.com,B\u{FFFD}b,Oslo");
    assert_eq!(report[2][0], "4");
    assert!(
        report[2][1].contains("attributes") && report[2][1].contains("NUL"),
        "{report:?}"
    );
}

#[tokio::test]
async fn exports_and_error_reports_neutralise_spreadsheet_formulas() {
    // Arrange: a sign-up's name and attributes chosen to run in a spreadsheet,
    // and rows that fail with a formula in them.
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let file = "email,name,note\n\
                f@example.com,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",plain\n\
                g@example.com,@SUM(A1:A9),x\n\
                h@example.com,+1 555,x\n\
                -i@example.com,-2+3,x\n\
                =cmd|' /C calc'!A0,Evil,x\n\
                @bad,\t=1,x\n";
    let job = app.import(&format!("list={list}"), file).await;

    // Act
    let export = read_csv(
        &app.download(&format!("/api/v1/lists/{list}/export.csv"))
            .await,
    );
    let search = read_csv(&app.download("/api/v1/subscribers/export.csv").await);
    let report = app.error_report(job["id"].as_str().unwrap()).await;

    // Assert: no cell of either file starts a formula.
    let formula = |cell: &String| cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    for file in [&export, &search, &report] {
        for row in file.iter() {
            assert!(!row.iter().any(formula), "{row:?}");
        }
    }
    let names: Vec<&str> = export.iter().skip(1).map(|r| r[1].as_str()).collect();
    assert!(
        names.contains(&"'=HYPERLINK(\"http://evil.example\",\"x\")"),
        "{names:?}"
    );
    assert!(names.contains(&"'@SUM(A1:A9)"), "{names:?}");
    assert!(names.contains(&"'+1 555"), "{names:?}");
    assert!(names.contains(&"'-2+3"), "{names:?}");
    let emails: Vec<&str> = export.iter().skip(1).map(|r| r[0].as_str()).collect();
    assert!(emails.contains(&"'-i@example.com"), "{emails:?}");
    let originals: Vec<&str> = report.iter().skip(1).map(|r| r[2].as_str()).collect();
    assert_eq!(originals.len(), 2, "{report:?}");
    assert!(
        originals.iter().all(|o| o.starts_with('\'')),
        "{originals:?}"
    );
    // Postino reads its own export back as it was.
    assert_eq!(
        app.subscriber("f@example.com").await["name"],
        "=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    let other = app.create_list("Copy", "single").await;
    let bytes = app
        .download(&format!("/api/v1/lists/{list}/export.csv"))
        .await;
    let again = app
        .import(&format!("list={other}&overwrite=true"), bytes)
        .await;
    assert_eq!(counts(&again)[4], 0, "{again}");
    assert_eq!(app.subscriber("-i@example.com").await["name"], "-2+3");
    assert_eq!(app.subscriber("g@example.com").await["name"], "@SUM(A1:A9)");
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE email LIKE '''%'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_oversized_form_field_on_an_upload_is_refused_short_without_being_echoed() {
    // Arrange: a `mode` field of 4 MiB, as one streamed part.
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let boundary = "XyZzY";
    let huge = "subscribe".repeat(4 * 1024 * 1024 / 9);
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\n{list}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n{huge}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nemail\nm@example.com\n\r\n\
         --{boundary}--\r\n"
    );
    let post = |body: String| {
        app.client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&app.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };

    // Act
    let reply = Reply::from(post(form).await.unwrap()).await;
    let bad_mode = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\n{list}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n{}\r\n\
         --{boundary}--\r\n",
        "x".repeat(5000)
    );
    let bad = Reply::from(post(bad_mode).await.unwrap()).await;

    // Assert
    let reply = reply.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "mode");
    assert!(reply.text.len() < 1024, "{} bytes", reply.text.len());
    assert!(!reply.text.contains("subscribesubscribe"), "{}", reply.text);
    // A value under the cap that is still wrong is quoted only in part.
    let bad = bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "mode");
    assert!(
        bad.text.len() < 1024,
        "{} bytes: {}",
        bad.text.len(),
        bad.text
    );
    assert_eq!(app.count("SELECT count(*) FROM imports").await, 0);
}
