//! CSV downloads read in keyset batches: the subscribers matching a search
//! and an import's bad rows. One stream serves both, so memory stays flat
//! at any size and every cell is neutralised the same way.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use postino_db::subscribers::SubscriberFilter;
use postino_db::{DbError, PgPool, export, imports};
use postino_domain::text::csv_cell;
use serde_json::Value;

/// Rows fetched a batch at a time. Large enough that a million rows is a
/// few hundred queries, small enough that a batch's memory is a few MiB.
const BATCH: i64 = 5_000;

/// A CSV document, produced batch by batch.
pub type CsvStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// One batch: each row's keyset position and its cells, already safe for
/// spreadsheets.
type Batch = Vec<(i64, Vec<String>)>;

struct Keyset<F> {
    pool: PgPool,
    fetch: F,
    after: i64,
    header: Option<&'static [&'static str]>,
    done: bool,
}

/// Streams `header` then every row `fetch` returns after each key, a batch
/// of [`BATCH`] at a time, until a batch comes back short. A connection is
/// held only while a batch is read, never while the client is slow.
fn keyset_csv<F, Fut>(pool: PgPool, header: &'static [&'static str], fetch: F) -> CsvStream
where
    F: Fn(PgPool, i64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Batch, DbError>> + Send,
{
    let start = Keyset {
        pool,
        fetch,
        after: 0,
        header: Some(header),
        done: false,
    };
    Box::pin(futures_util::stream::try_unfold(
        start,
        |mut st| async move {
            if st.done {
                return Ok::<_, std::io::Error>(None);
            }
            let mut writer = csv::Writer::from_writer(Vec::new());
            if let Some(header) = st.header.take() {
                writer.write_record(header)?;
            }
            let rows = (st.fetch)(st.pool.clone(), st.after)
                .await
                .map_err(std::io::Error::other)?;
            st.done = rows.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
            for (key, cells) in rows {
                writer.write_record(&cells)?;
                st.after = key;
            }
            let bytes = writer
                .into_inner()
                .map_err(csv::IntoInnerError::into_error)?;
            Ok(Some((Bytes::from(bytes), st)))
        },
    ))
}

/// Everyone matching `filter`: `email,name,attributes`.
#[must_use]
pub fn subscribers_csv(pool: PgPool, filter: SubscriberFilter) -> CsvStream {
    keyset_csv(
        pool,
        &["email", "name", "attributes"],
        move |pool, after| {
            let filter = filter.clone();
            async move {
                let mut conn = pool.acquire().await?;
                let rows = export::batch_after(&mut conn, &filter, after, BATCH).await?;
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let attributes = match &row.attributes {
                            Value::Object(map) if map.is_empty() => String::new(),
                            other => other.to_string(),
                        };
                        let cells = vec![
                            csv_cell(row.email.as_str()).into_owned(),
                            csv_cell(row.name.as_str()).into_owned(),
                            csv_cell(attributes.as_str()).into_owned(),
                        ];
                        (row.id, cells)
                    })
                    .collect())
            }
        },
    )
}

/// Import `import_id`'s bad rows: `line,reason,original`. The original row
/// is whatever the file held, and the reason may quote it: neither may run
/// as a formula.
#[must_use]
pub fn import_errors_csv(pool: PgPool, import_id: i64) -> CsvStream {
    keyset_csv(
        pool,
        &["line", "reason", "original"],
        move |pool, after| async move {
            let mut conn = pool.acquire().await?;
            let rows = imports::errors_after(&mut conn, import_id, after, BATCH).await?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let cells = vec![
                        row.line.to_string(),
                        csv_cell(&row.reason).into_owned(),
                        csv_cell(&row.original).into_owned(),
                    ];
                    (row.line, cells)
                })
                .collect())
        },
    )
}
