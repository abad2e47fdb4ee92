//! SET SESSION KEY (`80 AE 00 00`), the key delivery of the My Number platform's text AP and,
//! by best evidence, of the specified residence card's 在留AP (spec notes
//! `my-number-platform.md` A4, B5).
//!
//! The reader chooses the session key material, wraps it in a template (`A0 22 80 20 <32>`, or
//! `A0 44 80 20 <32> 81 20 <32>` with a MAC key, the JICSAP form SPEC3's "AES-CMAC" suggests),
//! encrypts it with RSA-OAEP under the card's delivery public key and sends the 256-byte
//! cryptogram with an extended Lc. The card decrypts with its private key and keeps the first
//! 16 bytes of each 32-byte key as the AES-128 key. Measured on the text AP \[R: MC\]: OAEP with
//! SHA-256 and MGF1-SHA-256, empty label; SHA-1 is a variant for the specified card's knob \[?\].
//!
//! Also here: the three public-key formats a reader may be handed (open question 1): a raw
//! modulus, a DER SubjectPublicKeyInfo, and the platform's `A1 { 90 e, 91 n }` TLV (text AP EF
//! `0006`) — a parser and a writer for each, in [`DeliveryPublicKey`].

use rand::CryptoRng;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Oaep, PrivateKey, PublicKey};
use sha1::Sha1;
use sha2::Sha256;
use thiserror::Error;

use super::apdu::{Apdu, CommandBuilder};
use super::crypto::Key;
use super::status::Status;
use super::tlv;

/// CLA of SET SESSION KEY (proprietary class).
pub const CLA: u8 = 0x80;
/// INS of SET SESSION KEY.
pub const INS: u8 = 0xAE;
/// Tag of the key template.
pub const TAG_TEMPLATE: u16 = 0xA0;
/// Tag of the encryption key in the template.
pub const TAG_ENCRYPTION_KEY: u16 = 0x80;
/// Tag of the MAC (CCS) key in the template.
pub const TAG_MAC_KEY: u16 = 0x81;
/// Length of each key in the template: 32 random bytes, of which the card takes 16 (A4).
pub const KEY_MATERIAL_LEN: usize = 32;
/// The exponent a raw modulus is assumed to go with (every platform key seen uses it) \[I\].
pub const DEFAULT_EXPONENT: u32 = 65_537;

/// `6F 00`: the card's answer to a cryptogram not below the modulus (A4).
pub const SW_CRYPTOGRAM_NOT_BELOW_MODULUS: u16 = 0x6F00;
/// `6A 80`: wrong structure (A4).
pub const SW_WRONG_DATA: u16 = 0x6A80;
/// `66 F1`: SET SESSION KEY on an application with no key delivery configured (A4; the
/// engine answers it, this codec never sees such a command).
pub const SW_NO_KEY_DELIVERY: u16 = 0x66F1;

/// The hash of OAEP and of its MGF1 (both the same; a specified-card knob).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OaepDigest {
    /// SHA-256, as measured on the text AP \[R: MC\] and reproduced \[V\].
    #[default]
    Sha256,
    /// SHA-1: the PKCS#1 default, a possible reading of SPEC3 \[?\].
    Sha1,
}

/// Which key-template form the application takes (a specified-card knob).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyTemplate {
    /// `A0 22 80 20 <32>`: encryption key only (the text AP; a form with `81` is `6A 80`).
    #[default]
    EncryptionKey,
    /// `A0 44 80 20 <32> 81 20 <32>`: encryption and MAC key \[?\].
    EncryptionAndMacKey,
}

/// How one application runs key delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyDeliveryConfig {
    /// OAEP hash and MGF1 hash.
    pub digest: OaepDigest,
    /// The template form it takes.
    pub template: KeyTemplate,
}

/// The session keys a successful SET SESSION KEY leaves on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// AES-128 encryption key: the first 16 bytes of the template's `80` value.
    pub kenc: Key,
    /// AES-128 MAC key: the first 16 bytes of `81`, when the template has one.
    pub kmac: Option<Key>,
}

/// The plaintext of the cryptogram: the key material the reader chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterial {
    /// The `80` value.
    pub encryption: [u8; KEY_MATERIAL_LEN],
    /// The `81` value, when present.
    pub mac: Option<[u8; KEY_MATERIAL_LEN]>,
}

