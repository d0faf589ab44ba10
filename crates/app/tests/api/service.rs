//! The service layer's use cases, called directly against a test database:
//! the checks a draft passes, the lifecycle's moves, bulk actions, and each surface's
//! answer to a path that cannot name anything.

use chrono::{TimeDelta, Utc};
use postino_domain::{CampaignStatus, EmailAddress, Role};
use postino_service::campaigns::{self, CampaignDraft};
use postino_service::subscribers::{self, BulkAction, BulkKind, Conditions};
use postino_service::{Context, Error};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::dashboard::signed_in;
use crate::helpers::{TestApp, spawn_app, test_settings};

const BODY: &str = "<p>Hi {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">Leave</a>";

async fn context(app: &TestApp) -> Context {
    let settings = test_settings(&app.db);
    Context {
        templates: settings.templates.sandbox().unwrap(),
        addressing: postino_app::addressing(&settings, &app.pool).await.unwrap(),
        campaigns: settings.campaigns.clone(),
        imports: settings.import.clone(),
        allow_private_relay_hosts: settings.http.allow_private_relay_hosts,
    }
}

fn draft(list: Uuid, body: &str) -> CampaignDraft {
    CampaignDraft {
        name: Some("Spring".to_owned()),
        subject: Some("Hello {{ subscriber.name }}".to_owned()),
        from_email: Some(EmailAddress::parse("news@example.com").unwrap()),
        body: Some(body.to_owned()),
        lists: Some(vec![list]),
        ..CampaignDraft::default()
    }
}

fn fields(e: &Error) -> Vec<String> {
    match e {
        Error::Invalid(errors) => errors.iter().map(|f| f.field.clone()).collect(),
        other => panic!("expected invalid fields, got {other:?}"),
    }
}

#[tokio::test]
async fn a_draft_names_every_missing_or_unknown_field_at_once() {
    let app = spawn_app().await;
    let ctx = context(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();

    let e = campaigns::create_draft(&ctx, &mut conn, CampaignDraft::default())
        .await
        .unwrap_err();
    let named = fields(&e);
    for field in ["name", "subject", "body", "from_email"] {
        assert!(named.contains(&field.to_owned()), "{field} in {named:?}");
    }

    let unknown = Uuid::new_v4();
    let e = campaigns::create_draft(&ctx, &mut conn, draft(unknown, BODY))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["lists[0]"]);

    let list: Uuid = app.create_list("News", "single").await.parse().unwrap();
    let e = campaigns::create_draft(&ctx, &mut conn, draft(list, "{% if %}"))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["body"]);
    let stored = app.count("SELECT count(*) FROM campaigns").await;
    assert_eq!(stored, 0, "a refused draft stores nothing");
}

#[tokio::test]
async fn status_moves_follow_the_lifecycle_and_name_the_current_state() {
    let app = spawn_app().await;
    let ctx = context(&app).await;
    let list: Uuid = app.create_list("News", "single").await.parse().unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let c = campaigns::create_draft(&ctx, &mut conn, draft(list, BODY))
        .await
        .unwrap();

    let e = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Finished, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { field, message } if field == "status" && message.contains("draft")),
        "{e:?}"
    );
    let e = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Scheduled, None)
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["send_at"]);
    let past = Utc::now() - TimeDelta::minutes(5);
    let e = campaigns::move_to(
        &ctx,
        &mut conn,
        c.uuid,
        CampaignStatus::Scheduled,
        Some(past),
    )
    .await
    .unwrap_err();
    assert_eq!(fields(&e), ["send_at"]);

    let later = Utc::now() + TimeDelta::hours(1);
    let scheduled = campaigns::move_to(
        &ctx,
        &mut conn,
        c.uuid,
        CampaignStatus::Scheduled,
        Some(later),
    )
    .await
    .unwrap();
    assert_eq!(scheduled.status, CampaignStatus::Scheduled);
    let e = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Paused, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");

    let running = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(running.status, CampaignStatus::Running);
    let e = campaigns::delete(&mut conn, c.uuid).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { message, .. } if message.contains("running")),
        "{e:?}"
    );
    let e = campaigns::update_content(&ctx, &mut conn, c.uuid, CampaignDraft::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");

    campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Cancelled, None)
        .await
        .unwrap();
    campaigns::delete(&mut conn, c.uuid).await.unwrap();
    let e = campaigns::get(&mut conn, c.uuid).await.unwrap_err();
    assert!(matches!(e, Error::NotFound("campaign")), "{e:?}");
}

