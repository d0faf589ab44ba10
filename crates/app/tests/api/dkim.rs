//! DKIM: keys through the API, and campaign messages signed by the sender
//! that an independent verifier (dkimpy) accepts, also after a relay has
//! refolded their headers.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dkimpy;
use crate::helpers::{TestApp, spawn_app, spawn_app_as};

const RSA_PKCS1_PEM: &str = include_str!("fixtures/dkim-rsa-pkcs1.pem");
/// `openssl rsa -in dkim-rsa-pkcs1.pem -pubout -outform DER | base64`
const RSA_PUBLIC_B64: &str = include_str!("fixtures/dkim-rsa-pkcs1.pub.b64");
const ED25519_PKCS8_PEM: &str = include_str!("fixtures/dkim-ed25519-pkcs8.pem");
/// The raw public key of `dkim-ed25519-pkcs8.pem`.
const ED25519_PUBLIC_B64: &str = "RftL90qGxooL3OWyrC/6RlDCtxLG3/ppU0El2vzWBlE=";

async fn create_key(app: &TestApp, body: Value) -> Value {
    app.post("/api/v1/dkim-keys", body)
        .await
        .expect(StatusCode::CREATED)
        .body
}

/// The PEM's base64 body, to look for in what the API returns.
fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

/// No secret part of the keys in `pems` is in `text`. An RSA key's first
/// lines hold its modulus, which is public; from the seventh line on it is
/// the private exponent and primes. An Ed25519 key is one line.
fn assert_no_private_key(text: &str, pems: &[&str]) {
    for pem in pems {
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let secret = if body.len() > 1 {
            &body[6..]
        } else {
            &body[..]
        };
        for line in secret {
            assert!(
                !text.contains(line),
                "a line of a private key came back: {text}"
            );
        }
    }
}

