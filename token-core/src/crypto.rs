//! SHA-256 and HMAC-SHA256 from the cryptography the build already has.
//!
//! The TLS back end brings a cryptography library into every build: aws-lc-rs with the
//! `rustls` feature (and with `rsa`, whose signatures it makes), ring with `rustls-ring`.
//! Token-core hashes and signs with that same library instead of compiling a second one;
//! builds with neither (`native-tls`, or no TLS at all) take the RustCrypto crates
//! (`rustcrypto` feature). When several are enabled, aws-lc-rs is preferred, then ring.

#[cfg(not(any(
    feature = "rustls",
    feature = "rsa",
    feature = "rustls-ring",
    feature = "rustcrypto"
)))]
compile_error!(
    "token-core needs a cryptography back end for SHA-256 and HMAC: enable one of the \
     features `rustls` (aws-lc-rs, the default), `rsa` (aws-lc-rs too), `rustls-ring` (ring), \
     `native-tls` or `rustcrypto` (the RustCrypto crates)"
);

/// SHA-256 over data given in parts.
pub(crate) struct Sha256(imp::Context);

impl Sha256 {
    pub(crate) fn new() -> Self {
        Self(imp::new())
    }

    pub(crate) fn update(&mut self, data: impl AsRef<[u8]>) {
        imp::update(&mut self.0, data.as_ref());
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        imp::finish(self.0)
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finish()
}

/// HMAC-SHA256 of `message` keyed with `key` (a key of any length).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    imp::hmac_sha256(key, message)
}

/// aws-lc-rs or ring: the two have the same API.
#[cfg(any(feature = "rustls", feature = "rsa", feature = "rustls-ring"))]
mod imp {
    #[cfg(any(feature = "rustls", feature = "rsa"))]
    use aws_lc_rs as backend;
    #[cfg(all(feature = "rustls-ring", not(any(feature = "rustls", feature = "rsa"))))]
    use ring as backend;

    use backend::{digest, hmac};

    pub(super) type Context = digest::Context;

    pub(super) fn new() -> Context {
        digest::Context::new(&digest::SHA256)
    }

    pub(super) fn update(context: &mut Context, data: &[u8]) {
        context.update(data);
    }

    pub(super) fn finish(context: Context) -> [u8; 32] {
        to_array(context.finish().as_ref())
    }

    pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        to_array(hmac::sign(&key, message).as_ref())
    }

    fn to_array(bytes: &[u8]) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(bytes);
        out
    }
}

/// The RustCrypto crates.
#[cfg(all(
    feature = "rustcrypto",
    not(any(feature = "rustls", feature = "rsa", feature = "rustls-ring"))
))]
mod imp {
    use hmac::{KeyInit as _, Mac as _};
    use sha2::Digest as _;

    pub(super) type Context = sha2::Sha256;

    pub(super) fn new() -> Context {
        sha2::Sha256::new()
    }

    pub(super) fn update(context: &mut Context, data: &[u8]) {
        context.update(data);
    }

    pub(super) fn finish(context: Context) -> [u8; 32] {
        context.finalize().into()
    }

    pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// No back end: the `compile_error!` above is the one error; these keep it the only one.
#[cfg(not(any(
    feature = "rustls",
    feature = "rsa",
    feature = "rustls-ring",
    feature = "rustcrypto"
)))]
mod imp {
    pub(super) type Context = ();

    pub(super) fn new() -> Context {}

    pub(super) fn update(_: &mut Context, _: &[u8]) {}

    pub(super) fn finish(_: Context) -> [u8; 32] {
        unreachable!("token-core does not compile without a cryptography back end")
    }

    pub(super) fn hmac_sha256(_: &[u8], _: &[u8]) -> [u8; 32] {
        unreachable!("token-core does not compile without a cryptography back end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FIPS 180-2 test vectors, on whichever back end this build has.
    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut parts = Sha256::new();
        parts.update(b"a");
        parts.update(b"bc");
        assert_eq!(parts.finish(), sha256(b"abc"));
    }

    /// RFC 4231 test cases 1 and 6 (a key longer than the block).
    #[test]
    fn hmac_sha256_known_answers() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