#[tokio::test]
async fn a_campaign_without_an_unsubscribe_link_or_lists_cannot_start() {
    let app = spawn_app().await;
    let ctx = context(&app).await;
    let list: Uuid = app.create_list("News", "single").await.parse().unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let c = campaigns::create_draft(&ctx, &mut conn, draft(list, "<p>No way out</p>"))
        .await
        .unwrap();
    let e = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Running, None)
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["body"]);

    let no_lists = CampaignDraft {
        lists: Some(Vec::new()),
        ..draft(list, BODY)
    };
    let c = campaigns::create_draft(&ctx, &mut conn, no_lists)
        .await
        .unwrap();
    let e = campaigns::move_to(&ctx, &mut conn, c.uuid, CampaignStatus::Running, None)
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["lists"]);
    let status: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE uuid = $1")
        .bind(c.uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "draft", "a refused start changes nothing");
}

#[tokio::test]
async fn a_path_that_is_not_an_id_gets_each_surfaces_own_404() {
    let app = spawn_app().await;
    let api = app.get("/api/v1/campaigns/not-a-uuid").await;
    api.expect_problem(StatusCode::NOT_FOUND, "");

    let browser = signed_in(&app, Role::Admin).await;
    for path in [
        "/campaigns/not-a-uuid",
        "/subscribers/not-a-uuid",
        "/lists/not-a-uuid/edit",
        "/templates/not-a-uuid",
    ] {
        let page = browser.get(path).await.expect(StatusCode::NOT_FOUND);
        let kind = page.headers["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(page.text.contains("Not found"), "{path}: {}", page.text);
    }
}

fn bulk(action: BulkKind) -> BulkAction {
    BulkAction {
        action,
        ids: None,
        filter: None,
        list: None,
        status: None,
    }
}

#[tokio::test]
async fn bulk_actions_check_their_selection_and_change_only_whom_it_names() {
    let app = spawn_app().await;
    let list: Uuid = app.create_list("News", "single").await.parse().unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let s = app
            .create_subscriber(serde_json::json!({"email": format!("p{n}@example.com")}))
            .await;
        ids.push(s["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let mut tx = app.pool.begin().await.unwrap();

    let e = subscribers::bulk(&mut tx, bulk(BulkKind::Delete))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["ids"], "neither ids nor filter");
    let everyone = BulkAction {
        filter: Some(Conditions::default()),
        ..bulk(BulkKind::Blocklist)
    };
    let e = subscribers::bulk(&mut tx, everyone).await.unwrap_err();
    assert_eq!(
        fields(&e),
        ["filter"],
        "an empty filter would select everyone"
    );
    let no_list = BulkAction {
        ids: Some(ids.clone()),
        ..bulk(BulkKind::AddToList)
    };
    let e = subscribers::bulk(&mut tx, no_list).await.unwrap_err();
    assert_eq!(fields(&e), ["list"]);
    let stray_status = BulkAction {
        ids: Some(ids.clone()),
        status: Some(postino_domain::MembershipStatus::Confirmed),
        ..bulk(BulkKind::Blocklist)
    };
    let e = subscribers::bulk(&mut tx, stray_status).await.unwrap_err();
    assert_eq!(fields(&e), ["status"]);

    let add_two = BulkAction {
        ids: Some(ids[..2].to_vec()),
        list: Some(list),
        ..bulk(BulkKind::AddToList)
    };
    assert_eq!(subscribers::bulk(&mut tx, add_two).await.unwrap(), 2);
    let by_filter = BulkAction {
        filter: Some(Conditions {
            list: Some(list),
            ..Conditions::default()
        }),
        ..bulk(BulkKind::Blocklist)
    };
    assert_eq!(subscribers::bulk(&mut tx, by_filter).await.unwrap(), 2);
    tx.commit().await.unwrap();

    let blocklisted = app
        .count("SELECT count(*) FROM subscribers WHERE status = 'blocklisted'")
        .await;
    assert_eq!(blocklisted, 2, "only the two on the list");
    let third: String = sqlx::query_scalar("SELECT status FROM subscribers WHERE uuid = $1")
        .bind(ids[2])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(third, "enabled");
}