fn assert_record(key: &Value, name: &str, k: &str) {
    let record = &key["dns_record"];
    assert_eq!(record["name"], name);
    assert_eq!(record["type"], "TXT");
    let value = record["value"].as_str().unwrap();
    assert!(value.starts_with(&format!("v=DKIM1; k={k}; p=")), "{value}");
    let strings: Vec<&str> = record["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(strings.iter().all(|s| s.len() <= 255), "{strings:?}");
    assert_eq!(strings.concat(), value);
    assert!(
        record["zone_file_line"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{name}. IN TXT ( \"v=DKIM1"))
    );
}

#[tokio::test]
async fn keys_are_generated_or_imported_and_only_their_dns_record_comes_back() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let rsa = create_key(
        &app,
        json!({"domain": "Acme.Example", "selector": "Gen2026", "algorithm": "rsa-sha256"}),
    )
    .await;
    let ed = create_key(
        &app,
        json!({"domain": "acme.example", "selector": "ed", "algorithm": "ed25519-sha256"}),
    )
    .await;
    let imported_rsa = create_key(
        &app,
        json!({"domain": "shop.example", "selector": "s1", "private_key": RSA_PKCS1_PEM, "enabled": false}),
    )
    .await;
    let imported_ed = create_key(
        &app,
        json!({"domain": "shop.example", "selector": "s2", "algorithm": "ed25519-sha256", "private_key": ED25519_PKCS8_PEM}),
    )
    .await;

    // Assert: names normalised, algorithms read from imported keys, records
    // publish the keys' public halves.
    assert_eq!(rsa["domain"], "acme.example");
    assert_eq!(rsa["selector"], "gen2026");
    assert_eq!(rsa["algorithm"], "rsa-sha256");
    assert_eq!(rsa["enabled"], true);
    assert_record(&rsa, "gen2026._domainkey.acme.example", "rsa");
    assert!(rsa["dns_record"]["strings"].as_array().unwrap().len() >= 2);
    assert_eq!(ed["algorithm"], "ed25519-sha256");
    assert_record(&ed, "ed._domainkey.acme.example", "ed25519");
    assert_eq!(imported_rsa["algorithm"], "rsa-sha256");
    assert_eq!(imported_rsa["enabled"], false);
    assert_eq!(
        imported_rsa["dns_record"]["value"],
        format!("v=DKIM1; k=rsa; p={}", RSA_PUBLIC_B64.trim())
    );
    assert_eq!(
        imported_ed["dns_record"]["value"],
        format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC_B64}")
    );

    // No response carries a private key.
    let list = app.get("/api/v1/dkim-keys").await.expect(StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 4);
    for key in list.body["items"].as_array().unwrap() {
        let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        assert!(!fields.iter().any(|f| f.contains("private")), "{fields:?}");
    }
    let one = app
        .get(&format!(
            "/api/v1/dkim-keys/{}",
            imported_rsa["id"].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    for text in [
        list.text.as_str(),
        one.text.as_str(),
        &rsa.to_string(),
        &ed.to_string(),
        &imported_rsa.to_string(),
        &imported_ed.to_string(),
    ] {
        assert_no_private_key(text, &[RSA_PKCS1_PEM, ED25519_PKCS8_PEM]);
    }

    // Stored sealed: no imported key's bytes, and no PKCS#8 structure, in
    // the table.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT private_key_encrypted FROM dkim_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    let rsa_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let ed_oid = [0x06, 0x03, 0x2b, 0x65, 0x70];
    for sealed in &stored {
        assert!(!sealed.windows(rsa_oid.len()).any(|w| w == rsa_oid));
        assert!(!sealed.windows(ed_oid.len()).any(|w| w == ed_oid));
        for pem in [RSA_PKCS1_PEM, ED25519_PKCS8_PEM] {
            let der = pem_body(pem);
            // The imported key's secret part (its last bytes) is not there.
            let tail = &der[der.len() - 32..];
            assert!(!sealed.windows(32).any(|w| w == tail));
        }
    }
}

#[tokio::test]
async fn bad_keys_are_refused_with_the_field_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (json!({"domain": "localhost", "selector": "s1"}), "domain"),
        (
            json!({"domain": "exa mple.com", "selector": "s1"}),
            "domain",
        ),
        (
            json!({"domain": "example.com", "selector": "bad_selector"}),
            "selector",
        ),
        (json!({"domain": "example.com", "selector": ""}), "selector"),
        (
            json!({"domain": "example.com", "selector": "s1", "algorithm": "rsa-sha1"}),
            "algorithm",
        ),
        (
            json!({"domain": "example.com", "selector": "s1", "private_key": "not a key"}),
            "private_key",
        ),
        (
            json!({"domain": "example.com", "selector": "s1",
                   "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
            "private_key",
        ),
        (
            json!({"domain": "example.com", "selector": "s1", "algorithm": "rsa-sha256",
                   "private_key": ED25519_PKCS8_PEM}),
            "algorithm",
        ),
        (json!({"selector": "s1"}), "domain"),
    ];
    for (body, field) in cases {
        let reply = app
            .post("/api/v1/dkim-keys", body.clone())
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
        assert_no_private_key(&reply.text, &[ED25519_PKCS8_PEM]);
    }
    assert_eq!(app.count("SELECT count(*) FROM dkim_keys").await, 0);

    // The same selector twice for one domain.
    create_key(
        &app,
        json!({"domain": "example.com", "selector": "s1", "algorithm": "ed25519-sha256"}),
    )
    .await;
    app.post(
        "/api/v1/dkim-keys",
        json!({"domain": "EXAMPLE.com", "selector": "S1", "private_key": ED25519_PKCS8_PEM}),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "selector");
    assert_eq!(app.count("SELECT count(*) FROM dkim_keys").await, 1);
}

#[tokio::test]
async fn a_campaign_says_which_key_signs_it_and_follows_enable_disable_and_delete() {
    // Arrange
    let app = spawn_app().await;
    let campaign = |from: &str| {
        json!({"name": "Spring", "subject": "Hi", "from_email": from,
               "body": "<a href=\"{{ unsubscribe_url }}\">leave</a>"})
    };
    let c = app
        .post("/api/v1/campaigns", campaign("news@mail.acme.example"))
        .await
        .expect(StatusCode::CREATED)
        .body;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["dkim"]["signed"], false, "{c}");
    assert!(
        c["dkim"]["note"]
            .as_str()
            .unwrap()
            .contains("mail.acme.example"),
        "{c}"
    );

    // Act: a key for the parent domain covers the subdomain.
    let key = create_key(
        &app,
        json!({"domain": "acme.example", "selector": "s1", "algorithm": "ed25519-sha256"}),
    )
    .await;
    let key_path = format!("/api/v1/dkim-keys/{}", key["id"].as_str().unwrap());
    let signed = app.get(&format!("/api/v1/campaigns/{id}")).await.body;
    let preview = app
        .post(&format!("/api/v1/campaigns/{id}/preview"), json!({}))
        .await
        .expect(StatusCode::OK)
        .body;
    app.patch(&key_path, json!({"enabled": false}))
        .await
        .expect(StatusCode::OK);
    let disabled = app.get("/api/v1/campaigns").await.body["items"][0].clone();
    app.patch(&key_path, json!({"enabled": true}))
        .await
        .expect(StatusCode::OK);
    app.delete(&key_path).await.expect(StatusCode::NO_CONTENT);
    let deleted = app.get(&format!("/api/v1/campaigns/{id}")).await.body;

    // Assert
    assert_eq!(
        signed["dkim"],
        json!({"signed": true, "domain": "acme.example", "selector": "s1",
               "algorithm": "ed25519-sha256", "note": "signed with s1._domainkey.acme.example (ed25519-sha256)"})
    );
    assert_eq!(preview["dkim"]["signed"], true);
    let mime = preview["mime"].as_str().unwrap();
    assert!(
        mime.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; s=s1; d=acme.example;"),
        "{mime}"
    );
    assert!(preview["headers"][0]["name"] == "DKIM-Signature");
    assert_eq!(disabled["dkim"]["signed"], false);
    assert_eq!(deleted["dkim"]["signed"], false);
    app.get(&key_path).await.expect(StatusCode::NOT_FOUND);
    app.delete(&key_path).await.expect(StatusCode::NOT_FOUND);
}

