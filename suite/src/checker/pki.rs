//! Certificates for the check code: parsing what the card stores, the trust store, chain
//! and signature verification (spec §7). Strict: DER only, known algorithms only.

use std::path::Path;
use std::time::Duration;

use der::{Decode, DecodePem, Encode};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256, Sha384};
use thiserror::Error;
use x509_cert::Certificate;

use rclab_emulator::protocol::tlv;

const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const OID_ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";

/// The TEST roots compiled into the binary: the default trust store, in file-name order
/// like `vectors/pki/trust/`. Like the MoJ's published set, it keeps an expired generation
/// of the generation-1 root (same DN, own key): cards under it must be recognised as
/// expired, not as unknown. The JPKI TEST authentication root (a copy of
/// `vectors/pki/jpki/auth-ca.crt`) is the My Number checker's: one store serves both
/// checkers, each finding its roots by the issuer's name.
pub const EMBEDDED_TEST_ROOTS: [(&str, &[u8]); 4] = [
    (
        "expired-ca.crt",
        include_bytes!("../../../vectors/pki/trust/expired-ca.crt"),
    ),
    (
        "jpki-auth-ca.crt",
        include_bytes!("../../../vectors/pki/trust/jpki-auth-ca.crt"),
    ),
    (
        "test-ca.crt",
        include_bytes!("../../../vectors/pki/trust/test-ca.crt"),
    ),
    (
        "test-ca2.crt",
        include_bytes!("../../../vectors/pki/trust/test-ca2.crt"),
    ),
];

/// Why a certificate or trust folder cannot be used.
#[derive(Debug, Error)]
pub enum PkiError {
    #[error("{path}: {message}")]
    /// A trust-folder file that cannot be read or parsed.
    TrustFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A parsed certificate with the raw bytes its signature covers.
#[derive(Clone, Debug)]
pub struct ParsedCertificate {
    /// The parsed X.509 certificate.
    pub certificate: Certificate,
    /// The bytes as stored (DER, or BER that [`ParsedCertificate::from_stored`] accepted).
    pub der: Vec<u8>,
    tbs: Vec<u8>,
}

impl ParsedCertificate {
    /// Parses exactly one DER certificate (no trailing bytes).
    pub fn from_der(der: &[u8]) -> Result<ParsedCertificate, String> {
        let certificate =
            Certificate::from_der(der).map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
        // The signature covers the TBSCertificate exactly as encoded: the first element.
        let (outer, _) = tlv::parse_at(der, 0).map_err(|e| e.to_string())?;
        let (_, tbs_end) = tlv::parse_at(outer.value, 0).map_err(|e| e.to_string())?;
        let tbs_bytes = outer.value[..tbs_end].to_vec();
        Ok(ParsedCertificate {
            certificate,
            der: der.to_vec(),
            tbs: tbs_bytes,
        })
    }

    /// Parses a certificate stored in a card field: the DER object, then only zero padding.
    pub fn from_card_field(field: &[u8]) -> Result<ParsedCertificate, String> {
        let (outer, end) =
            tlv::parse_at(field, 0).map_err(|e| format!("certificate framing: {e}"))?;
        if outer.tag != 0x30 {
            return Err(format!(
                "certificate starts with tag {:02X}, not a SEQUENCE",
                outer.tag
            ));
        }
        if field[end..].iter().any(|&b| b != 0) {
            return Err("non-zero bytes after the certificate".into());
        }
        ParsedCertificate::from_stored(&field[..end])
    }

    /// Parses a certificate that may use BER length forms (non-minimal `81 xx`/`82 xx xx`,
    /// reported on real cards, spec §7.1): they are re-encoded to DER for parsing, while
    /// signatures stay checked over the TBSCertificate bytes as stored. Anything else that
    /// is not DER (indefinite lengths, trailing garbage, other encodings) is refused.
    pub fn from_stored(bytes: &[u8]) -> Result<ParsedCertificate, String> {
        let strict = match ParsedCertificate::from_der(bytes) {
            Ok(cert) => return Ok(cert),
            Err(e) => e,
        };
        let der = match ber_lengths_to_der(bytes) {
            Some(der) if der != bytes => der,
            _ => return Err(strict),
        };
        let normalised = ParsedCertificate::from_der(&der).map_err(|_| strict)?;
        let (outer, _) = tlv::parse_at(bytes, 0).map_err(|e| e.to_string())?;
        let (_, tbs_end) = tlv::parse_at(outer.value, 0).map_err(|e| e.to_string())?;
        Ok(ParsedCertificate {
            certificate: normalised.certificate,
            der: bytes.to_vec(),
            tbs: outer.value[..tbs_end].to_vec(),
        })
    }