impl KeyMaterial {
    /// The template bytes: `A0 22 80 20 <enc>` or `A0 44 80 20 <enc> 81 20 <mac>`.
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = Vec::with_capacity(2 * (KEY_MATERIAL_LEN + 2));
        push_small(&mut inner, TAG_ENCRYPTION_KEY, &self.encryption);
        if let Some(mac) = &self.mac {
            push_small(&mut inner, TAG_MAC_KEY, mac);
        }
        let mut out = Vec::with_capacity(inner.len() + 2);
        push_small(&mut out, TAG_TEMPLATE, &inner);
        out
    }

    /// Parses a template and checks the application takes its form (A4: `6A 80` otherwise).
    pub fn parse(plain: &[u8], accepted: KeyTemplate) -> Result<KeyMaterial, KeyDeliveryError> {
        let structure = |why: &'static str| KeyDeliveryError::Template(why);
        let (outer, end) = tlv::parse_at(plain, 0).map_err(|_| structure("not a TLV"))?;
        if outer.tag != TAG_TEMPLATE {
            return Err(structure("the template tag is not A0"));
        }
        if end != plain.len() {
            return Err(structure("bytes after the template"));
        }
        let inner = tlv::parse_all(outer.value).map_err(|_| structure("template content"))?;
        let key = |value: &[u8]| -> Result<[u8; KEY_MATERIAL_LEN], KeyDeliveryError> {
            value
                .try_into()
                .map_err(|_| structure("a key that is not 32 bytes"))
        };
        let material = match inner.as_slice() {
            [enc] if enc.tag == TAG_ENCRYPTION_KEY => KeyMaterial {
                encryption: key(enc.value)?,
                mac: None,
            },
            [enc, mac] if enc.tag == TAG_ENCRYPTION_KEY && mac.tag == TAG_MAC_KEY => KeyMaterial {
                encryption: key(enc.value)?,
                mac: Some(key(mac.value)?),
            },
            _ => return Err(structure("not 80, or 80 then 81")),
        };
        if material.form() != accepted {
            return Err(KeyDeliveryError::FormNotAccepted(material.form()));
        }
        Ok(material)
    }

    /// The form this material has.
    pub fn form(&self) -> KeyTemplate {
        match self.mac {
            None => KeyTemplate::EncryptionKey,
            Some(_) => KeyTemplate::EncryptionAndMacKey,
        }
    }

    /// The AES-128 keys the card keeps (the first 16 bytes of each 32).
    pub fn session_keys(&self) -> SessionKeys {
        SessionKeys {
            kenc: first_16(&self.encryption),
            kmac: self.mac.as_ref().map(first_16),
        }
    }

    /// Draws the key material: 32 bytes for `80`, then 32 for `81` when the form has it
    /// (this order: seeded transcripts depend on it).
    pub fn draw<R: CryptoRng + ?Sized>(form: KeyTemplate, rng: &mut R) -> KeyMaterial {
        let mut encryption = [0; KEY_MATERIAL_LEN];
        rng.fill_bytes(&mut encryption);
        let mac = (form == KeyTemplate::EncryptionAndMacKey).then(|| {
            let mut mac = [0; KEY_MATERIAL_LEN];
            rng.fill_bytes(&mut mac);
            mac
        });
        KeyMaterial { encryption, mac }
    }
}

fn first_16(material: &[u8; KEY_MATERIAL_LEN]) -> Key {
    core::array::from_fn(|i| material[i])
}

