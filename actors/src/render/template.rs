//! Which HTML page a channel renders: the built-in default, a local file or a web page.

use super::error::RenderError;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The built-in template (artwork, title, artist, album, genre, progress, clock, channel),
/// embedded in the binary; it needs no network and scales with the viewport.
pub const DEFAULT_TEMPLATE_HTML: &str = include_str!("default_template.html");

/// A channel's HTML template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Template {
    /// [`DEFAULT_TEMPLATE_HTML`].
    Default,
    /// A local HTML file (absolute path).
    File(PathBuf),
    /// An `http://` or `https://` page.
    Url(String),
}

impl FromStr for Template {
    type Err = RenderError;

    /// `""` or `"default"`, an absolute path, `file:///abs/path.html`, or `http(s)://...`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| RenderError::TemplateSetting { input: input.to_string(), reason: reason.to_string() };
        let s = input.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("default") {
            return Ok(Template::Default);
        }
        if let Some(rest) = s.strip_prefix("file://") {
            let path = percent_decode(rest).ok_or_else(|| bad("the file URL has a bad %-escape"))?;
            if !path.starts_with('/') {
                return Err(bad("a file:// URL needs an absolute path (file:///dir/page.html)"));
            }
            return Ok(Template::File(PathBuf::from(path)));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            if s.len() <= lower.find("://").unwrap_or(0) + 3 {
                return Err(bad("the URL has no host"));
            }
            return Ok(Template::Url(s.to_string()));
        }
        if s.starts_with('/') {
            return Ok(Template::File(PathBuf::from(s)));
        }
        Err(bad("unknown kind of template"))
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Template::Default => write!(f, "default"),
            Template::File(p) => write!(f, "{}", file_url(p)),
            Template::Url(u) => write!(f, "{u}"),
        }
    }
}

impl Template {
    /// The URL Chromium navigates to. The default template is passed as a `data:` URL.
    pub(crate) fn navigation_url(&self) -> String {
        match self {
            Template::Default => format!(
                "data:text/html;charset=utf-8;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(DEFAULT_TEMPLATE_HTML)
            ),
            Template::File(p) => file_url(p),
            Template::Url(u) => u.clone(),
        }
    }

    /// The scheme, host and port of an http(s) template (the origin it may load from).
    pub(crate) fn origin(&self) -> Option<String> {
        let Template::Url(u) = self else { return None };
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let scheme = scheme.to_ascii_lowercase();
        let has_port = match authority.rfind(']') {
            Some(end) => authority[end..].contains(':'),
            None => authority.contains(':'),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        Some(if has_port { format!("{scheme}://{authority}") } else { format!("{scheme}://{authority}:{default_port}") })
    }

    /// Checks that a file template can be read, before any page is opened.
    pub(crate) fn check_readable(&self) -> Result<(), RenderError> {
        if let Template::File(path) = self {
            std::fs::File::open(path)
                .map_err(|e| RenderError::TemplateMissing { path: path.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }
}

/// A hash that changes when the template changes: SHA-256 (hex) of the page's HTML for the
/// default and file templates, of the URL for http(s) templates (their content is the
/// server's; re-render when the URL changes).
pub fn template_fingerprint(template: &Template) -> Result<String, RenderError> {
    let mut hash = Sha256::new();
    match template {
        Template::Default => hash.update(DEFAULT_TEMPLATE_HTML.as_bytes()),
        Template::File(path) => hash.update(
            std::fs::read(path).map_err(|e| RenderError::TemplateMissing { path: path.clone(), reason: e.to_string() })?,
        ),
        Template::Url(url) => hash.update(url.as_bytes()),
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `file://` URL of an absolute path, %-escaping what a URL cannot hold literally.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!("".parse::<Template>().unwrap(), Template::Default);
        assert_eq!("Default".parse::<Template>().unwrap(), Template::Default);
        assert_eq!("/srv/t.html".parse::<Template>().unwrap(), Template::File("/srv/t.html".into()));
        assert_eq!("file:///srv/my%20t.html".parse::<Template>().unwrap(), Template::File("/srv/my t.html".into()));
        assert_eq!("https://x.test/a".parse::<Template>().unwrap(), Template::Url("https://x.test/a".into()));
        assert!("file://relative.html".parse::<Template>().is_err());
        assert!("ftp://x".parse::<Template>().is_err());
        assert!("page.html".parse::<Template>().is_err());
        assert!("http://".parse::<Template>().is_err());
    }

    #[test]
    fn file_urls_round_trip() {
        let t = Template::File("/srv/a b#c%.html".into());
        let url = t.navigation_url();
        assert_eq!(url, "file:///srv/a%20b%23c%25.html");
        assert_eq!(url.parse::<Template>().unwrap(), t);
    }

    #[test]
    fn origins() {
        assert_eq!(Template::Url("http://127.0.0.1:8080/x?y".into()).origin().unwrap(), "http://127.0.0.1:8080");
        assert_eq!(Template::Url("https://h.test/x".into()).origin().unwrap(), "https://h.test:443");
        assert_eq!(Template::Url("http://[::1]/x".into()).origin().unwrap(), "http://[::1]:80");
        assert_eq!(Template::Default.origin(), None);
    }

    #[test]
    fn fingerprint_follows_content() {
        let dir = std::env::temp_dir().join(format!("headend-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.html");
        std::fs::write(&f, "<p>a</p>").unwrap();
        let a = template_fingerprint(&Template::File(f.clone())).unwrap();
        std::fs::write(&f, "<p>b</p>").unwrap();
        let b = template_fingerprint(&Template::File(f.clone())).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(template_fingerprint(&Template::File(f)).unwrap_err().kind(), "template_missing");
    }
}
