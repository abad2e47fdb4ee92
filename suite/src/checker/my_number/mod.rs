//! The reference checker for the My Number card (spec notes Part B): what an eKYC app
//! must do with the JPKI AP to tell a genuine card from a photo, a self-made certificate, a
//! copied certificate without its key or a blocked card.
//!
//! | module | concern |
//! |---|---|
//! | `card` (private) | the conversation with the JPKI AP (SELECT, READ BINARY in short chunks, VERIFY, COMPUTE DIGITAL SIGNATURE), every AID and FID from the emulator's application table |
//! | this module | the check: which files, in which order, and the verdict |
//!
//! The check, in order (each step can end it with its verdict):
//! 1. SELECT of an application no My Number card holds (a residence card's DF1).
//! 2. SELECT of the JPKI AP (`6A 82`: `not_my_number_card`); a card that has it and
//!    answered `90 00` in step 1 claims applications it does not have
//!    (`forged{unexpected_status}`).
//! 3. Token info `0006` and the certificate map `0008` (reported), the authentication
//!    certificate `000A` and its CA certificate `000B`.
//! 4. The chain of `000A` to a trusted JPKI root, valid at the checker's clock (the same
//!    rule as the residence checker: `untrusted_certificate`, `forged{unknown_signer}`,
//!    `forged{certificate_expired}`).
//! 5. The authentication PIN: tries left first with the case-1 VERIFY (`63 C0`/`69 84`:
//!    `unreadable{pin_blocked}`; one try left: `unreadable{pin_last_try}`, never spent),
//!    then VERIFY with the PIN (`63 Cx`: `wrong_pin`).
//! 6. COMPUTE DIGITAL SIGNATURE with the authentication key over a SHA-256 DigestInfo of a
//!    fresh 32-byte challenge, verified (PKCS#1 v1.5) with the certificate's key
//!    (`forged{signature_mismatch}` otherwise).
//! 7. The text-support AP's integrity record: see [`TEXT_AP_INTEGRITY`].
//!
//! Privacy: the checker reads only the JPKI files a verdict needs (token info, the
//! certificate map, the authentication certificate and its CA). It never reads the
//! signature certificate (`0001`, which carries name, address and birth date) or the
//! text-support AP; `run::audit` calls reading them over-reading.

mod card;

use std::time::SystemTime;

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use rclab_emulator::my_number::apps::{Content, Secret};
use rclab_emulator::profile::Profile;
use rclab_emulator::protocol::Status;
use rclab_emulator::protocol::layout::Df;
use rclab_emulator::transport::Channel;
use rclab_emulator::verdict::{Reason, VerdictKind};

use super::data::CertificateInfo;
use super::pki::{ParsedCertificate, TrustStore};
use super::stop::{Step, stop};
use card::{JpkiCard, PinAnswer, PinState, jpki, jpki_file, jpki_secret};

/// Where the text-support AP's integrity check goes (issue 15, reference checker): the
/// card does not serve that AP's files yet, so the checker neither reads nor judges it,
/// and its report says so ([`MyNumberData::text_ap_integrity`]).
pub const TEXT_AP_INTEGRITY: &str = "not checked: the text-support AP is not served yet";

/// What the My Number checker read, for the data report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MyNumberData {
    /// The token label of `0006` (`JPKIAPICCTOKEN2` on a card), trailing spaces removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_label: Option<String>,
    /// `0008`, hex (`8F8F00` when both certificates are present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_map: Option<String>,
    /// Whether `0008` says the card has a signature certificate (first byte `8F`); an
    /// under-15 card has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_certificate_present: Option<bool>,
    /// The authentication certificate `000A`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_certificate: Option<CertificateInfo>,
    /// The CA certificate the card carries in `000B`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_ca_certificate: Option<CertificateInfo>,
    /// Tries left of the authentication PIN before the checker's VERIFY.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_tries_left: Option<u8>,
    /// The card's signature over the fresh challenge verified with the certificate's key.
    pub signature_verified: bool,
    /// The text-support AP's integrity check ([`TEXT_AP_INTEGRITY`]).
    pub text_ap_integrity: &'static str,
}