    /// Subject distinguished name, as text.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate().subject().to_string()
    }

    /// Issuer distinguished name, as text.
    pub fn issuer(&self) -> String {
        self.certificate.tbs_certificate().issuer().to_string()
    }

    /// Serial number, hex.
    pub fn serial(&self) -> String {
        hex::encode_upper(
            self.certificate
                .tbs_certificate()
                .serial_number()
                .as_bytes(),
        )
    }

    /// Start of validity, since the Unix epoch.
    pub fn not_before(&self) -> Duration {
        self.certificate
            .tbs_certificate()
            .validity()
            .not_before
            .to_unix_duration()
    }

    /// End of validity, since the Unix epoch.
    pub fn not_after(&self) -> Duration {
        self.certificate
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
    }

    /// True when `at` (seconds since the Unix epoch) lies in the validity period.
    pub fn valid_at(&self, at: Duration) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    fn spki_der(&self) -> Result<Vec<u8>, String> {
        self.certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| e.to_string())
    }

    /// Verifies that `child` was signed by this certificate's key.
    pub fn verifies(&self, child: &ParsedCertificate) -> bool {
        let algorithm = child.certificate.signature_algorithm().oid.to_string();
        let Some(signature) = child.certificate.signature().as_bytes() else {
            return false;
        };
        let Ok(spki) = self.spki_der() else {
            return false;
        };
        match algorithm.as_str() {
            OID_SHA256_WITH_RSA => verify_rsa_sha256(&spki, &child.tbs, signature),
            OID_ECDSA_WITH_SHA256 => {
                verify_p384(&spki, &Sha256::digest(&child.tbs), signature, false)
            }
            OID_ECDSA_WITH_SHA384 => {
                verify_p384(&spki, &Sha384::digest(&child.tbs), signature, false)
            }
            _ => false,
        }
    }

    /// RSASSA-PKCS1-v1_5 / SHA-256 over `data` with this certificate's RSA key.
    pub fn verifies_rsa_sha256(&self, data: &[u8], signature: &[u8]) -> bool {
        self.spki_der()
            .is_ok_and(|spki| verify_rsa_sha256(&spki, data, signature))
    }

    /// ECDSA P-384 / SHA-256 over `data`, signature as raw `r ‖ s`.
    pub fn verifies_p384_sha256_raw(&self, data: &[u8], signature: &[u8]) -> bool {
        self.spki_der()
            .is_ok_and(|spki| verify_p384(&spki, &Sha256::digest(data), signature, true))
    }

    /// ECDSA P-384 / SHA-256 over `data`, signature as DER `SEQUENCE { r, s }`.
    pub fn verifies_p384_sha256_der(&self, data: &[u8], signature: &[u8]) -> bool {
        self.spki_der()
            .is_ok_and(|spki| verify_p384(&spki, &Sha256::digest(data), signature, false))
    }
}

/// Re-encodes every length of a BER tree in its minimal (DER) form, recursing into
/// constructed objects; `None` when the bytes are not a sequence of definite-length TLVs.
fn ber_lengths_to_der(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut pos = 0;
    while pos < input.len() {
        let (obj, end) = tlv::parse_at(input, pos).ok()?;
        let tag_len = if obj.tag > 0xFF { 2 } else { 1 };
        let value = if input[pos] & 0x20 != 0 {
            ber_lengths_to_der(obj.value)?
        } else {
            obj.value.to_vec()
        };
        out.extend_from_slice(&input[pos..pos + tag_len]);
        tlv::push_length(&mut out, value.len()).ok()?;
        out.extend_from_slice(&value);
        pos = end;
    }
    Some(out)
}

