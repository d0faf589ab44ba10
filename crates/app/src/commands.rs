//! The sub-commands besides `serve`: bootstrap users and tokens, the demo.

use anyhow::Context;
use postino_db::{PgPool, api_tokens, campaigns, lists, users};
use postino_domain::{
    ApiScope, BodyFormat, EmailAddress, ListName, ListVisibility, OptIn, Password, Role, Tags,
    TokenName,
};
use postino_importer::ImportSettings;
use rand::Rng;

/// Hashes a password with argon2id off the async threads (it takes tens of
/// milliseconds on purpose).
///
/// # Errors
///
/// If the hashing task panics.
pub async fn hash_password(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password.expose()))
        .await
        .context("password hashing failed")
}

/// A random password of 20 letters and digits (about 119 bits).
#[must_use]
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Generates a DKIM key for `domain` and stores it enabled, as
/// `POST /api/v1/dkim-keys` does; returns the DNS record to publish.
///
/// # Errors
///
/// If the domain or selector is invalid or taken, or the database fails.
pub async fn generate_dkim_key(
    settings: &crate::Settings,
    pool: &PgPool,
    domain: &str,
    selector: &str,
    algorithm: postino_domain::DkimAlgorithm,
) -> anyhow::Result<postino_compose::dkim::DnsRecord> {
    use postino_compose::dkim::{DnsRecord, KeyPair};
    let domain = postino_domain::DkimDomain::parse(domain)?;
    let selector = postino_domain::DkimSelector::parse(selector)?;
    let pair = tokio::task::spawn_blocking(move || KeyPair::generate(algorithm))
        .await
        .context("key generation failed")??;
    let vault = crate::dkim_vault(settings, pool).await?;
    let sealed = vault.seal(domain.as_str(), selector.as_str(), pair.expose_pkcs8())?;
    let mut conn = pool.acquire().await?;
    postino_db::dkim_keys::create(
        &mut conn,
        postino_db::dkim_keys::NewDkimKey {
            domain: &domain,
            selector: &selector,
            algorithm,
            sealed: &sealed,
            public_key: pair.public_key(),
            enabled: true,
        },
    )
    .await?;
    Ok(DnsRecord::new(
        &domain,
        &selector,
        algorithm,
        &pair.public_key_base64(),
    ))
}

/// Creates a dashboard user.
///
/// # Errors
///
/// If the address is taken or invalid, or the database fails.
pub async fn create_user(
    pool: &PgPool,
    email: &str,
    name: &str,
    password: Password,
    role: Role,
) -> anyhow::Result<users::User> {
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let hash = hash_password(password).await?;
    let mut conn = pool.acquire().await?;
    users::create(&mut conn, &email, name, &hash, role)
        .await
        .map_err(|e| match e {
            postino_db::DbError::Conflict { .. } => {
                anyhow::anyhow!("a user with e-mail {email} already exists")
            }
            other => other.into(),
        })
}

/// Creates an installation token with the admin scope and returns its
/// secret.
///
/// # Errors
///
/// If the name is invalid or the database fails.
pub async fn create_token(pool: &PgPool, name: &str) -> anyhow::Result<String> {
    create_installation_token(pool, name, ApiScope::Admin).await
}

/// Creates an installation token: one that belongs to no dashboard user, so
/// no change to users revokes it. Only the operator makes these, on the
/// command line (or an installation token through the API); revoke them on
/// the tokens page or with `DELETE /api/v1/tokens/{id}`.
///
/// # Errors
///
/// If the name is invalid or the database fails.
pub async fn create_installation_token(
    pool: &PgPool,
    name: &str,
    scope: ApiScope,
) -> anyhow::Result<String> {
    let name = TokenName::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let mut conn = pool.acquire().await?;
    let (_, secret) = api_tokens::create(&mut conn, &name, None, scope).await?;
    Ok(secret.expose().to_owned())
}

/// What the demo set up, to print for the newcomer.
#[derive(Debug)]
pub struct DemoAccess {
    /// Dashboard login.
    pub email: String,
    /// Its password (new on every start).
    pub password: String,
    /// An API token (new on every start).
    pub token: String,
    /// Subscribers on the demo list.
    pub subscribers: i64,
}

/// The demo list, created if missing.
async fn demo_list(conn: &mut postino_db::PgConnection) -> anyhow::Result<lists::List> {
    let existing = lists::all(&mut *conn)
        .await?
        .into_iter()
        .find(|l| l.name.as_str() == DEMO_LIST);
    if let Some(list) = existing {
        return Ok(list);
    }
    let new = lists::NewList {
        name: ListName::parse(DEMO_LIST)?,
        description: "Generated subscribers for trying Postino out.".to_owned(),
        opt_in: OptIn::Single,
        visibility: ListVisibility::Public,
        tags: Tags::parse(&["demo"])?,
    };
    Ok(lists::create(conn, &new).await?)
}

