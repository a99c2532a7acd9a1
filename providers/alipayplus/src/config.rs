//! The client's Alipay+ configuration, read from JSON (keys in the crate docs).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use token_core::redact::url_shown;
use token_core::secret::ClientSecret;

use crate::signature::{KeyError, Rsa256Signer};

/// A client's Alipay+ settings. See the crate docs for the JSON keys. Its `Debug` shows the
/// URLs without their passwords and queries ([`url_shown`]).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlipayPlusConfig {
    /// The `Client-Id` Alipay+ assigned.
    pub client_id: String,
    /// `pspId`.
    pub psp_id: String,
    /// `acquirerId`, sent when set.
    #[serde(default)]
    pub acquirer_id: Option<String>,
    /// The host applyToken is sent to.
    #[serde(
        default = "default_base_url",
        deserialize_with = "token_core::redact::url"
    )]
    pub base_url: url::Url,
    /// The client's PKCS#8 private key, PEM or bare Base64 (redacted in `Debug`).
    #[serde(default)]
    pub private_key: Option<ClientSecret>,
    /// A file holding the private key instead.
    #[serde(default)]
    pub private_key_file: Option<std::path::PathBuf>,
    /// The server's (Alipay+'s, or the MPP's) public key, PEM or bare Base64.
    #[serde(default)]
    pub server_public_key: Option<String>,
    /// A file holding the server's public key instead.
    #[serde(default)]
    pub server_public_key_file: Option<std::path::PathBuf>,
    /// `keyVersion` in the `Signature` header.
    #[serde(default = "default_key_version")]
    pub key_version: u32,
    /// How long the server answers a used refresh token again with the same pair.
    #[serde(default = "default_reuse_window")]
    pub reuse_window_secs: u64,
    /// Where a user authorizes again; the re-auth signal carries it with `state=<session>`.
    #[serde(default, deserialize_with = "token_core::redact::optional_url")]
    pub authorize_url: Option<url::Url>,
}

impl fmt::Debug for AlipayPlusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so that a new one cannot be left out unseen.
        let Self {
            client_id,
            psp_id,
            acquirer_id,
            base_url,
            private_key,
            private_key_file,
            server_public_key,
            server_public_key_file,
            key_version,
            reuse_window_secs,
            authorize_url,
        } = self;
        f.debug_struct("AlipayPlusConfig")
            .field("client_id", client_id)
            .field("psp_id", psp_id)
            .field("acquirer_id", acquirer_id)
            .field("base_url", &url_shown(base_url))
            .field("private_key", private_key)
            .field("private_key_file", private_key_file)
            .field("server_public_key", server_public_key)
            .field("server_public_key_file", server_public_key_file)
            .field("key_version", key_version)
            .field("reuse_window_secs", reuse_window_secs)
            .field("authorize_url", &authorize_url.as_ref().map(url_shown))
            .finish()
    }
}

fn default_base_url() -> url::Url {
    url::Url::parse("https://open-sea-global.alipayplus.com").expect("a valid constant URL")
}

fn default_key_version() -> u32 {
    1
}

fn default_reuse_window() -> u64 {
    300
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither the key nor its file is set, or both are.
    #[error("set exactly one of `{0}` and `{0}_file`")]
    KeySource(&'static str),
    /// A key file could not be read.
    #[error("could not read `{path}`: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key could not be parsed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl AlipayPlusConfig {
    /// A config with the required keys and every default, keys given as text.
    pub fn new(
        client_id: impl Into<String>,
        psp_id: impl Into<String>,
        private_key: &str,
        server_public_key: &str,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            psp_id: psp_id.into(),
            acquirer_id: None,
            base_url: default_base_url(),
            private_key: Some(ClientSecret::new(private_key)),
            private_key_file: None,
            server_public_key: Some(server_public_key.to_owned()),
            server_public_key_file: None,
            key_version: default_key_version(),
            reuse_window_secs: default_reuse_window(),
            authorize_url: None,
        }
    }

    /// Sets the host.
    pub fn with_base_url(mut self, url: url::Url) -> Self {
        self.base_url = url;
        self
    }

    /// Sets `acquirerId`.
    pub fn with_acquirer_id(mut self, acquirer_id: impl Into<String>) -> Self {
        self.acquirer_id = Some(acquirer_id.into());
        self
    }

    /// Sets the re-authorization URL.
    pub fn with_authorize_url(mut self, url: url::Url) -> Self {
        self.authorize_url = Some(url);
        self
    }

    /// The reuse window.
    pub fn reuse_window(&self) -> Duration {
        Duration::from_secs(self.reuse_window_secs)
    }

    /// Reads the keys and builds the request signer.
    pub fn signer(&self) -> Result<Rsa256Signer, ConfigError> {
        let private = text_or_file(
            "private_key",
            self.private_key.as_ref().map(|k| k.expose_secret()),
            self.private_key_file.as_deref(),
        )?;
        let public = text_or_file(
            "server_public_key",
            self.server_public_key.as_deref(),
            self.server_public_key_file.as_deref(),
        )?;
        Ok(Rsa256Signer::from_pem(
            self.client_id.clone(),
            self.key_version,
            &private,
            &public,
        )?)
    }
}

fn text_or_file(
    name: &'static str,
    text: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<String, ConfigError> {
    match (text, file) {
        (Some(text), None) => Ok(text.to_owned()),
        (None, Some(path)) => read_key_file(path).map_err(|source| ConfigError::File {
            path: path.to_owned(),
            source,
        }),
        _ => Err(ConfigError::KeySource(name)),
    }
}

/// The largest key file read: a PEM RSA key of 8192 bits is under 7 KiB.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key file's text. Only a regular file of at most [`MAX_KEY_FILE`] bytes is read: a FIFO
/// would wait for a writer for ever, and a device (`/dev/zero`) never ends.
fn read_key_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    if !std::fs::metadata(path)?.is_file() {
        return Err(invalid("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(invalid("larger than any key (64 KiB)"));
    }
    Ok(text)
}
