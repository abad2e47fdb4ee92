//! The card-verifiable certificate of the My Number card's 券面 applications (spec notes
//! `my-number-platform.md` B5 EF `0004`, B6): it vouches for the key that signs the text AP's
//! integrity record (and the surface AP's records), under a CA key that is not on the card.
//!
//! ```text
//! 7F21 {
//!   5F4E 82 0129 ( 16 B issuer key ID ‖ 16 B holder key ID ‖ 90 03 010001 ‖ 91 82 0100 <n> )
//!   5F37 82 0100 <signature>
//! }
//! ```
//!
//! The signature scheme is not described by any public source. **Assumed \[I\]:**
//! RSASSA-PKCS1-v1_5 with SHA-256 over the whole `5F4E` TLV (tag, length and value) — the
//! scheme and the "sign the TLVs" convention of the integrity record it certifies (B5 DF33).
//! A checker team with the official layout changes [`CvCertificate::signed_bytes`] only.

use rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::text_ap::{TextApError, template};
use crate::protocol::key_delivery::DeliveryPublicKey;
use crate::protocol::tlv;

/// Tag of the certificate.
pub const TAG_CERTIFICATE: u16 = 0x7F21;
/// Tag of the certificate body.
pub const TAG_BODY: u16 = 0x5F4E;
/// Tag of the signature.
pub const TAG_SIGNATURE: u16 = 0x5F37;
/// Tag of the holder key's public exponent.
const TAG_EXPONENT: u16 = 0x90;
/// Tag of the holder key's modulus.
const TAG_MODULUS: u16 = 0x91;
/// Length of a key identifier.
pub const KEY_ID_LEN: usize = 16;

/// A 16-byte key identifier (証明者鍵ID / 被証明者鍵ID). Opaque: how the published IDs
/// (`6000033` for the test text AP CA) map to 16 bytes is not known \[?\].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

/// Why a CV certificate could not be built, parsed or verified.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CvCertError {
    /// The TLV structure is not the certificate's.
    #[error("{0}")]
    Structure(#[from] TextApError),
    /// The body is shorter than the two key IDs.
    #[error("certificate body of {0} bytes is shorter than two key IDs")]
    ShortBody(usize),
    /// The holder key is not `90 e, 91 n` or not a usable RSA key.
    #[error("holder key: {0}")]
    HolderKey(String),
    /// Signing failed (the CA key is unusable).
    #[error("signing: {0}")]
    Signing(String),
    /// The signature does not verify under the CA key.
    #[error("the signature does not verify under the CA key")]
    Signature,
}

/// A parsed (or freshly built) CV certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CvCertificate {
    /// Identifier of the CA key that signed it.
    pub issuer: KeyId,
    /// Identifier of the certified key.
    pub holder: KeyId,
    /// The certified RSA key (the integrity record's signing key).
    pub holder_key: PublicKey,
    /// The `5F37` value.
    pub signature: Vec<u8>,
}

impl CvCertificate {
    /// A certificate for `holder_key`, signed by the TEST CA key `ca` (scheme: see the
    /// module docs, an inference).
    pub fn sign(
        issuer: KeyId,
        holder: KeyId,
        holder_key: &PublicKey,
        ca: &PrivateKey,
    ) -> Result<CvCertificate, CvCertError> {
        let mut cert = CvCertificate {
            issuer,
            holder,
            holder_key: holder_key.clone(),
            signature: Vec::new(),
        };
        let digest = Sha256::digest(cert.signed_bytes()?);
        cert.signature = ca
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .map_err(|e| CvCertError::Signing(e.to_string()))?;
        Ok(cert)
    }

    /// The `5F4E` TLV: the bytes the signature covers \[I\].
    pub fn signed_bytes(&self) -> Result<Vec<u8>, CvCertError> {
        let key = DeliveryPublicKey(self.holder_key.clone());
        let too_long = |e: tlv::TlvError| CvCertError::Structure(TextApError::Tlv(e));
        let mut body = Vec::with_capacity(2 * KEY_ID_LEN + key.size() + 16);
        body.extend_from_slice(&self.issuer.0);
        body.extend_from_slice(&self.holder.0);
        tlv::push(&mut body, TAG_EXPONENT, &self.holder_key_exponent()).map_err(too_long)?;
        tlv::push(&mut body, TAG_MODULUS, &key.modulus()).map_err(too_long)?;
        tlv::encode(TAG_BODY, &body).map_err(too_long)
    }

    fn holder_key_exponent(&self) -> Vec<u8> {
        use rsa::traits::PublicKeyParts;
        self.holder_key.e_bytes().to_vec()
    }

    /// The EF bytes: `7F21 { 5F4E …, 5F37 … }`.
    pub fn encode(&self) -> Result<Vec<u8>, CvCertError> {
        let too_long = |e: tlv::TlvError| CvCertError::Structure(TextApError::Tlv(e));
        let mut value = self.signed_bytes()?;
        tlv::push(&mut value, TAG_SIGNATURE, &self.signature).map_err(too_long)?;
        tlv::encode(TAG_CERTIFICATE, &value).map_err(too_long)
    }

