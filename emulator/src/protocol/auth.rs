//! MUTUAL AUTHENTICATE (spec §4.4) from both ends, so the card and the checker share one
//! implementation pinned by the official vectors.
//!
//! ```text
//! E.IFD = Enc(K, RND.IFD ‖ RND.ICC ‖ K.IFD)   M.IFD = MAC(K, E.IFD)
//! E.ICC = Enc(K, RND.ICC ‖ RND.IFD ‖ K.ICC)   M.ICC = MAC(K, E.ICC)
//! ```

use thiserror::Error;

use super::Generation;
use super::crypto::{Key, session_key};

/// 8-byte random of either side.
pub type Nonce = [u8; 8];

/// Why an authentication cryptogram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The cryptogram does not have the 40 bytes `E ‖ M` always has.
    #[error("cryptogram must be 40 bytes, got {0}")]
    Length(usize),
    /// The MAC over `E` does not match: wrong key or altered data.
    #[error("MAC does not verify")]
    Mac,
    /// The other side did not echo our random: a replayed or forged answer.
    #[error("the echoed random does not match")]
    Random,
}

/// Builds `E ‖ M` = `Enc(K, first ‖ second ‖ key_part) ‖ MAC(K, E)`.
#[allow(clippy::expect_used)] // 32 bytes are a whole number of DES and AES blocks: the cipher cannot refuse them
pub fn cryptogram(
    generation: Generation,
    key: &Key,
    first: &Nonce,
    second: &Nonce,
    key_part: &Key,
) -> [u8; 40] {
    let mut plain = [0u8; 32];
    plain[..8].copy_from_slice(first);
    plain[8..16].copy_from_slice(second);
    plain[16..].copy_from_slice(key_part);
    let e = generation
        .encrypt(key, &plain)
        .expect("32 bytes are aligned");
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&e);
    out[32..].copy_from_slice(&generation.mac(key, &e));
    out
}

/// Checks the MAC of `E ‖ M`, decrypts `E` and checks that its second random is
/// `own_random` (the receiver's, echoed back); returns `(sender's random, key part)`.
#[allow(clippy::expect_used)] // 32 bytes are a whole number of DES and AES blocks: the cipher cannot refuse them
pub fn open_cryptogram(
    generation: Generation,
    key: &Key,
    data: &[u8],
    own_random: &Nonce,
) -> Result<(Nonce, Key), AuthError> {
    if data.len() != 40 {
        return Err(AuthError::Length(data.len()));
    }
    let (e, m) = data.split_at(32);
    if generation.mac(key, e) != m {
        return Err(AuthError::Mac);
    }
    let plain = generation.decrypt(key, e).expect("32 bytes are aligned");
    if plain[8..16] != own_random[..] {
        return Err(AuthError::Random);
    }
    let mut sender_random = [0; 8];
    sender_random.copy_from_slice(&plain[..8]);
    let mut key_part = [0; 16];
    key_part.copy_from_slice(&plain[16..]);
    Ok((sender_random, key_part))
}

/// Card side: verifies `E.IFD ‖ M.IFD` against the challenge it issued and answers
/// `E.ICC ‖ M.ICC` with its own `K.ICC`; returns the answer and KSenc.
pub fn card_response(
    generation: Generation,
    key: &Key,
    rnd_icc: &Nonce,
    command_data: &[u8],
    k_icc: &Key,
) -> Result<([u8; 40], Key), AuthError> {
    let (rnd_ifd, k_ifd) = open_cryptogram(generation, key, command_data, rnd_icc)?;
    let answer = cryptogram(generation, key, rnd_icc, &rnd_ifd, k_icc);
    Ok((answer, session_key(&k_ifd, k_icc)))
}

/// Reader side, after the card answered: checks `E.ICC ‖ M.ICC` (MAC first, then both
/// randoms) and returns KSenc.
pub fn reader_finish(
    generation: Generation,
    key: &Key,
    rnd_ifd: &Nonce,
    rnd_icc: &Nonce,
    k_ifd: &Key,
    card_answer: &[u8],
) -> Result<Key, AuthError> {
    let (echoed_icc, k_icc) = open_cryptogram(generation, key, card_answer, rnd_ifd)?;
    if &echoed_icc != rnd_icc {
        return Err(AuthError::Random);
    }
    Ok(session_key(k_ifd, &k_icc))
}
