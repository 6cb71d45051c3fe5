//! `X-Duet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the scheme
//! Stripe uses: the time inside the signed text lets a receiver refuse a replay of an old
//! delivery, the version prefix lets the scheme change without breaking receivers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "X-Duet-Signature";

fn mac(secret: &str, t: i64, body: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

/// The header's value for `body` signed at `t` (unix seconds).
pub fn header(secret: &str, t: i64, body: &str) -> String {
    let digest = mac(secret, t, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the header is not t=<unix>,v1=<hex>")]
    Malformed,
    #[error("the signature was made more than the tolerance away from now (a replay?)")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a header the way a receiver should (the API docs show the same in Python): the
/// time within `tolerance_secs` of `now`, and a `v1` that matches, compared in constant time.
pub fn verify(
    secret: &str,
    header: &str,
    body: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Refused> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let t = t.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(Refused::Stale);
    }
    for hex in signatures {
        let Some(bytes) = decode_hex(hex) else {
            continue;
        };
        if mac(secret, t, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(Refused::Mismatch)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_tampered_body_a_wrong_secret_or_an_old_time_do_not() {
        let body = r#"{"id":"evt_1","type":"interview.ended"}"#;
        let signed = header("whsec-0123456789abcdef", 1_700_000_000, body);
        assert!(signed.starts_with("t=1700000000,v1="));
        let ok = verify("whsec-0123456789abcdef", &signed, body, 1_700_000_100, 300);
        assert_eq!(ok, Ok(()));
        let tampered = body.replace("ended", "started");
        assert_eq!(
            verify(
                "whsec-0123456789abcdef",
                &signed,
                &tampered,
                1_700_000_100,
                300
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify("another-secret-000000", &signed, body, 1_700_000_100, 300),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify("whsec-0123456789abcdef", &signed, body, 1_700_000_301, 300),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify("whsec-0123456789abcdef", "v1=00", body, 0, 300),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // HMAC-SHA256("key", "1.{}"), computed independently (Python's hmac module).
        let signed = header("key", 1, "{}");
        assert_eq!(
            signed,
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
