//! One campaign message for one recipient, addressed the way every Postino
//! message is: a signed unsubscribe link, `List-Id` for the list the
//! recipient is on, and a VERP return path that names the delivery.
//!
//! The sender and the web role's preview and test send both come here, so a
//! preview is byte for byte the message a subscriber gets (bar its
//! `Message-ID` and `Date`).

use postino_domain::{CustomHeader, EmailAddress};
use uuid::Uuid;

use crate::LinkSigner;
use crate::message::{MessageError, MessageParams, OutgoingMessage, build_message};
use crate::template::{CompiledCampaign, Recipient, Rendered, TemplateError};

/// What every message of one installation shares.
#[derive(Debug, Clone)]
pub struct Addressing {
    /// Signs unsubscribe links and bounce tokens.
    pub signer: LinkSigner,
    /// The public base URL, for links (`https://news.example.com`).
    pub root_url: String,
    /// A mailbox that unsubscribes whoever writes to it, offered in
    /// `List-Unsubscribe` beside the link for clients that prefer mail.
    pub unsubscribe_mailto: Option<EmailAddress>,
    /// The domain of VERP return paths; the sender address's domain when unset.
    pub bounce_domain: Option<String>,
    /// Opens the stored DKIM private keys, for whoever signs messages.
    pub dkim_vault: crate::dkim::KeyVault,
    /// Seals and opens the stored SMTP relay passwords, for whoever stores
    /// relays or connects to them.
    pub relay_passwords: crate::PasswordVault,
}

/// The parts of a campaign that address its messages.
#[derive(Debug, Clone)]
pub struct CampaignIdentity {
    /// Public id, signed into unsubscribe links.
    pub uuid: Uuid,
    /// Sender display name.
    pub from_name: String,
    /// Sender address (`From:`).
    pub from_email: EmailAddress,
    /// `Reply-To:`, if set.
    pub reply_to: Option<EmailAddress>,
    /// Extra headers.
    pub headers: Vec<CustomHeader>,
}

/// Who one message goes to.
#[derive(Debug, Clone, Copy)]
pub struct Addressee<'a> {
    /// The subscriber as templates see them.
    pub recipient: &'a Recipient,
    /// Where it goes (normally the subscriber's address; a test send's
    /// address otherwise).
    pub to: &'a EmailAddress,
    /// The list they receive it through, for `List-Id`.
    pub list: Option<Uuid>,
    /// The delivery, for the VERP return path; `None` for previews and test
    /// sends, whose bounces go to the sender address.
    pub delivery: Option<i64>,
}

