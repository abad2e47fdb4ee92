//! The delivery public key a checker of specified residence cards is configured with: the
//! issuer's key the session key of SET SESSION KEY is sent under (issue 16). The suite
//! always hands checkers the TEST key (`vectors/pki/mynumber/delivery.pub.*`), never a
//! card's own: a forged card holding another private key (`specified-other-delivery-key`)
//! must fail key delivery, not be read with its own key.
//!
//! The file is in the format the profile's `platform.residence_delivery_key_format` names
//! (raw modulus, DER SubjectPublicKeyInfo or the platform's `A1 { 90, 91 }` TLV), and is
//! parsed without being told which ([`DeliveryPublicKey::parse_any`]), so a run over the
//! variants exercises every format a checker may be handed.

use std::path::{Path, PathBuf};

use thiserror::Error;

use rclab_emulator::chip::ChipKind;
use rclab_emulator::files::{ReadError, read_bounded};
use rclab_emulator::my_number::residence_ap::ResidenceDeliveryKeyFormat;
use rclab_emulator::profile::Profile;
use rclab_emulator::protocol::key_delivery::{DeliveryPublicKey, PublicKeyError};

/// Largest delivery public-key file read: 16 KiB (an RSA-2048 key is 256 to 294 bytes in
/// every format; a larger file is no key).
pub const MAX_DELIVERY_KEY_FILE: u64 = 16 * 1024;

/// The TEST delivery public key's files, below the repository's root, by format.
const TEST_KEY_STEM: &str = "vectors/pki/mynumber/delivery.pub";

/// A delivery public-key file that cannot be used: the file and why.
#[derive(Debug, Error)]
pub enum DeliveryKeyError {
    /// The file cannot be read (missing, not a regular file, too large).
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: ReadError,
    },
    /// The bytes are no delivery public key in any format.
    #[error("{file}: not a delivery public key: {source}")]
    Parse {
        /// The file.
        file: String,
        /// Why.
        source: PublicKeyError,
    },
}

/// The file name extension of the TEST key in `format`.
fn extension(format: ResidenceDeliveryKeyFormat) -> &'static str {
    match format {
        ResidenceDeliveryKeyFormat::RawModulus => "raw",
        ResidenceDeliveryKeyFormat::SubjectPublicKeyInfo => "der",
        ResidenceDeliveryKeyFormat::PlatformTlv => "tlv",
    }
}

/// The TEST delivery public-key file (absolute when `repo` is) a checker of `profile`'s
/// card is configured with: in the format of its `platform.residence_delivery_key_format`
/// for a specified residence card, `None` for any other card kind.
pub fn test_key_file(repo: &Path, profile: &Profile) -> Option<PathBuf> {
    if profile.kind() != ChipKind::SpecifiedResidence {
        return None;
    }
    let format = profile
        .my_number
        .as_ref()?
        .knobs
        .residence_delivery_key_format;
    Some(repo.join(format!("{TEST_KEY_STEM}.{}", extension(format))))
}

/// Reads a delivery public-key file a user or the runner names (bounded, regular files
/// only) and parses it in whichever format it is in.
pub fn load(path: &Path) -> Result<DeliveryPublicKey, DeliveryKeyError> {
    let file = || path.display().to_string();
    let bytes =
        read_bounded(path, MAX_DELIVERY_KEY_FILE).map_err(|source| DeliveryKeyError::Read {
            file: file(),
            source,
        })?;
    DeliveryPublicKey::parse_any(&bytes)
        .map(|(key, _format)| key)
        .map_err(|source| DeliveryKeyError::Parse {
            file: file(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn every_format_of_the_test_key_loads_as_the_same_key() {
        let keys: Vec<DeliveryPublicKey> = ["raw", "der", "tlv"]
            .iter()
            .map(|ext| load(&repo().join(format!("{TEST_KEY_STEM}.{ext}"))).unwrap())
            .collect();
        assert_eq!(keys[0].size(), 256);
        assert!(keys.iter().all(|k| *k == keys[0]));
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_file_and_why() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let junk = dir.join("junk.pub");
        std::fs::write(&junk, [0u8; 7]).unwrap();
        let big = dir.join("big.pub");
        std::fs::write(&big, vec![1u8; MAX_DELIVERY_KEY_FILE as usize + 1]).unwrap();
        let cases = [
            (junk, "not a delivery public key"),
            (big, "cannot read"),
            (dir.join("missing.pub"), "cannot read"),
            (dir.to_path_buf(), "cannot read"),
        ];
        for (path, why) in cases {
            let error = load(&path).unwrap_err().to_string();
            assert!(
                error.starts_with(&path.display().to_string()) && error.contains(why),
                "{error}"
            );
        }
    }
}
