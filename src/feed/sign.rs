//! Signing a delivery as the Standard Webhooks convention says (<https://www.standardwebhooks.com>):
//! a secret `whsec_<base64 key>`, and over each request `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (`v1,<base64 of HMAC-SHA256(key, "id.timestamp.body")>`). A
//! receiver verifies with any Standard Webhooks library, or with [`verify`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A subscription's signing secret: its key's bytes, shown as `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random secret of 32 bytes (the system's random source).
    pub fn generate() -> Secret {
        let mut key = vec![0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .expect("the system's random source answers");
        Secret(key)
    }

    /// Reads `whsec_<base64>` (a key of 24 to 64 bytes, as the convention asks), saying what
    /// is wrong otherwise.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            format!("a signing secret starts with `{SECRET_PREFIX}` (then the key in base64)")
        })?;
        let key = STANDARD.decode(encoded).map_err(|_| {
            format!("the signing secret's key after `{SECRET_PREFIX}` is not base64")
        })?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "the signing secret's key holds {} bytes; it must hold 24 to 64",
                key.len()
            ));
        }
        Ok(Secret(key))
    }

    /// The secret as `whsec_<base64>`.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `webhook-signature`'s value for message `id` sent at `timestamp` with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        context.update(format!("{id}.{timestamp}.").as_bytes());
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

/// Whether `signature` (a `webhook-signature` header: space-separated `v1,<base64>`) holds a
/// signature of `id`, `timestamp` and `body` under `secret`, compared in constant time.
pub fn verify(secret: &Secret, id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
    let message = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    signature.split(' ').any(|one| {
        one.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signature_is_reproduced() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &signature
        ));
    }

    #[test]
    fn a_changed_body_id_timestamp_or_secret_does_not_verify() {
        let secret = Secret::generate();
        let signature = secret.sign("m1", 100, b"{}");
        assert!(verify(&secret, "m1", 100, b"{}", &signature));
        assert!(!verify(&secret, "m1", 100, b"{ }", &signature));
        assert!(!verify(&secret, "m2", 100, b"{}", &signature));
        assert!(!verify(&secret, "m1", 101, b"{}", &signature));
        assert!(!verify(&Secret::generate(), "m1", 100, b"{}", &signature));
        // One valid signature among several (a key being rotated) verifies.
        assert!(verify(
            &secret,
            "m1",
            100,
            b"{}",
            &format!("v1,AAAA {signature}")
        ));
    }

    #[test]
    fn secrets_are_read_back_and_bad_ones_refused_with_the_reason() {
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.reveal()).unwrap(), secret);
        assert!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_err()
                .contains("whsec_")
        );
        assert!(
            Secret::parse("whsec_not base64!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(Secret::parse("whsec_AAAA").unwrap_err().contains("3 bytes"));
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }
}