    /// Parses the EF (`00`/`FF` filler may follow). The signature is not checked here:
    /// [`CvCertificate::verify`] does that against a CA key.
    pub fn parse(bytes: &[u8]) -> Result<CvCertificate, CvCertError> {
        let (value, _) = template(bytes, TAG_CERTIFICATE)?;
        let structure = |e: tlv::TlvError| CvCertError::Structure(TextApError::Tlv(e));
        let objects = tlv::parse_all(value).map_err(structure)?;
        let (body, signature) = match objects.as_slice() {
            [body, signature] if body.tag == TAG_BODY && signature.tag == TAG_SIGNATURE => {
                (body.value, signature.value)
            }
            [first, ..] if first.tag != TAG_BODY => {
                return Err(TextApError::UnexpectedTag {
                    found: first.tag,
                    expected: TAG_BODY,
                }
                .into());
            }
            _ => {
                return Err(TextApError::UnexpectedTag {
                    found: objects.get(1).map_or(0, |o| o.tag),
                    expected: TAG_SIGNATURE,
                }
                .into());
            }
        };
        if body.len() < 2 * KEY_ID_LEN {
            return Err(CvCertError::ShortBody(body.len()));
        }
        let id = |at: usize| KeyId(core::array::from_fn(|i| body[at + i]));
        let key_objects = tlv::parse_all(&body[2 * KEY_ID_LEN..]).map_err(structure)?;
        let holder_key = match key_objects.as_slice() {
            [e, n] if e.tag == TAG_EXPONENT && n.tag == TAG_MODULUS => {
                DeliveryPublicKey::from_parts(n.value, e.value)
                    .map_err(|e| CvCertError::HolderKey(e.to_string()))?
                    .0
            }
            _ => return Err(CvCertError::HolderKey("not 90 then 91".into())),
        };
        Ok(CvCertificate {
            issuer: id(0),
            holder: id(KEY_ID_LEN),
            holder_key,
            signature: signature.to_vec(),
        })
    }

    /// Verifies the signature under the CA's public key.
    pub fn verify(&self, ca: &PublicKey) -> Result<(), CvCertError> {
        let digest = Sha256::digest(self.signed_bytes()?);
        ca.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &self.signature)
            .map_err(|_| CvCertError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    fn key(pem: &str) -> PrivateKey {
        PrivateKey::from_pkcs8_pem(pem).unwrap()
    }

    #[test]
    fn build_encode_parse_verify_and_refuse_a_lookalike_ca() {
        let ca = key(include_str!("../../../vectors/pki/test-ca.key.pem"));
        let holder = key(include_str!("../../../vectors/pki/other-signer.key.pem"));
        let cert =
            CvCertificate::sign(KeyId([6; 16]), KeyId([7; 16]), &holder.to_public_key(), &ca)
                .unwrap();
        let bytes = cert.encode().unwrap();
        // B5 EF 0004's shape: 7F21 82 …, 5F4E 82 0129, ids, 90 03 010001, 91 82 0100, 5F37 82 0100.
        assert_eq!(&bytes[..2], &[0x7F, 0x21]);
        assert_eq!(&bytes[5..10], &[0x5F, 0x4E, 0x82, 0x01, 0x29]);
        assert_eq!(&bytes[42..47], &[0x90, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(&bytes[47..51], &[0x91, 0x82, 0x01, 0x00]);
        assert_eq!(&bytes[307..312], &[0x5F, 0x37, 0x82, 0x01, 0x00]);
        assert_eq!(bytes.len(), 312 + 256);
        let parsed = CvCertificate::parse(&bytes).unwrap();
        assert_eq!(parsed, cert);
        parsed.verify(&ca.to_public_key()).unwrap();
        let lookalike = key(include_str!("../../../vectors/pki/lookalike-ca.key.pem"));
        assert_eq!(
            parsed.verify(&lookalike.to_public_key()),
            Err(CvCertError::Signature)
        );
        let mut tampered = bytes.clone();
        tampered[20] ^= 1; // the holder key ID
        assert_eq!(
            CvCertificate::parse(&tampered)
                .unwrap()
                .verify(&ca.to_public_key()),
            Err(CvCertError::Signature)
        );
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(
            CvCertificate::parse(&[0x7F, 0x21, 0x00]),
            Err(CvCertError::Structure(_))
        ));
        assert!(matches!(
            CvCertificate::parse(&[0x7F, 0x21, 0x06, 0x5F, 0x4E, 0x01, 0x00, 0x5F, 0x37]),
            Err(CvCertError::Structure(_))
        ));
        assert_eq!(
            CvCertificate::parse(&[0x7F, 0x21, 0x07, 0x5F, 0x4E, 0x01, 0x00, 0x5F, 0x37, 0x00]),
            Err(CvCertError::ShortBody(1))
        );
    }
}
