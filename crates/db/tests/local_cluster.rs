//! The private cluster used where PostgreSQL is installed but not running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use postino_db::local_cluster::LocalCluster;
use sqlx::Connection;

#[tokio::test]
async fn a_private_cluster_starts_answers_is_reused_and_stops() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("postino-cluster-test-{}", std::process::id()));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    // Act
    let (d, p) = (dir.clone(), port);
    let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&d, p))
        .await
        .unwrap()
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    let answer: i32 = sqlx::query_scalar("SELECT 41 + 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (d, p) = (dir.clone(), port);
    let again = tokio::task::spawn_blocking(move || LocalCluster::start(&d, p))
        .await
        .unwrap();
    cluster.stop().unwrap();
    let after_stop = sqlx::PgConnection::connect(&cluster.url("postgres")).await;

    // Assert
    assert_eq!(answer, 42);
    assert!(again.is_ok(), "a running cluster is reused: {again:?}");
    assert!(after_stop.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