/// The app with every role, sending to `sink`.
async fn sending_app(sink: &Sink) -> TestApp {
    let port = sink.addr().port();
    spawn_app_as(postino_app::Role::All, |s| {
        s.smtp.port = port;
        s.smtp.max_connections = 2;
        s.scheduler.tick_ms = 50;
        s.sender.idle_poll = Duration::from_millis(50);
        s.sender.reload_servers = Duration::from_millis(100);
        s.sender.record_interval = Duration::from_millis(20);
        s.http.root_url = "https://news.example.com".to_owned();
    })
    .await
}

/// A list of `n` subscribers, `<prefix>{i}@example.org`.
async fn audience(app: &TestApp, prefix: &str, n: i64) -> String {
    let list = app.create_list(prefix, "single").await;
    sqlx::query(
        "WITH s AS (
            INSERT INTO subscribers (uuid, email, name)
            SELECT gen_random_uuid(), $2 || g || '@example.org', 'Reader ' || g FROM generate_series(1, $3) g
            RETURNING id)
         INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT (SELECT id FROM lists WHERE uuid = $1::uuid), id, 'confirmed' FROM s",
    )
    .bind(&list)
    .bind(prefix)
    .bind(n)
    .execute(&app.pool)
    .await
    .unwrap();
    list
}

/// Sends a campaign from `from` to a new list of `n` and waits until it is
/// finished; returns the campaign as the API shows it before the send.
async fn send_campaign(app: &TestApp, from: &str, prefix: &str, n: i64) -> Value {
    let list = audience(app, prefix, n).await;
    // Long enough, and with non-ASCII, for the Subject to be encoded and folded.
    let subject = "Nouvelles de la semaine pour {{ subscriber.name }} : les actualités, les offres et tout le reste ✉";
    let campaign = app
        .post(
            "/api/v1/campaigns",
            json!({"name": prefix, "subject": subject, "from_name": "Acmé News", "from_email": from,
                   "body": "<p>Hello {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
                   "lists": [list]}),
        )
        .await
        .expect(StatusCode::CREATED)
        .body;
    let id = campaign["id"].as_str().unwrap();
    app.put(
        &format!("/api/v1/campaigns/{id}/status"),
        json!({"status": "running"}),
    )
    .await
    .expect(StatusCode::OK);
    for _ in 0..600 {
        let c = app.get(&format!("/api/v1/campaigns/{id}")).await.body;
        if c["status"] == "finished" {
            return campaign;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("campaign from {from} did not finish");
}

fn header_block(raw: &[u8]) -> (&[u8], &[u8]) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    (&raw[..at + 2], &raw[at + 2..])
}

/// The message as a relay may pass it on: a `Received` header on top;
/// `Subject` and `To` unfolded and refolded at other spaces with other
/// whitespace, their names in capitals and spaces after the colon; trailing
/// whitespace on body lines. Relaxed canonicalisation must see no change.
fn refold(raw: &[u8]) -> Vec<u8> {
    let (head, body) = header_block(raw);
    let head = String::from_utf8(head.to_vec()).unwrap();
    // Header fields with their continuation lines.
    let mut fields: Vec<String> = Vec::new();
    for line in head.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            fields.last_mut().unwrap().push_str(line);
        } else {
            fields.push(line.to_owned());
        }
    }
    let mut out = String::from(
        "Received: from relay.example.net by mx.example.org; Mon, 30 Nov 2026 10:00:00 +0000\r\n",
    );
    let mut refolded = 0;
    for field in fields {
        let (name, value) = field.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("subject") || name.eq_ignore_ascii_case("to") {
            let unfolded = value.replace("\r\n", "");
            let words: Vec<&str> = unfolded.split_whitespace().collect();
            let mut v = String::new();
            for (i, word) in words.iter().enumerate() {
                if i > 0 {
                    v.push_str(if i % 2 == 1 { "\r\n\t  " } else { "   " });
                }
                v.push_str(word);
            }
            out.push_str(&format!("{}:   {v}\r\n", name.to_uppercase()));
            refolded += 1;
        } else {
            out.push_str(&field);
        }
    }
    assert_eq!(refolded, 2, "Subject and To refolded");
    let mut bytes = out.into_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    for line in body.split_inclusive("\r\n") {
        match line.strip_suffix("\r\n") {
            Some(content) if !content.is_empty() => {
                bytes.extend_from_slice(content.as_bytes());
                bytes.extend_from_slice(b" \t \r\n");
            }
            _ => bytes.extend_from_slice(line.as_bytes()),
        }
    }
    assert_ne!(bytes, raw);
    bytes
}

