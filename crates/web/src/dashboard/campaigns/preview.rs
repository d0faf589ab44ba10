//! A rendered preview as the campaign page shows it, beside the editor
//! and in the fragment the live preview replaces.

use postino_service::campaigns::Preview;

/// A rendered preview as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct PreviewPart {
    pub(crate) subject: String,
    /// The HTML, for the sandboxed frame; `None` for plain-text campaigns.
    pub(crate) html: Option<String>,
    pub(crate) text: String,
    pub(crate) dkim: String,
}

impl From<Preview> for PreviewPart {
    fn from(p: Preview) -> Self {
        Self {
            subject: p.subject,
            html: p.html,
            text: p.text,
            dkim: p.dkim.note,
        }
    }
}