fn verify_rsa_sha256(spki: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = rsa::PublicKey::from_public_key_der(spki) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
        .verify(data, &signature)
        .is_ok()
}

fn verify_p384(spki: &[u8], prehash: &[u8], signature: &[u8], raw: bool) -> bool {
    let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) else {
        return false;
    };
    let signature = if raw {
        p384::ecdsa::Signature::from_slice(signature)
    } else {
        p384::ecdsa::Signature::from_der(signature)
    };
    signature.is_ok_and(|s| key.verify_prehash(prehash, &s).is_ok())
}

/// Root certificates a checker trusts.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    /// Every root with the file (or embedded name) it came from, for messages.
    pub roots: Vec<(String, ParsedCertificate)>,
}

impl TrustStore {
    /// The TEST roots compiled into the binary ([`EMBEDDED_TEST_ROOTS`]).
    #[allow(clippy::expect_used)] // the roots are compile-time constants, parsed by the trust-store tests
    pub fn embedded_test_roots() -> TrustStore {
        let roots = EMBEDDED_TEST_ROOTS
            .iter()
            .map(|(name, der)| {
                let cert =
                    ParsedCertificate::from_der(der).expect("embedded TEST root is valid DER");
                ((*name).to_owned(), cert)
            })
            .collect();
        TrustStore { roots }
    }

    /// Every `*.crt`, `*.der` (DER) and `*.pem` file of `dir`; an empty folder is an empty store.
    /// Each is read through [`rclab_emulator::files`]: a FIFO, a device or a link to one is
    /// an error naming it, never a hang or an endless read.
    pub fn from_dir(dir: &Path) -> Result<TrustStore, PkiError> {
        let err = |path: &Path, message: String| PkiError::TrustFile {
            path: path.display().to_string(),
            message,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(dir, e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("crt" | "der" | "pem")
                )
            })
            .collect();
        entries.sort();
        let mut roots = Vec::new();
        for path in entries {
            let bytes =
                rclab_emulator::files::read_bounded(&path, rclab_emulator::files::MAX_PROFILE_FILE)
                    .map_err(|e| err(&path, e.to_string()))?;
            let der = if bytes.starts_with(b"-----BEGIN") {
                Certificate::from_pem(&bytes)
                    .and_then(|c| c.to_der())
                    .map_err(|e| err(&path, format!("not a PEM certificate: {e}")))?
            } else {
                bytes
            };
            let cert = ParsedCertificate::from_der(&der).map_err(|e| err(&path, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            roots.push((name, cert));
        }
        Ok(TrustStore { roots })
    }

    /// Roots (with their file names) whose subject is the issuer named by `cert`.
    pub fn issuers_of<'a>(
        &'a self,
        cert: &'a ParsedCertificate,
    ) -> impl Iterator<Item = (&'a str, &'a ParsedCertificate)> + 'a {
        let issuer = cert.certificate.tbs_certificate().issuer();
        self.roots
            .iter()
            .filter(move |(_, root)| root.certificate.tbs_certificate().subject() == issuer)
            .map(|(name, root)| (name.as_str(), root))
    }
}

#[cfg(test)]
mod trust_folder_tests {
    use super::*;

    /// A `.crt` that is a FIFO (or a device link) is refused at once, named in the error.
    #[test]
    #[allow(unsafe_code)] // mkfifo to build the FIFO under test; SAFETY below
    fn a_fifo_or_device_in_the_trust_folder_is_an_error_not_a_hang() {
        let dir = std::env::temp_dir().join(format!("rclab-trust-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("root.crt");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let folder = dir.clone();
        std::thread::spawn(move || tx.send(TrustStore::from_dir(&folder).map(|_| ())));
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading the trust folder blocked on a FIFO");
        let message = result.unwrap_err().to_string();
        assert!(message.contains("root.crt"), "{message}");
        assert!(message.contains("not a regular file (a FIFO)"), "{message}");
        std::fs::remove_file(&fifo).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero.der")).unwrap();
        let message = TrustStore::from_dir(&dir).unwrap_err().to_string();
        assert!(
            message.contains("zero.der") && message.contains("a device"),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
