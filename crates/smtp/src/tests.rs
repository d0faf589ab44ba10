use postino_domain::EmailAddress;
use postino_sink::{Sink, SinkConfig};
use secrecy::SecretString;

use crate::{CheckError, Connection, SendOutcome, SmtpSettings, check};

fn settings_for(sink: &Sink) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: sink.addr().port(),
        ..SmtpSettings::default()
    }
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

const BODY: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn replies_are_classified_as_sent_temporary_or_permanent() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let settings = settings_for(&sink);
    let from = addr("bounces+1@example.com");

    let mut conn = Connection::open(&settings).await.unwrap();
    let ok = conn.send(&from, &addr("a@example.org"), BODY).await;
    assert!(conn.is_reusable(), "a session that sent a message is kept");
    let temp = conn.send(&from, &addr("tempfail@example.org"), BODY).await;
    let mut conn = Connection::open(&settings).await.unwrap();
    let perm = conn.send(&from, &addr("permfail@example.org"), BODY).await;

    assert!(matches!(ok, SendOutcome::Sent { code: 250, .. }), "{ok:?}");
    assert!(
        matches!(
            temp,
            SendOutcome::TempFail {
                code: Some(451),
                ..
            }
        ),
        "{temp:?}"
    );
    assert!(
        matches!(&perm, SendOutcome::PermFail { code: Some(550), reply } if reply.contains("permanent")),
        "{perm:?}"
    );
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["a@example.org"]);
    assert_eq!(received[0].mail_from, "bounces+1@example.com");
}

#[tokio::test]
async fn a_session_is_reused_up_to_its_message_limit() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let settings = SmtpSettings {
        messages_per_connection: 3,
        ..settings_for(&sink)
    };
    let from = addr("news@example.com");
    let mut conn = Connection::open(&settings).await.unwrap();
    for i in 0..3 {
        assert!(conn.is_reusable());
        let outcome = conn
            .send(&from, &addr(&format!("r{i}@example.org")), BODY)
            .await;
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    }
    assert!(!conn.is_reusable(), "the limit closes the session");
    conn.close().await;
    assert_eq!(sink.counts().connections, 1);
    assert_eq!(sink.counts().accepted, 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_temporary_failure_and_check_says_why() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings = SmtpSettings {
        port,
        timeout_secs: 2,
        ..SmtpSettings::default()
    };
    let outcome = Connection::open(&settings).await.unwrap_err();
    assert!(
        matches!(&outcome, SendOutcome::TempFail { code: None, reply } if reply.contains("cannot connect")),
        "{outcome:?}"
    );
    let error = check(&settings).await.unwrap_err();
    assert!(matches!(error, CheckError::Connect { .. }), "{error}");
    assert!(
        error.to_string().starts_with("connect to 127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn check_reports_authentication_and_never_the_password() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let settings = SmtpSettings {
        username: "mailer".to_owned(),
        password: SecretString::from("hunter2hunter2".to_owned()),
        ..settings_for(&sink)
    };
    let checked = check(&settings).await.unwrap();
    assert!(checked.authenticated);
    assert!(!checked.encrypted);
    assert_eq!(checked.server_name, "postino-sink");
}

#[tokio::test]
async fn a_message_arrives_byte_for_byte_with_or_without_pipelining() {
    // Lines that start with a dot must be stuffed on the wire and arrive
    // unchanged; a line that is only a dot must not end the message early.
    let body = b"Subject: dots\r\n\r\n.starts with a dot\r\n.\r\n..two\r\nend\r\n";
    for pipelining in [true, false] {
        let sink = Sink::start(SinkConfig {
            pipelining,
            ..SinkConfig::default()
        })
        .await
        .unwrap();
        let mut conn = Connection::open(&settings_for(&sink)).await.unwrap();
        let from = addr("news@example.com");
        for i in 0..3 {
            let outcome = conn
                .send(&from, &addr(&format!("r{i}@example.org")), body)
                .await;
            assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        }
        let refused = conn.send(&from, &addr("permfail@example.org"), body).await;
        assert!(
            matches!(
                refused,
                SendOutcome::PermFail {
                    code: Some(550),
                    ..
                }
            ),
            "{refused:?}"
        );
        let received = sink.messages();
        assert_eq!(received.len(), 3, "pipelining {pipelining}");
        // lettre's own path (without PIPELINING) always writes CRLF before
        // the final dot, so a message ending in CRLF gains an empty line.
        let expected = if pipelining {
            body.to_vec()
        } else {
            [&body[..], b"\r\n"].concat()
        };
        for r in &received {
            assert_eq!(r.data, expected, "pipelining {pipelining}");
        }
    }
}

#[tokio::test]
async fn a_bare_cr_before_a_dot_cannot_end_the_message_early() {
    // `<CR>.<CR><LF>` ends DATA at some receivers, and what follows would be
    // read as a second, smuggled transaction. It must arrive as a line of
    // its own holding a dot, inside the one message.
    let body = b"Subject: s\r\n\r\nx\r.\r\nMAIL FROM:<evil@example.net>\r\nend\n.\nlast\r\n";
    let expected: &[u8] =
        b"Subject: s\r\n\r\nx\r\n.\r\nMAIL FROM:<evil@example.net>\r\nend\r\n.\r\nlast\r\n";
    for pipelining in [true, false] {
        let sink = Sink::start(SinkConfig {
            pipelining,
            ..SinkConfig::default()
        })
        .await
        .unwrap();
        let mut conn = Connection::open(&settings_for(&sink)).await.unwrap();
        let outcome = conn
            .send(&addr("news@example.com"), &addr("r@example.org"), body)
            .await;
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        let received = sink.messages();
        assert_eq!(received.len(), 1, "pipelining {pipelining}");
        let data = &received[0].data;
        assert!(
            !postino_domain::wire::has_bare_line_ending(data),
            "pipelining {pipelining}: {:?}",
            String::from_utf8_lossy(data)
        );
        assert!(
            data.starts_with(expected),
            "pipelining {pipelining}: {:?}",
            String::from_utf8_lossy(data)
        );
    }
}
