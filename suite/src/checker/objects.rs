//! Strict BER-TLV over an EF's bytes: what the checker accepts as data objects.

use rclab_emulator::protocol::Generation;
use rclab_emulator::protocol::tlv::{self, Tlv};

use super::data::strict_text;
use super::stop::{Step, malformed};

/// The EF's data objects; a tag that appears twice is refused, so that no object can
/// hide behind another of the same tag (a checker that verifies the first `D1` while an
/// app shows the last would be fooled).
pub(super) fn parse<'a>(ef: &'a [u8], what: &str) -> Step<Vec<Tlv<'a>>> {
    let tlvs = tlv::parse_all(ef).or_else(|e| malformed(format!("{what}: {e}")))?;
    for (i, t) in tlvs.iter().enumerate() {
        if tlvs[..i].iter().any(|earlier| earlier.tag == t.tag) {
            return malformed(format!("{what}: tag {:02X} appears twice", t.tag));
        }
    }
    Ok(tlvs)
}

/// The value of `t` as text in `generation`'s encoding.
pub(super) fn field_text(t: &Tlv, generation: Generation, what: &str) -> Step<String> {
    strict_text(t.value, generation).or_else(|e| malformed(format!("{what} {:02X}: {e}", t.tag)))
}

/// Tags as `C5 C6 …`, for messages.
pub(super) fn tag_list(tags: &[u16]) -> String {
    tags.iter()
        .map(|t| format!("{t:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The EF must hold exactly one TLV, with `tag`.
pub(super) fn single<'a>(ef: &'a [u8], tag: u16, name: &str) -> Step<&'a [u8]> {
    let tlvs = parse(ef, name)?;
    match tlvs.as_slice() {
        [t] if t.tag == tag => Ok(t.value),
        _ => malformed(format!(
            "expected one {name} object, found tags {}",
            tag_list(&tlvs.iter().map(|t| t.tag).collect::<Vec<_>>())
        )),
    }
}

/// The EF holds `tag` once or nothing at all.
pub(super) fn optional<'a>(ef: &'a [u8], tag: u16, name: &str) -> Step<Option<&'a [u8]>> {
    let tlvs = parse(ef, name)?;
    match tlvs.as_slice() {
        [] => Ok(None),
        [t] if t.tag == tag => Ok(Some(t.value)),
        _ => malformed(format!("unexpected objects where {name} belongs")),
    }
}

/// The value of `tag`, which must appear exactly once among `tlvs`.
pub(super) fn required<'a>(tlvs: &[Tlv<'a>], tag: u16, name: &str) -> Step<&'a [u8]> {
    let count = tlvs.iter().filter(|t| t.tag == tag).count();
    if count != 1 {
        return malformed(format!("{name} appears {count} times"));
    }
    Ok(tlv::find(tlvs, tag).unwrap_or_default())
}
