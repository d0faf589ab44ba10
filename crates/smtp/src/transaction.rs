//! One mail transaction in two writes, for relays that offer PIPELINING
//! (RFC 2920): the envelope (MAIL, RCPT, DATA) in one write, then the
//! dot-stuffed message with its final dot in another. lettre's own `send`
//! makes five writes and four round trips per message, and dot-stuffs byte
//! by byte; on a bulk send that conversation costs more than building the
//! message.

use std::fmt;

use lettre::Address;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

/// Text already formatted as SMTP lines, written as it is.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether the server offers PIPELINING. lettre parses only the EHLO
/// keywords it uses itself, so this asks again and reads the reply.
pub(crate) async fn offers_pipelining(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, Error> {
    let reply = conn.command(Ehlo::new(hello.clone())).await?;
    Ok(reply
        .message()
        .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")))
}

/// The message with its line endings made CRLF (see
/// [`postino_domain::wire`]: no bare CR or LF may reach the wire, where it
/// could end DATA early at some receivers), every line that starts with a
/// dot given a second one, ending in CRLF, then the lone dot that ends DATA.
pub(crate) fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let message = &*postino_domain::wire::crlf_line_endings(message);
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut start = 0;
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    for newline in memchr::memchr_iter(b'\n', message) {
        if message.get(newline + 1) == Some(&b'.') {
            out.extend_from_slice(&message[start..=newline]);
            out.push(b'.');
            start = newline + 1;
        }
    }
    out.extend_from_slice(&message[start..]);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Sends one message to one recipient. The caller must drop the session on
/// an error: after a refusal mid-transaction the replies still owed are not
/// read.
pub(crate) async fn send(
    conn: &mut AsyncSmtpConnection,
    from: Address,
    to: Address,
    message: &[u8],
) -> Result<Response, Error> {
    let mut parameters = Vec::new();
    if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
    if !(ascii(&from) && ascii(&to)) && conn.server_info().supports_feature(Extension::SmtpUtfEight)
    {
        parameters.push(MailParameter::SmtpUtfEight);
    }
    let envelope = format!(
        "{}{}{}",
        Mail::new(Some(from), parameters),
        Rcpt::new(to, Vec::new()),
        Data
    );
    // The reply to MAIL comes back for the write; RCPT's and DATA's follow.
    conn.command(Raw(&envelope)).await?;
    conn.read_response().await?;
    conn.read_response().await?;
    let body = dot_stuffed(message);
    // Messages are built from strings, so they are UTF-8; anything else
    // goes out through lettre's byte-level path.
    match std::str::from_utf8(&body) {
        Ok(text) => conn.command(Raw(text)).await,
        Err(_) => conn.message(message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn lines_starting_with_a_dot_get_a_second_one_and_data_ends_with_a_lone_dot() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\r\n..c\r\n"),
            b"a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b".first\r\nx"), b"..first\r\nx\r\n.\r\n");
        assert_eq!(dot_stuffed(b"no dots\r\n"), b"no dots\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a.b\r\n"), b"a.b\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), b"\r\n.\r\n");
        assert_eq!(dot_stuffed(b"x\r\n."), b"x\r\n..\r\n.\r\n");
    }

    #[test]
    fn a_dot_after_a_bare_cr_or_lf_is_stuffed_on_a_line_of_its_own() {
        // `<CR>.<CR><LF>` would end DATA at a lenient receiver and start a
        // smuggled message; it must go out as a stuffed dot line.
        assert_eq!(
            dot_stuffed(b"x\r.\r\nMAIL FROM:<a@b>\r\n"),
            b"x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"x\n.\ny"), b"x\r\n..\r\ny\r\n.\r\n");
    }
}
