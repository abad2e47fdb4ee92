//! What the check code signs (spec §7.1, §7.2): shared by the profile compiler, which
//! signs, and the checker, which verifies, so both agree by construction and the official
//! layout is written once.

pub use super::layout::{
    FACE_AREA, GEN1_FRONT_AREA, GEN2_ADDRESS_AREA, GEN2_NAME_AREA, GEN2_PRINTED_AREA,
};

/// Generation 1: `D0` zero-padded to 7 000 ‖ `D1` zero-padded to 3 000 (RSASSA-PKCS1-v1_5,
/// SHA-256).
pub fn gen1_signed_data(front: &[u8], face: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(GEN1_FRONT_AREA + FACE_AREA);
    push_padded(&mut out, front, GEN1_FRONT_AREA);
    push_padded(&mut out, face, FACE_AREA);
    out
}

/// Generation 2: printed-entry values zero-padded to 53 ‖ `D1` face zero-padded to 3 000 ‖
/// `D0` name zero-padded to 2 500 (ECDSA P-384 with SHA-256). Note the order differs from
/// the storage order.
pub fn gen2_signed_data(printed_values: &[u8], face: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(GEN2_PRINTED_AREA + FACE_AREA + GEN2_NAME_AREA);
    push_padded(&mut out, printed_values, GEN2_PRINTED_AREA);
    push_padded(&mut out, face, FACE_AREA);
    push_padded(&mut out, name, GEN2_NAME_AREA);
    out
}

/// Appends `value` and zeros up to `area` (a longer value is kept whole, so a forged
/// oversized field changes the signed bytes instead of being silently cut).
pub fn push_padded(out: &mut Vec<u8>, value: &[u8], area: usize) {
    out.extend_from_slice(value);
    out.resize(out.len() + area.saturating_sub(value.len()), 0);
}