/// Creates the demo list if missing and, while it is empty, imports
/// `DEMO_SUBSCRIBERS` generated people into it through the importer.
async fn import_demo_subscribers(pool: &PgPool, settings: &ImportSettings) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let list = demo_list(&mut conn).await?;
    drop(conn);
    if list.counts.confirmed + list.counts.unconfirmed > 0 {
        return Ok(());
    }
    let cities = ["Rome", "Oslo", "Lima", "Kyiv", "Porto"];
    let mut csv = String::from("Email Address,First Name,Last Name,city,customer\n");
    for n in 1..=DEMO_SUBSCRIBERS {
        let city = cities[usize::try_from(n).unwrap_or(0) % cities.len()];
        csv.push_str(&format!(
            "reader{n}@example.com,Reader,No. {n},{city},{}\n",
            n % 3 == 0
        ));
    }
    let file = std::env::temp_dir().join(format!("postino-demo-{}.csv", uuid::Uuid::new_v4()));
    tokio::fs::write(&file, csv).await?;
    let imported = crate::import_command::run(
        pool,
        settings,
        &crate::import_command::ImportRequest {
            file: &file,
            lists: &[DEMO_LIST.to_owned()],
            mode: postino_domain::ImportMode::Subscribe,
            overwrite: false,
            confirmed: true,
            progress: false,
        },
    )
    .await;
    let _ = tokio::fs::remove_file(&file).await;
    let summary = imported?;
    tracing::info!(imported = summary.job.imported, "demo subscribers imported");
    Ok(())
}

/// The demo's list name, user and size.
const DEMO_LIST: &str = "Demo newsletter";
const DEMO_USER: &str = "admin@example.com";
const DEMO_SUBSCRIBERS: i64 = 5_000;
const DEMO_CAMPAIGN: &str = "Welcome to Postino";
const DEMO_BODY: &str = "# Hello {{ subscriber.name }}\n\n\
This is a sample campaign. You live in **{{ subscriber.attributes.city | default('somewhere nice') }}**.\n\n\
<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>\n";

/// Seeds the demo data, idempotently: one list of generated subscribers
/// (imported from a generated CSV file through the importer, as a user's
/// spreadsheet would be), an admin user (password reset on every start), a
/// fresh API token and a draft campaign.
///
/// # Errors
///
/// If the database fails or the generated file cannot be written.
pub async fn seed_demo(pool: &PgPool, import: &ImportSettings) -> anyhow::Result<DemoAccess> {
    import_demo_subscribers(pool, import).await?;
    let mut tx = pool.begin().await?;
    let list = demo_list(&mut tx).await?;
    let password = random_password();
    let hash = hash_password(Password::parse(&password)?).await?;
    let email = EmailAddress::parse(DEMO_USER)?;
    match users::password_hash_for(&mut tx, &email).await {
        Ok((user, _)) => users::set_password_hash(&mut tx, user.id, &hash).await?,
        Err(postino_db::DbError::NotFound) => {
            users::create(&mut tx, &email, "Demo admin", &hash, Role::Admin).await?;
        }
        Err(e) => return Err(e.into()),
    }
    let (_, secret) =
        api_tokens::create(&mut tx, &TokenName::parse("demo")?, None, ApiScope::Admin).await?;
    let has_campaign = campaigns::all(&mut tx)
        .await?
        .iter()
        .any(|c| c.fields.name == DEMO_CAMPAIGN);
    if !has_campaign {
        let fields = campaigns::CampaignFields {
            name: DEMO_CAMPAIGN.to_owned(),
            subject: "Welcome, {{ subscriber.name }}".to_owned(),
            from_name: "Postino demo".to_owned(),
            from_email: EmailAddress::parse("news@example.com")?,
            reply_to: None,
            body: DEMO_BODY.to_owned(),
            body_format: BodyFormat::Markdown,
            text_body: None,
            template_id: None,
            tags: Tags::parse(&["demo"])?,
            headers: Vec::new(),
            smtp_group: None,
        };
        campaigns::create(&mut tx, &fields, &[list.id]).await?;
    }
    let list = lists::get(&mut tx, list.uuid).await?;
    tx.commit().await?;
    Ok(DemoAccess {
        email: DEMO_USER.to_owned(),
        password,
        token: secret.expose().to_owned(),
        subscribers: list.counts.confirmed,
    })
}
