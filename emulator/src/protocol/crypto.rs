//! Crypto compositions of the card-number protocol (spec §4), built from RustCrypto primitives.
//!
//! | generation | cipher | MAC | block |
//! |---|---|---|---|
//! | 1 | 2-key TDES-CBC, IV 0 | ISO 9797-1 MAC algorithm 3, padding method 2 always | 8 |
//! | 2 | AES-128-CBC, IV 0 | AES-CMAC truncated to 8 bytes | 16 |

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use cmac::Mac;
use sha1::{Digest, Sha1};
use thiserror::Error;

use super::Generation;

/// A 16-byte key: the card-number key or a session key.
pub type Key = [u8; 16];

/// Ciphertext that is not a whole number of blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{len} bytes is not a multiple of the {block}-byte cipher block")]
pub struct NotBlockAligned {
    /// Length of the data that was refused.
    pub len: usize,
    /// The cipher's block size it must be a multiple of.
    pub block: usize,
}

/// `Kenc = Kmac = SHA-1(card number)[0..16]` (spec §4.1).
pub fn card_number_key(card_number: &[u8]) -> Key {
    first_16(&Sha1::digest(card_number))
}

/// `KSenc = SHA-1((K.IFD ⊕ K.ICC) ‖ 00 00 00 01)[0..16]` (spec §4.5).
pub fn session_key(k_ifd: &Key, k_icc: &Key) -> Key {
    let mut h = Sha1::new();
    let xored: Vec<u8> = k_ifd.iter().zip(k_icc).map(|(a, b)| a ^ b).collect();
    h.update(&xored);
    h.update([0, 0, 0, 1]);
    first_16(&h.finalize())
}

fn first_16(digest: &[u8]) -> Key {
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// ISO/IEC 7816-4 padding (ISO 9797-1 method 2): `80` then zeros to a block boundary, always added.
pub fn pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    out.push(0x80);
    while !out.len().is_multiple_of(block) {
        out.push(0);
    }
    out
}

/// Removes ISO/IEC 7816-4 padding; `None` when the padding is malformed.
pub fn unpad(data: &[u8]) -> Option<&[u8]> {
    let last = data.iter().rposition(|&b| b != 0)?;
    (data[last] == 0x80).then(|| &data[..last])
}

impl Generation {
    /// Cipher block size: 8 (TDES) or 16 (AES).
    pub fn block_size(self) -> usize {
        match self {
            Generation::First => 8,
            Generation::Second => 16,
        }
    }

    /// CBC encryption with a zero IV of block-aligned data.
    pub fn encrypt(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, NotBlockAligned> {
        self.check_aligned(data)?;
        Ok(match self {
            Generation::First => cbc::Encryptor::<des::TdesEde2>::new(key.into(), &[0; 8].into())
                .encrypt_padded_vec::<NoPadding>(data),
            Generation::Second => cbc::Encryptor::<aes::Aes128>::new(key.into(), &[0; 16].into())
                .encrypt_padded_vec::<NoPadding>(data),
        })
    }

    /// CBC decryption with a zero IV of block-aligned data.
    #[allow(clippy::expect_used)] // the input was checked aligned above; NoPadding fails only on unaligned input
    pub fn decrypt(self, key: &Key, data: &[u8]) -> Result<Vec<u8>, NotBlockAligned> {
        self.check_aligned(data)?;
        let plain = match self {
            Generation::First => cbc::Decryptor::<des::TdesEde2>::new(key.into(), &[0; 8].into())
                .decrypt_padded_vec::<NoPadding>(data),
            Generation::Second => cbc::Decryptor::<aes::Aes128>::new(key.into(), &[0; 16].into())
                .decrypt_padded_vec::<NoPadding>(data),
        };
        Ok(plain.expect("NoPadding never fails on aligned input"))
    }

    /// Pads (method 2) then encrypts: how SM data and VERIFY plaintext are protected.
    #[allow(clippy::expect_used)] // padding method 2 aligns the data to the block size, so encrypt cannot refuse it
    pub fn encrypt_padded(self, key: &Key, plain: &[u8]) -> Vec<u8> {
        self.encrypt(key, &pad(plain, self.block_size()))
            .expect("padding aligns the data")
    }

    /// The 8-byte MAC of the generation: retail MAC or truncated AES-CMAC.
    pub fn mac(self, key: &Key, data: &[u8]) -> [u8; 8] {
        match self {
            Generation::First => retail_mac(key, data),
            Generation::Second => {
                let mut mac = <cmac::Cmac<aes::Aes128> as KeyInit>::new(key.into());
                mac.update(data);
                let full = mac.finalize().into_bytes();
                let mut out = [0; 8];
                out.copy_from_slice(&full[..8]);
                out
            }
        }
    }

    fn check_aligned(self, data: &[u8]) -> Result<(), NotBlockAligned> {
        let block = self.block_size();
        if data.len().is_multiple_of(block) {
            Ok(())
        } else {
            Err(NotBlockAligned {
                len: data.len(),
                block,
            })
        }
    }
}

/// ISO/IEC 9797-1 MAC algorithm 3 with DES: CBC-MAC under K1 over the padded data,
/// then decrypt with K2 and encrypt with K1. Padding method 2 is applied even to aligned
/// data — the official M.IFD only matches that way (spec §4.2).
#[allow(clippy::expect_used)] // a Key is 16 bytes, so both halves are exactly 8
fn retail_mac(key: &Key, data: &[u8]) -> [u8; 8] {
    let k1 = des::Des::new((&key[..8]).try_into().expect("8 bytes"));
    let k2 = des::Des::new((&key[8..]).try_into().expect("8 bytes"));
    let chained =
        cbc::Encryptor::<des::Des>::new((&key[..8]).try_into().expect("8 bytes"), &[0; 8].into())
            .encrypt_padded_vec::<NoPadding>(&pad(data, 8));
    let mut block: des::cipher::Block<des::Des> = [0; 8].into();
    block.copy_from_slice(&chained[chained.len() - 8..]);
    k2.decrypt_block(&mut block);
    k1.encrypt_block(&mut block);
    block.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_round_trip() {
        assert_eq!(pad(b"", 8), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(pad(&[1; 8], 8).len(), 16);
        assert_eq!(unpad(&pad(b"abc", 16)), Some(&b"abc"[..]));
        assert_eq!(unpad(&[1, 2, 0, 0]), None);
        assert_eq!(unpad(&[0, 0]), None);
    }

    #[test]
    fn misaligned_data_is_an_error_not_a_panic() {
        assert!(Generation::First.decrypt(&[0; 16], &[0; 7]).is_err());
        assert!(Generation::Second.encrypt(&[0; 16], &[0; 17]).is_err());
    }
}