/// Appends a TLV whose value is under 128 bytes (the template's pieces).
fn push_small(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    debug_assert!(value.len() < 0x80);
    tlv::push_tag(out, tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Why the card refused a SET SESSION KEY, or the reader could not build one.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyDeliveryError {
    /// P1-P2 other than `00 00`.
    #[error("P1-P2 {0:04X}, expected 0000")]
    P1P2(u16),
    /// The cryptogram is not exactly the modulus length (`67 00`) \[I\].
    #[error("cryptogram of {len} bytes, the key takes {expected}")]
    CryptogramLength {
        /// Bytes sent.
        len: usize,
        /// The modulus length in bytes.
        expected: usize,
    },
    /// The cryptogram as a number is not below the modulus (`6F 00`) \[R: MC\].
    #[error("cryptogram is not below the modulus")]
    CryptogramNotBelowModulus,
    /// OAEP decoding failed: wrong key, wrong hash, tampered cryptogram (`6A 80`) \[I\].
    #[error("OAEP decryption failed")]
    Decryption,
    /// The plaintext is not a key template (`6A 80`) \[R: MC\].
    #[error("key template: {0}")]
    Template(&'static str),
    /// A well-formed template of a form this application does not take (`6A 80`) \[R: MC\].
    #[error("the application does not take the {0:?} form")]
    FormNotAccepted(KeyTemplate),
    /// The reader could not encrypt (plaintext too long for the key, RNG failure).
    #[error("OAEP encryption failed: {0}")]
    Encryption(String),
}

impl KeyDeliveryError {
    /// The status word the card answers.
    pub fn status(&self) -> Status {
        match self {
            KeyDeliveryError::P1P2(_) => Status::IncorrectP1P2,
            KeyDeliveryError::CryptogramLength { .. } => Status::WrongLength,
            KeyDeliveryError::CryptogramNotBelowModulus => {
                Status::Other(SW_CRYPTOGRAM_NOT_BELOW_MODULUS)
            }
            KeyDeliveryError::Decryption
            | KeyDeliveryError::Template(_)
            | KeyDeliveryError::FormNotAccepted(_)
            | KeyDeliveryError::Encryption(_) => Status::Other(SW_WRONG_DATA),
        }
    }
}

/// The card's half: the session keys from a SET SESSION KEY command whose CLA/INS the engine
/// already routed here. Checks P1-P2, the cryptogram's length and size against the modulus,
/// decrypts (OAEP with `config.digest`) and parses the template form `config.template`.
pub fn accept(
    key: &PrivateKey,
    config: KeyDeliveryConfig,
    apdu: &Apdu<'_>,
) -> Result<SessionKeys, KeyDeliveryError> {
    if (apdu.p1, apdu.p2) != (0, 0) {
        return Err(KeyDeliveryError::P1P2(u16::from_be_bytes([
            apdu.p1, apdu.p2,
        ])));
    }
    let cryptogram = apdu.data;
    let modulus = key.n().to_be_bytes_trimmed_vartime();
    let k = key.size();
    if cryptogram.len() != k {
        return Err(KeyDeliveryError::CryptogramLength {
            len: cryptogram.len(),
            expected: k,
        });
    }
    // Equal-length big-endian strings compare as the numbers they are.
    let padded_modulus: Vec<u8> = std::iter::repeat_n(0, k.saturating_sub(modulus.len()))
        .chain(modulus.iter().copied())
        .collect();
    if cryptogram >= padded_modulus.as_slice() {
        return Err(KeyDeliveryError::CryptogramNotBelowModulus);
    }
    let plain = match config.digest {
        OaepDigest::Sha256 => key.decrypt(Oaep::<Sha256>::new(), cryptogram),
        OaepDigest::Sha1 => key.decrypt(Oaep::<Sha1>::new(), cryptogram),
    }
    .map_err(|_| KeyDeliveryError::Decryption)?;
    Ok(KeyMaterial::parse(&plain, config.template)?.session_keys())
}

/// The reader's half: draws key material in `config.template`'s form, encrypts it under
/// `key` and returns `80 AE 00 00 00 01 00 ‖ cryptogram` (extended Lc, no Le) and the keys
/// both sides now hold.
pub fn build<R: CryptoRng + ?Sized>(
    key: &DeliveryPublicKey,
    config: KeyDeliveryConfig,
    rng: &mut R,
) -> Result<(Vec<u8>, SessionKeys), KeyDeliveryError> {
    let material = KeyMaterial::draw(config.template, rng);
    let cryptogram = encrypt(key, config.digest, &material.encode(), rng)?;
    let apdu = CommandBuilder::new(CLA, INS, 0, 0)
        .data(cryptogram)
        .extended()
        .to_bytes();
    Ok((apdu, material.session_keys()))
}

/// RSA-OAEP encryption of `plain` under `key` (empty label, MGF1 with the same hash).
pub fn encrypt<R: CryptoRng + ?Sized>(
    key: &DeliveryPublicKey,
    digest: OaepDigest,
    plain: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, KeyDeliveryError> {
    match digest {
        OaepDigest::Sha256 => key.0.encrypt(rng, Oaep::<Sha256>::new(), plain),
        OaepDigest::Sha1 => key.0.encrypt(rng, Oaep::<Sha1>::new(), plain),
    }
    .map_err(|e| KeyDeliveryError::Encryption(e.to_string()))
}

/// The file formats a delivery public key may come in (issue 16 item 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublicKeyFormat {
    /// The modulus alone, big-endian (exponent 65537 assumed).
    RawModulus,
    /// DER SubjectPublicKeyInfo (`rsaEncryption`).
    SubjectPublicKeyInfo,
    /// The platform's `A1 82 01 09 { 90 03 01 00 01, 91 82 01 00 <n> }` (text AP EF `0006`).
    PlatformTlv,
}

impl PublicKeyFormat {
    /// Every format, in the order [`DeliveryPublicKey::parse_any`] tries them.
    pub const ALL: [PublicKeyFormat; 3] = [
        PublicKeyFormat::PlatformTlv,
        PublicKeyFormat::SubjectPublicKeyInfo,
        PublicKeyFormat::RawModulus,
    ];
}

/// Why bytes are not a delivery public key in a format.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PublicKeyError {
    /// The bytes are not in the format's structure.
    #[error("not a {format:?} key: {why}")]
    Structure {
        /// The format tried.
        format: PublicKeyFormat,
        /// What did not fit.
        why: String,
    },
    /// The numbers are not a usable RSA public key (size, exponent).
    #[error("not a usable RSA public key: {0}")]
    Unusable(String),
    /// No format fits ([`DeliveryPublicKey::parse_any`]).
    #[error("the bytes are none of: raw modulus, SubjectPublicKeyInfo, A1 {{90, 91}} TLV")]
    NoFormat,
}

/// Tag of the public-key template of the platform TLV.
const TAG_PUBLIC_KEY: u16 = 0xA1;
/// Tag of the public exponent.
const TAG_EXPONENT: u16 = 0x90;
/// Tag of the modulus.
const TAG_MODULUS: u16 = 0x91;

/// An RSA public key a reader delivers session keys under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPublicKey(pub PublicKey);

impl DeliveryPublicKey {
    /// The RSA key.
    pub fn rsa(&self) -> &PublicKey {
        &self.0
    }

    /// The modulus length in bytes (the cryptogram's length).
    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Builds the key from big-endian modulus and exponent bytes.
    pub fn from_parts(modulus: &[u8], exponent: &[u8]) -> Result<Self, PublicKeyError> {
        let n = BoxedUint::from_be_slice_vartime(strip_zeros(modulus));
        let e = BoxedUint::from_be_slice_vartime(strip_zeros(exponent));
        PublicKey::new(n, e)
            .map(DeliveryPublicKey)
            .map_err(|e| PublicKeyError::Unusable(e.to_string()))
    }

    /// Parses `bytes` in `format`. The platform TLV may be followed by `00`/`FF` filler, as
    /// a whole-EF read returns it \[I\].
    pub fn parse(format: PublicKeyFormat, bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let structure = |why: &str| PublicKeyError::Structure {
            format,
            why: why.to_string(),
        };
        match format {
            PublicKeyFormat::RawModulus => {
                if bytes.is_empty() || bytes[0] == 0 {
                    return Err(structure("empty or with a leading zero byte"));
                }
                Self::from_parts(bytes, &DEFAULT_EXPONENT.to_be_bytes())
            }
            PublicKeyFormat::SubjectPublicKeyInfo => PublicKey::from_public_key_der(bytes)
                .map(DeliveryPublicKey)
                .map_err(|e| structure(&e.to_string())),
            PublicKeyFormat::PlatformTlv => {
                let (outer, end) =
                    tlv::parse_at(bytes, 0).map_err(|e| structure(&e.to_string()))?;
                if outer.tag != TAG_PUBLIC_KEY {
                    return Err(structure("the tag is not A1"));
                }
                if bytes[end..].iter().any(|&b| b != 0x00 && b != 0xFF) {
                    return Err(structure("bytes after the A1 template"));
                }
                let inner = tlv::parse_all(outer.value).map_err(|e| structure(&e.to_string()))?;
                match inner.as_slice() {
                    [e, n] if e.tag == TAG_EXPONENT && n.tag == TAG_MODULUS => {
                        Self::from_parts(n.value, e.value)
                    }
                    _ => Err(structure("the template is not 90 then 91")),
                }
            }
        }
    }

    /// Tries each format ([`PublicKeyFormat::ALL`]) and says which one fit. The formats
    /// cannot be confused: their lengths differ for any one key size.
    pub fn parse_any(bytes: &[u8]) -> Result<(Self, PublicKeyFormat), PublicKeyError> {
        PublicKeyFormat::ALL
            .into_iter()
            .find_map(|format| Self::parse(format, bytes).ok().map(|key| (key, format)))
            .ok_or(PublicKeyError::NoFormat)
    }

    /// Writes the key in `format`. The raw modulus refuses a key whose exponent is not
    /// 65537 (the format could not carry it).
    pub fn encode(&self, format: PublicKeyFormat) -> Result<Vec<u8>, PublicKeyError> {
        let modulus = self.modulus();
        match format {
            PublicKeyFormat::RawModulus => {
                if self.0.e_bytes().as_ref() != &DEFAULT_EXPONENT.to_be_bytes()[1..] {
                    return Err(PublicKeyError::Unusable(
                        "a raw modulus cannot carry an exponent other than 65537".into(),
                    ));
                }
                Ok(modulus)
            }
            PublicKeyFormat::SubjectPublicKeyInfo => self
                .0
                .to_public_key_der()
                .map(|doc| doc.as_bytes().to_vec())
                .map_err(|e| PublicKeyError::Unusable(e.to_string())),
            PublicKeyFormat::PlatformTlv => {
                let too_long = |_| PublicKeyError::Unusable("modulus too long".into());
                let mut inner = Vec::with_capacity(modulus.len() + 16);
                tlv::push(&mut inner, TAG_EXPONENT, &self.0.e_bytes()).map_err(too_long)?;
                tlv::push(&mut inner, TAG_MODULUS, &modulus).map_err(too_long)?;
                tlv::encode(TAG_PUBLIC_KEY, &inner).map_err(too_long)
            }
        }
    }

    /// The modulus, big-endian, exactly [`Self::size`] bytes.
    pub fn modulus(&self) -> Vec<u8> {
        let trimmed = self.0.n_bytes();
        let mut out = vec![0; self.size().saturating_sub(trimmed.len())];
        out.extend_from_slice(&trimmed);
        out
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use rsa::pkcs8::DecodePrivateKey;

    fn test_key() -> PrivateKey {
        PrivateKey::from_pkcs8_pem(include_str!("../../../vectors/pki/other-signer.key.pem"))
            .unwrap()
    }

    fn public(key: &PrivateKey) -> DeliveryPublicKey {
        DeliveryPublicKey(key.to_public_key())
    }

    /// A8: the round trip — the plaintext is `A0 22 80 20 00 01 … 1F`; SHA-1 decryption of a
    /// SHA-256 cryptogram fails.
    #[test]
    fn a8_round_trip_and_sha1_refuses_a_sha256_cryptogram() {
        let key = test_key();
        let material = KeyMaterial {
            encryption: core::array::from_fn(|i| i as u8),
            mac: None,
        };
        let template = material.encode();
        let mut expected = vec![0xA0, 0x22, 0x80, 0x20];
        expected.extend(0..32u8);
        assert_eq!(template, expected);
        let mut rng = ChaCha20Rng::seed_from_u64(15);
        let cryptogram = encrypt(&public(&key), OaepDigest::Sha256, &template, &mut rng).unwrap();
        let apdu = CommandBuilder::new(CLA, INS, 0, 0)
            .data(cryptogram)
            .extended()
            .to_bytes();
        assert_eq!(&apdu[..7], &[0x80, 0xAE, 0x00, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(apdu.len(), 263);
        let parsed = Apdu::parse(&apdu).unwrap();
        let keys = accept(&key, KeyDeliveryConfig::default(), &parsed).unwrap();
        assert_eq!(keys.kenc, core::array::from_fn(|i| i as u8));
        assert_eq!(keys.kmac, None);
        let sha1 = KeyDeliveryConfig {
            digest: OaepDigest::Sha1,
            ..KeyDeliveryConfig::default()
        };
        let err = accept(&key, sha1, &parsed).unwrap_err();
        assert_eq!(err, KeyDeliveryError::Decryption);
        assert_eq!(err.status().sw(), 0x6A80);
    }

    #[test]
    fn build_then_accept_in_every_configuration() {
        let key = test_key();
        for digest in [OaepDigest::Sha256, OaepDigest::Sha1] {
            for template in [KeyTemplate::EncryptionKey, KeyTemplate::EncryptionAndMacKey] {
                let config = KeyDeliveryConfig { digest, template };
                let mut rng = ChaCha20Rng::seed_from_u64(16);
                let (apdu, reader_keys) = build(&public(&key), config, &mut rng).unwrap();
                let card_keys = accept(&key, config, &Apdu::parse(&apdu).unwrap()).unwrap();
                assert_eq!(card_keys, reader_keys);
                assert_eq!(
                    card_keys.kmac.is_some(),
                    template == KeyTemplate::EncryptionAndMacKey
                );
                // The other template form is refused with 6A80.
                let other = KeyDeliveryConfig {
                    digest,
                    template: match template {
                        KeyTemplate::EncryptionKey => KeyTemplate::EncryptionAndMacKey,
                        KeyTemplate::EncryptionAndMacKey => KeyTemplate::EncryptionKey,
                    },
                };
                let err = accept(&key, other, &Apdu::parse(&apdu).unwrap()).unwrap_err();
                assert_eq!(err, KeyDeliveryError::FormNotAccepted(template));
                assert_eq!(err.status().sw(), 0x6A80);
            }
        }
    }

    #[test]
    fn cryptogram_errors_map_to_their_status_words() {
        let key = test_key();
        let k = key.size();
        let cfg = KeyDeliveryConfig::default();
        let apdu = |data: Vec<u8>| {
            CommandBuilder::new(CLA, INS, 0, 0)
                .data(data)
                .extended()
                .to_bytes()
        };
        let all_ff = apdu(vec![0xFF; k]);
        let err = accept(&key, cfg, &Apdu::parse(&all_ff).unwrap()).unwrap_err();
        assert_eq!(err.status().sw(), 0x6F00);
        let modulus = apdu(public(&key).modulus());
        let err = accept(&key, cfg, &Apdu::parse(&modulus).unwrap()).unwrap_err();
        assert_eq!(
            err,
            KeyDeliveryError::CryptogramNotBelowModulus,
            "c = n is refused too"
        );
        let short = apdu(vec![1; k - 1]);
        assert_eq!(
            accept(&key, cfg, &Apdu::parse(&short).unwrap())
                .unwrap_err()
                .status()
                .sw(),
            0x6700
        );
        let garbage = apdu(vec![1; k]);
        assert_eq!(
            accept(&key, cfg, &Apdu::parse(&garbage).unwrap()).unwrap_err(),
            KeyDeliveryError::Decryption
        );
        let p1p2 = CommandBuilder::new(CLA, INS, 0, 1)
            .data(vec![1; k])
            .to_bytes();
        assert_eq!(
            accept(&key, cfg, &Apdu::parse(&p1p2).unwrap())
                .unwrap_err()
                .status()
                .sw(),
            0x6A86
        );
        // A well-encrypted plaintext that is not a template.
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        for plain in [
            &b"hello"[..],
            &[0xA0, 0x02, 0x80, 0x00],
            &[0xA0, 0x22, 0x81, 0x20],
        ] {
            let c = encrypt(&public(&key), OaepDigest::Sha256, plain, &mut rng).unwrap();
            let err = accept(&key, cfg, &Apdu::parse(&apdu(c)).unwrap()).unwrap_err();
            assert!(matches!(err, KeyDeliveryError::Template(_)), "{err}");
            assert_eq!(err.status().sw(), 0x6A80);
        }
    }

    #[test]
    fn public_key_formats_round_trip_and_are_told_apart() {
        let key = public(&test_key());
        let tlv = key.encode(PublicKeyFormat::PlatformTlv).unwrap();
        assert_eq!(
            &tlv[..13],
            &[
                0xA1, 0x82, 0x01, 0x09, 0x90, 0x03, 0x01, 0x00, 0x01, 0x91, 0x82, 0x01, 0x00
            ]
        );
        assert_eq!(tlv.len(), 269);
        for format in PublicKeyFormat::ALL {
            let bytes = key.encode(format).unwrap();
            assert_eq!(DeliveryPublicKey::parse(format, &bytes).unwrap(), key);
            assert_eq!(
                DeliveryPublicKey::parse_any(&bytes).unwrap(),
                (key.clone(), format)
            );
        }
        assert_eq!(key.encode(PublicKeyFormat::RawModulus).unwrap().len(), 256);
        let mut padded = tlv.clone();
        padded.extend([0xFF; 7]);
        assert_eq!(
            DeliveryPublicKey::parse(PublicKeyFormat::PlatformTlv, &padded).unwrap(),
            key
        );
        assert_eq!(
            DeliveryPublicKey::parse_any(b"nope"),
            Err(PublicKeyError::NoFormat)
        );
    }
}