/// Why a message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A template failed for this recipient.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The message could not be built.
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl Addressing {
    /// The host part of the root URL, for `List-Id`.
    fn host(&self) -> &str {
        let rest = self
            .root_url
            .split_once("://")
            .map_or(self.root_url.as_str(), |(_, r)| r);
        rest.split(['/', ':'])
            .next()
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost")
    }

    /// The one-click unsubscribe URL for a subscriber of a campaign.
    #[must_use]
    pub fn unsubscribe_url(&self, campaign: Uuid, subscriber: Uuid) -> String {
        format!(
            "{}/unsubscribe/{}",
            self.root_url.trim_end_matches('/'),
            self.signer.unsubscribe_token(campaign, subscriber)
        )
    }

    /// The envelope sender of a delivery: `bounces+<token>@<bounce domain>`.
    /// Falls back to the campaign's sender address should that not parse
    /// (an unusual configured domain).
    #[must_use]
    pub fn return_path(&self, delivery: i64, from: &EmailAddress) -> EmailAddress {
        let domain = self.bounce_domain.as_deref().unwrap_or(from.domain());
        EmailAddress::parse(&format!(
            "bounces+{}@{domain}",
            self.signer.bounce_token(delivery)
        ))
        .unwrap_or_else(|_| from.clone())
    }

    /// Renders and builds the message for one addressee, in this process.
    ///
    /// # Errors
    ///
    /// [`ComposeError`] if a template fails for this recipient or the
    /// message cannot be built.
    pub fn compose(
        &self,
        compiled: &CompiledCampaign,
        campaign: &CampaignIdentity,
        to: Addressee<'_>,
    ) -> Result<(Rendered, OutgoingMessage), ComposeError> {
        let unsubscribe_url = self.unsubscribe_url(campaign.uuid, to.recipient.id);
        let rendered = compiled.render(to.recipient, &unsubscribe_url)?;
        let message = self.build(&rendered, campaign, to)?;
        Ok((rendered, message))
    }

    /// Builds the message for one addressee from content already rendered
    /// for them (with [`Addressing::unsubscribe_url`] as `unsubscribe_url`),
    /// as a sandboxed render returns it.
    ///
    /// # Errors
    ///
    /// [`MessageError`] if the message cannot be built.
    pub fn build(
        &self,
        rendered: &Rendered,
        campaign: &CampaignIdentity,
        to: Addressee<'_>,
    ) -> Result<OutgoingMessage, MessageError> {
        let unsubscribe_url = self.unsubscribe_url(campaign.uuid, to.recipient.id);
        let list_id = to.list.map(|l| format!("{}.{}", l.simple(), self.host()));
        let mailto = self.unsubscribe_mailto.as_ref().map(|m| {
            format!(
                "mailto:{m}?subject=unsubscribe%20{}",
                self.signer
                    .unsubscribe_token(campaign.uuid, to.recipient.id)
            )
        });
        let mut message = build_message(
            rendered,
            &MessageParams {
                from_name: &campaign.from_name,
                from_email: &campaign.from_email,
                reply_to: campaign.reply_to.as_ref(),
                to_name: &to.recipient.name,
                to_email: to.to,
                unsubscribe_url: &unsubscribe_url,
                unsubscribe_mailto: mailto.as_deref(),
                list_id: list_id.as_deref(),
                headers: &campaign.headers,
            },
        )?;
        if let Some(delivery) = to.delivery {
            message.from = self.return_path(delivery, &campaign.from_email);
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::CampaignSource;
    use postino_domain::BodyFormat;

    #[test]
    fn a_delivery_gets_a_verp_return_path_list_id_and_both_unsubscribe_ways() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let addressing = Addressing {
            signer: signer.clone(),
            root_url: "https://news.example.com:8443/".to_owned(),
            unsubscribe_mailto: Some(EmailAddress::parse("leave@news.example.com").unwrap()),
            bounce_domain: Some("bounce.example.com".to_owned()),
            dkim_vault: crate::dkim::KeyVault::new(b"test").unwrap(),
            relay_passwords: crate::PasswordVault::new(b"test").unwrap(),
        };
        let campaign = CampaignIdentity {
            uuid: Uuid::new_v4(),
            from_name: "Acme".to_owned(),
            from_email: EmailAddress::parse("news@example.com").unwrap(),
            reply_to: None,
            headers: vec![],
        };
        let compiled = CompiledCampaign::compile(&CampaignSource {
            uuid: campaign.uuid,
            name: "spring",
            subject: "Hello {{ subscriber.name }}",
            body: "<p>Hi</p><a href=\"{{ unsubscribe_url }}\">leave</a>",
            format: BodyFormat::Html,
            text_body: None,
            layout: None,
        })
        .unwrap();
        let recipient = Recipient::sample();
        let to = EmailAddress::parse(&recipient.email).unwrap();
        let list = Uuid::new_v4();
        let (rendered, message) = addressing
            .compose(
                &compiled,
                &campaign,
                Addressee {
                    recipient: &recipient,
                    to: &to,
                    list: Some(list),
                    delivery: Some(77),
                },
            )
            .unwrap();
        assert_eq!(rendered.subject, "Hello Jane Doe");
        let local = message.from.as_str().split('@').next().unwrap().to_owned();
        assert_eq!(message.from.domain(), "bounce.example.com");
        let token = local.strip_prefix("bounces+").unwrap();
        assert_eq!(signer.verify_bounce(token), Some(77));
        let text = String::from_utf8(message.bytes).unwrap();
        assert!(
            text.contains(&format!("List-Id: <{}.news.example.com>", list.simple())),
            "{text}"
        );
        assert!(
            text.contains("<https://news.example.com:8443/unsubscribe/"),
            "{text}"
        );
        assert!(
            text.contains("<mailto:leave@news.example.com?subject=unsubscribe%20"),
            "{text}"
        );
        assert!(text.contains("From: Acme <news@example.com>"), "{text}");
    }
}