/// The message with its signed `Message-ID` altered by one character: the
/// verifier must refuse it, or its approval above proves nothing.
fn tampered(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(text.contains("\r\nMessage-ID: <"), "a Message-ID to alter");
    text.replacen("\r\nMessage-ID: <", "\r\nMessage-ID: <x", 1)
        .into_bytes()
}

fn header_from(raw: &[u8]) -> String {
    let (head, _) = header_block(raw);
    let head = String::from_utf8_lossy(head).replace("\r\n ", " ");
    head.lines()
        .find_map(|l| l.strip_prefix("From: "))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn campaign_messages_verify_with_dkimpy_for_rsa_and_ed25519_even_refolded() {
    // Arrange: an RSA key for acme.example, generated; an Ed25519 key for
    // ed.example, imported; none for plain.example.
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink).await;
    let rsa = create_key(
        &app,
        json!({"domain": "acme.example", "selector": "rsa2026", "algorithm": "rsa-sha256"}),
    )
    .await;
    let ed = create_key(
        &app,
        json!({"domain": "ed.example", "selector": "ed2026", "private_key": ED25519_PKCS8_PEM}),
    )
    .await;
    let dns: HashMap<String, String> = [&rsa, &ed]
        .iter()
        .map(|k| {
            (
                k["dns_record"]["name"].as_str().unwrap().to_owned(),
                k["dns_record"]["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Act: a campaign from a subdomain of acme.example (signed with the
    // parent's key), one from ed.example, one from a domain without a key.
    let by_rsa = send_campaign(&app, "news@mail.acme.example", "rsa", 5).await;
    let by_ed = send_campaign(&app, "news@ed.example", "ed", 5).await;
    let unsigned = send_campaign(&app, "news@plain.example", "plain", 3).await;

    // Assert: the campaigns said so beforehand.
    assert_eq!(by_rsa["dkim"]["domain"], "acme.example", "{by_rsa}");
    assert_eq!(by_ed["dkim"]["selector"], "ed2026", "{by_ed}");
    assert_eq!(unsigned["dkim"]["signed"], false, "{unsigned}");

    let messages: Vec<Vec<u8>> = sink
        .messages()
        .into_iter()
        .map(|m| m.data.clone())
        .collect();
    assert_eq!(messages.len(), 13);
    let from = |domain: &str| -> Vec<Vec<u8>> {
        messages
            .iter()
            .filter(|m| header_from(m).ends_with(&format!("@{domain}>")))
            .cloned()
            .collect()
    };
    let (rsa_msgs, ed_msgs, plain_msgs) = (
        from("mail.acme.example"),
        from("ed.example"),
        from("plain.example"),
    );
    assert_eq!((rsa_msgs.len(), ed_msgs.len(), plain_msgs.len()), (5, 5, 3));
    for m in &rsa_msgs {
        let text = String::from_utf8_lossy(m);
        assert!(
            text.starts_with(
                "DKIM-Signature: v=1; a=rsa-sha256; s=rsa2026; d=acme.example; c=relaxed/relaxed"
            ),
            "{text}"
        );
        assert_eq!(text.matches("DKIM-Signature:").count(), 1, "signed once");
    }
    for m in &ed_msgs {
        let text = String::from_utf8_lossy(m);
        assert!(
            text.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; s=ed2026; d=ed.example;"),
            "{text}"
        );
    }
    for m in &plain_msgs {
        assert!(
            !String::from_utf8_lossy(m).contains("DKIM-Signature"),
            "sent unsigned"
        );
    }

    let signed: Vec<Vec<u8>> = rsa_msgs.iter().chain(&ed_msgs).cloned().collect();
    let refolded: Vec<Vec<u8>> = signed.iter().map(|m| refold(m)).collect();
    let forged: Vec<Vec<u8>> = signed.iter().map(|m| tampered(m)).collect();
    for (what, batch, expected) in [
        ("as received", &signed, true),
        ("refolded by a relay", &refolded, true),
        ("altered", &forged, false),
    ] {
        let results = dkimpy::verify(batch, &dns).await;
        assert_eq!(results.len(), batch.len());
        for (i, (ok, reason)) in results.iter().enumerate() {
            assert_eq!(
                *ok,
                expected,
                "message {i} {what}: {reason}\n{}",
                String::from_utf8_lossy(&batch[i])
            );
        }
    }
}