/// The authentication PIN a My Number profile states (`jpki.auth_pin`): what its holder
/// would type. `None` for a residence profile.
pub fn profile_pin(profile: &Profile) -> Option<String> {
    let image = profile.my_number.as_ref()?;
    let app = image.app(rclab_emulator::my_number::apps::App::Jpki)?;
    let pin = app.pins.iter().find(|p| p.row.secret == Secret::AuthPin)?;
    pin.value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether the card behind `channel` is a My Number card: its JPKI AP answers SELECT with
/// `90 00` (`rclab check --reader --card auto`). A residence card answers `6A 82` and
/// stays where it was (a failed SELECT changes nothing), so its own check follows
/// unchanged; a card that answers neither is taken for a residence card, whose checker
/// then says what it is.
pub fn is_my_number_card(channel: &mut dyn Channel) -> bool {
    let jpki = jpki();
    JpkiCard::new(channel)
        .select_aid(jpki.aid, jpki.name)
        .is_ok_and(|status| status == Status::Success)
}

/// The certificate as reported.
fn info(cert: &ParsedCertificate, trusted_root: Option<String>) -> CertificateInfo {
    CertificateInfo {
        subject: cert.subject(),
        issuer: cert.issuer(),
        serial: cert.serial(),
        not_before_unix: cert.not_before().as_secs(),
        not_after_unix: cert.not_after().as_secs(),
        der_length: cert.der.len(),
        trusted_root,
    }
}

/// A certificate EF's bytes as a certificate, or `forged{malformed_certificate}`.
fn certificate(bytes: &[u8], name: &str) -> Step<ParsedCertificate> {
    ParsedCertificate::from_card_field(bytes).or_else(|e| {
        stop(
            VerdictKind::Forged,
            Some(Reason::MalformedCertificate),
            format!("{name}: {e}"),
        )
    })
}

/// Runs the check on the card behind `channel` with `pin`; `Ok` is a genuine card, with
/// what decided it.
pub(super) fn run(
    channel: &mut dyn Channel,
    trust: &TrustStore,
    at: SystemTime,
    pin: &str,
    rng: &mut ChaCha20Rng,
    data: &mut MyNumberData,
) -> Step<String> {
    data.text_ap_integrity = TEXT_AP_INTEGRITY;
    let mut card = JpkiCard::new(channel);

    // 1. An application no My Number card holds: a My Number card refuses it.
    let foreign_claimed = match Df::Df1.aid() {
        Some(foreign) => {
            card.select_aid(&foreign, "SELECT of a residence-card DF1")? == Status::Success
        }
        None => false,
    };

    // 2. The JPKI AP: a card without it is no My Number card (a residence card holds the
    // DF1 of step 1, rightly); a card with it must not have claimed the foreign one.
    let jpki = jpki();
    match card.select_aid(jpki.aid, jpki.name)? {
        Status::Success => {}
        Status::FileNotFound => {
            return stop(
                VerdictKind::NotMyNumberCard,
                None,
                format!("SELECT {}: 6A 82", jpki.name),
            );
        }
        other => return super::stop::unexpected(&format!("SELECT {}", jpki.name), other),
    }
    if foreign_claimed {
        return stop(
            VerdictKind::Forged,
            Some(Reason::UnexpectedStatus),
            "the card answers 90 00 to the SELECT of a residence-card application, which no \
             My Number card holds",
        );
    }

    // 3. What the verdict needs, and nothing else.
    let token = card.read_file(jpki_file(Content::TokenInfo)?)?;
    let label = token.get(..32).unwrap_or(&token);
    data.token_label = Some(String::from_utf8_lossy(label).trim_end().to_owned());
    let map = card.read_file(jpki_file(Content::CertificateMap)?)?;
    data.certificate_map = Some(hex::encode_upper(&map));
    data.signature_certificate_present = map.first().map(|&b| b == 0x8F);
    let auth_row = jpki_file(Content::AuthCertificate)?;
    let auth_bytes = card.read_file(auth_row)?;
    let auth = certificate(&auth_bytes, auth_row.name)?;
    data.auth_certificate = Some(info(&auth, None));
    let ca_row = jpki_file(Content::AuthCaCertificate)?;
    let ca_bytes = card.read_file(ca_row)?;
    let ca = certificate(&ca_bytes, ca_row.name)?;
    data.auth_ca_certificate = Some(info(&ca, None));

    // 4. The chain, before any PIN try is spent on a card already refused.
    let root = super::judge::trusted_chain(&auth, trust, at)?;
    data.auth_certificate = Some(info(&auth, Some(root.clone())));

    // 5. The PIN: never the last try.
    let pin_row = jpki_secret(Secret::AuthPin)?;
    match card.pin_state(pin_row)? {
        PinState::Blocked => {
            data.pin_tries_left = Some(0);
            return stop(
                VerdictKind::Unreadable,
                Some(Reason::PinBlocked),
                format!("{} is blocked: the card cannot sign", pin_row.name),
            );
        }
        PinState::TriesLeft(left) => {
            data.pin_tries_left = Some(left);
            if left <= 1 {
                return stop(
                    VerdictKind::Unreadable,
                    Some(Reason::PinLastTry),
                    format!(
                        "{} has one try left: the checker does not spend it (a wrong PIN \
                         would block the card)",
                        pin_row.name
                    ),
                );
            }
        }
    }
    match card.verify(pin_row, pin.as_bytes())? {
        PinAnswer::Opened => {}
        PinAnswer::Wrong(left) => {
            return stop(
                VerdictKind::WrongPin,
                None,
                format!(
                    "VERIFY of {} rejected the PIN: {left} tries left",
                    pin_row.name
                ),
            );
        }
        PinAnswer::Blocked => {
            return stop(
                VerdictKind::Unreadable,
                Some(Reason::PinBlocked),
                format!("VERIFY of {}: 69 84, blocked", pin_row.name),
            );
        }
    }

    // 6. A fresh challenge, signed by the card, verified with the certificate's key.
    let mut challenge = [0u8; 32];
    rng.fill_bytes(&mut challenge);
    let digest_info = [
        &rsa::Pkcs1v15Sign::new::<Sha256>().prefix[..],
        &Sha256::digest(challenge)[..],
    ]
    .concat();
    let key_row = jpki_secret(Secret::AuthKey)?;
    let signature = card.sign(key_row, &digest_info)?;
    if !auth.verifies_rsa_sha256(&challenge, &signature) {
        return stop(
            VerdictKind::Forged,
            Some(Reason::SignatureMismatch),
            format!(
                "the card's signature ({} bytes) over a fresh challenge does not verify with \
                 the authentication certificate's key: the card does not hold it",
                signature.len()
            ),
        );
    }
    data.signature_verified = true;

    // 7. The text-support AP's integrity record goes here: TEXT_AP_INTEGRITY.
    Ok(format!(
        "the card signed a fresh challenge with the key of its authentication certificate, \
         which chains to {root}"
    ))
}
