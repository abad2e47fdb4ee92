//! The probes, as a table: what each decides, what it needs, what it risks and what it
//! sends. The README's list of probes is this table.

use encoding_rs::SHIFT_JIS;

use rclab_emulator::card::knobs::knob;
use rclab_emulator::protocol::layout::{CardType, EfRow, Element, Layout};
use rclab_emulator::protocol::{Generation, Status, tlv};

use super::{Ctx, Decision, Finding, Risk, Seen, spaced_hex};

mod residence;

/// One probe of the battery.
pub struct Probe {
    /// Its name (the README's and the header's).
    pub name: &'static str,
    /// The knob paths (rows of `KNOBS`) it decides.
    pub decides: &'static [&'static str],
    /// It needs the card number (MUTUAL AUTHENTICATE and VERIFY).
    pub needs_card_number: bool,
    /// What it can cost the card.
    pub risk: Risk,
    /// The APDUs it sends, in words.
    pub sends: &'static str,
    /// The probe itself: its findings, one per path of `decides`.
    pub run: fn(&mut Ctx<'_>) -> Vec<Finding>,
}

/// Every probe, in the order they run (the card type first: the others need the layout).
pub const PROBES: &[Probe] = &[
    Probe {
        name: "card-type",
        decides: &[],
        needs_card_number: false,
        risk: Risk::ReadOnly,
        sends: "00 B0 8A 00 00 (MF/EF02, the card type C1): the generation and layout; when \
                the MF has none, 00 A4 04 0C 10 D3 92 F0 00 4F 01 00…00 (SELECT 在留AP) and \
                00 B0 8A 00 00 there (C1 07/08: a specified card)",
        run: card_type,
    },
    Probe {
        name: "reader-get-data",
        decides: &["reader.get_data"],
        needs_card_number: false,
        risk: Risk::ReadOnly,
        sends: "FF CA 00 00 00 and FF CA 01 00 00 (PC/SC GET DATA: UID, historical bytes); \
                lengths kept, not the UID",
        run: reader_get_data,
    },
    Probe {
        name: "read-past-end",
        decides: &["knobs.read_past_end"],
        needs_card_number: false,
        risk: Risk::ReadOnly,
        sends: "00 B0 8B 00 00 (MF/EF01 whole), then 00 B0 8B 00 with Le one past its length",
        run: read_past_end,
    },
    Probe {
        name: "pupi",
        decides: &["reader.pupi"],
        needs_card_number: false,
        risk: Risk::ReadOnly,
        sends: "FF CA 00 00 00 at three power-ups: whether the UID changes (the UID itself \
                is not kept unless it is rclab's default)",
        run: pupi,
    },
    Probe {
        name: "class-errors",
        decides: &[
            "knobs.cla_0c",
            "knobs.unknown_cla",
            "knobs.sm_on_plain_commands",
            "knobs.plain_verify",
        ],
        needs_card_number: false,
        risk: Risk::ReadOnly,
        sends: "0C B0 8B 00 00 (CLA 0C), A0 B0 8B 00 00 (an unknown class), 08 84 00 00 08 \
                (GET CHALLENGE with the SM class), 00 20 00 86 (a plain VERIFY without data: \
                no number compared)",
        run: class_errors,
    },
    Probe {
        name: "file-shapes",
        decides: &["knobs.tlv_lengths", "knobs.trailing_fill"],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY; READ BINARY (plain or SM) of every \
                EF; the length forms and what follows the last TLV kept",
        run: file_shapes,
    },
    Probe {
        name: "sm-read-lengths",
        decides: &["knobs.sm_read_length", "knobs.sm_read_short_le"],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY; on the first SM EF, 08 B0 (80 + \
                SFI) 00 00 00 04 96 02 00 08 00 00 (8 bytes asked, extended Le) and 08 B0 \
                (80 + SFI) 00 04 96 02 00 08 08 (8 bytes, Le 8: the wrapped answer is longer); \
                lengths kept",
        run: sm_read_lengths,
    },
    Probe {
        name: "df1-images",
        decides: &["knobs.image_layout", "face_layout"],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY; SM READ BINARY of the DF1 EFs \
                holding the images (whole EFs); TLV lengths kept, not the images",
        run: df1_images,
    },
    Probe {
        name: "certificate-layout",
        decides: &["signature.certificate_layout"],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY; READ BINARY of DF3/EF01; the \
                certificate's DER length and its TLV's length kept",
        run: certificate_layout,
    },
    Probe {
        name: "text-encoding",
        decides: &["text_encoding"],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY; READ BINARY of the generation-1 \
                DF2 text EFs; only whether the text is UTF-8 or Shift_JIS kept",
        run: text_encoding,
    },
    Probe {
        name: "failed-verify",
        decides: &["knobs.failed_verify_drops_session"],
        needs_card_number: true,
        risk: Risk::Risky("failed-verify"),
        sends: "GET CHALLENGE, MUTUAL AUTHENTICATE, VERIFY of a WRONG number, then VERIFY of \
                the right one",
        run: failed_verify,
    },
    Probe {
        name: "residence-ap",
        decides: &[
            residence::OAEP,
            residence::TEMPLATE,
            residence::SM,
            residence::VERIFY_P2,
            residence::DF_SELECT,
            residence::LE_DO,
            residence::COMMON_DATA,
        ],
        needs_card_number: true,
        risk: Risk::Authenticated,
        sends: "the reference checker's read of the 在留AP (SELECT, C1/C0, SET SESSION KEY under \
                the delivery key in each form until one is taken, VERIFY under SM, SELECT and \
                SM READ of DF1–DF3; headers and status words kept), then 00 B0 8A 00 00 with \
                DF3 current",
        run: residence::settings,
    },
    Probe {
        name: "residence-wrong-number",
        decides: &[residence::WRONG_NUMBER],
        needs_card_number: true,
        risk: Risk::Risky("residence-wrong-number"),
        sends: "SELECT 在留AP, SET SESSION KEY, VERIFY under SM of a WRONG number; on 63 Cx \
                VERIFY of the right one (the tries counted back up)",
        run: residence::wrong_number,
    },
];

/// Knob rows no probe can decide, with the reason: a row added to `KNOBS` must get a
/// probe or a line here, or the battery's test fails.
pub const UNDECIDABLE: &[(&str, &str)] = &[(
    "platform.residence_delivery_key_format",
    "not a card property: the format of the delivery public-key file a checker is handed \
     (give yours with --delivery-key); the card never shows it",
)];

/// Why `path` cannot be probed, if it is listed as undecidable.
pub fn undecidable(path: &str) -> Option<&'static str> {
    UNDECIDABLE
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, why)| *why)
}

/// The README's list of probes, generated from [`PROBES`] and [`UNDECIDABLE`] (Markdown).
pub fn readme_table() -> String {
    let mut out =
        String::from("| probe | decides | card number | risk | sends |\n|---|---|---|---|---|\n");
    for p in PROBES {
        let decides: Vec<String> = p.decides.iter().map(|d| format!("`{d}`")).collect();
        let decides = if decides.is_empty() {
            "(the layout the others need)".to_owned()
        } else {
            decides.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {decides} | {} | {} | {} |\n",
            p.name,
            if p.needs_card_number { "needed" } else { "no" },
            p.risk.label(),
            p.sends
        ));
    }
    for (path, why) in UNDECIDABLE {
        out.push_str(&format!("| — | `{path}`: not probed | — | — | {why} |\n"));
    }
    out
}

/// A finding of `value` for `path`, if the knob takes that value; otherwise unknown (a
/// probe never writes a value the knob table does not have).
fn value(path: &'static str, value: &str, evidence: Vec<Seen>, why: String) -> Finding {
    let decision = match knob(path).and_then(|k| k.values.iter().find(|v| **v == value)) {
        Some(v) => Decision::Value(v),
        None => Decision::Unknown(format!("{value:?} is no value of {path}")),
    };
    Finding {
        path,
        decision,
        evidence,
        why,
    }
}

fn unknown(path: &'static str, evidence: Vec<Seen>, why: impl Into<String>) -> Finding {
    Finding {
        path,
        decision: Decision::Unknown(why.into()),
        evidence,
        why: String::new(),
    }
}

fn not_shown(path: &'static str, evidence: Vec<Seen>, why: impl Into<String>) -> Finding {
    Finding {
        path,
        decision: Decision::NotShown(why.into()),
        evidence,
        why: String::new(),
    }
}

/// Every path of `paths` unknown for the same reason (a step before the decision failed).
fn all_unknown(paths: &[&'static str], evidence: &[Seen], why: &str) -> Vec<Finding> {
    paths
        .iter()
        .map(|p| unknown(p, evidence.to_vec(), why))
        .collect()
}

/// Evidence of a whole-EF read through the reader session (plain or SM).
fn read_seen(label: &str, sm: bool, result: &Result<Vec<u8>, String>) -> Seen {
    let sent = if sm {
        format!("SM READ BINARY {label} (whole EF)")
    } else {
        format!("READ BINARY {label} (whole EF)")
    };
    match result {
        Ok(data) => Seen {
            sent,
            status: Status::Success.to_string(),
            length: data.len(),
        },
        Err(e) => Seen {
            sent,
            status: e.clone(),
            length: 0,
        },
    }
}

fn card_type(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    if ctx.fresh().is_err() {
        return Vec::new();
    }
    if let Some((generation, card_type)) = read_card_type(ctx)
        && !card_type.is_specified()
    {
        ctx.layout = Some(Layout::of(generation, card_type));
        return Vec::new();
    }
    // No residence card type at the MF: a specified card has it under its 在留AP.
    if ctx.fresh().is_err()
        || !crate::checker::my_number::has_residence_ap(ctx.session.channel_mut())
    {
        return Vec::new();
    }
    if let Some((generation, card_type)) = read_card_type(ctx)
        && card_type.is_specified()
    {
        ctx.layout = Some(Layout::of(generation, card_type));
        ctx.specified = true;
    }
    Vec::new()
}

/// The card type `C1` holds where the card stands now (`00 B0 8A 00 00`), if it answers
/// one the layout table knows.
fn read_card_type(ctx: &mut Ctx<'_>) -> Option<(Generation, CardType)> {
    let answer = ctx.session.transmit(&[0x00, 0xB0, 0x8A, 0x00, 0x00]).ok()?;
    if answer.status != Status::Success {
        return None;
    }
    let (c1, _) = tlv::parse_at(&answer.data, 0).ok()?;
    if c1.tag != 0xC1 {
        return None;
    }
    CardType::from_code(c1.value)
}

fn reader_get_data(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "reader.get_data";
    if let Err(e) = ctx.fresh() {
        return vec![unknown(PATH, Vec::new(), e)];
    }
    let (uid, seen_uid) = ctx.raw(&[0xFF, 0xCA, 0x00, 0x00, 0x00]);
    let (_, seen_historical) = ctx.raw(&[0xFF, 0xCA, 0x01, 0x00, 0x00]);
    let evidence = vec![seen_uid, seen_historical];
    vec![match uid {
        Ok(r) if r.status == Status::Success && !r.data.is_empty() => value(
            PATH,
            "true",
            evidence,
            format!(
                "the reader answered GET DATA with a {}-byte UID (not kept)",
                r.data.len()
            ),
        ),
        // The card's answer to a class it does not know (knobs.unknown_cla).
        Ok(r)
            if matches!(
                r.status,
                Status::ClassNotSupported | Status::InstructionNotSupported
            ) =>
        {
            value(
                PATH,
                "false",
                evidence,
                format!(
                    "CLA FF reached the card, which refused it with {}",
                    r.status
                ),
            )
        }
        Ok(r) => unknown(
            PATH,
            evidence,
            format!("GET DATA answered {} with {} bytes", r.status, r.data.len()),
        ),
        Err(e) => unknown(PATH, evidence, format!("GET DATA: {e}")),
    }]
}

fn read_past_end(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "knobs.read_past_end";
    if let Err(e) = ctx.fresh() {
        return vec![unknown(PATH, Vec::new(), e)];
    }
    let (whole, seen_whole) = ctx.raw(&[0x00, 0xB0, 0x8B, 0x00, 0x00]);
    let mut evidence = vec![seen_whole];
    let size = match whole {
        Ok(r) if matches!(r.status, Status::Success | Status::EndOfFileWarning) => r.data.len(),
        Ok(r) => match r.status {
            Status::WrongLe(n) => usize::from(n),
            other => {
                return vec![unknown(
                    PATH,
                    evidence,
                    format!("MF/EF01 did not read ({other})"),
                )];
            }
        },
        Err(e) => return vec![unknown(PATH, evidence, format!("MF/EF01: {e}"))],
    };
    let Some(le) = u8::try_from(size + 1).ok().filter(|_| size > 0) else {
        return vec![unknown(
            PATH,
            evidence,
            format!("MF/EF01 is {size} bytes: no short Le reaches past its end"),
        )];
    };
    let (past, seen_past) = ctx.raw(&[0x00, 0xB0, 0x8B, 0x00, le]);
    evidence.push(seen_past);
    let asked = format!("asked for {le} bytes of a {size}-byte EF");
    vec![match past {
        Ok(r) => match r.status {
            Status::EndOfFileWarning if r.data.len() == size => value(
                PATH,
                "end_of_file_warning",
                evidence,
                format!("{asked}: the {size} bytes and 62 82"),
            ),
            Status::WrongLe(n) if usize::from(n) == size => value(
                PATH,
                "wrong_le",
                evidence,
                format!("{asked}: 6C {n:02X}, the length there is"),
            ),
            Status::Success if r.data.len() == size => value(
                PATH,
                "success",
                evidence,
                format!("{asked}: the {size} bytes and 90 00"),
            ),
            Status::OffsetOutOfRange if r.data.is_empty() => value(
                PATH,
                "wrong_p1_p2",
                evidence,
                format!("{asked}: 6B 00 and no data"),
            ),
            other => unknown(
                PATH,
                evidence,
                format!(
                    "{asked}: {other} with {} bytes, outside every value",
                    r.data.len()
                ),
            ),
        },
        Err(e) => unknown(PATH, evidence, format!("{asked}: {e}")),
    }]
}

/// A data object found in an EF: whether its length took a long form (`81`/`82`), and its
/// value.
struct Found<'a> {
    long: bool,
    value: &'a [u8],
}

/// The first object with `tag` among the top-level TLVs of `content` (until the end or the
/// fill).
fn object_at(content: &[u8], tag: u16) -> Result<Option<Found<'_>>, String> {
    let mut pos = 0;
    while pos < content.len() && !is_fill(&content[pos..]) {
        let (object, next) = tlv::parse_at(content, pos).map_err(|e| e.to_string())?;
        if object.tag == tag {
            let long = content.get(pos + if tag > 0xFF { 2 } else { 1 }) >= Some(&0x81);
            return Ok(Some(Found {
                long,
                value: object.value,
            }));
        }
        pos = next;
    }
    Ok(None)
}

/// True where an EF's TLVs have ended: a `00` byte, or `FF` bytes to the end (erased
/// memory; the TLV parser's rule).
pub(crate) fn is_fill(rest: &[u8]) -> bool {
    rest.first() == Some(&0) || (!rest.is_empty() && rest.iter().all(|&b| b == 0xFF))
}

/// One TLV's shape: its tag, the bytes its length took, its value's length.
struct Shape {
    tag: u16,
    length_bytes: usize,
    value: usize,
}

impl Shape {
    /// The length was written in the short form (one byte).
    fn short(&self) -> bool {
        self.length_bytes == 1
    }

    /// Bytes the length took beyond its minimal form.
    fn excess(&self) -> usize {
        let minimal = match self.value {
            0..=0x7F => 1,
            0x80..=0xFF => 2,
            _ => 3,
        };
        self.length_bytes.saturating_sub(minimal)
    }
}

/// Where the TLVs of an EF end (the fill after them starts), and each TLV's shape.
fn tlv_walk(content: &[u8]) -> Result<(usize, Vec<Shape>), String> {
    let mut pos = 0;
    let mut shapes = Vec::new();
    while pos < content.len() && !is_fill(&content[pos..]) {
        let (object, next) = tlv::parse_at(content, pos).map_err(|e| e.to_string())?;
        let tag_len = if object.tag > 0xFF { 2 } else { 1 };
        shapes.push(Shape {
            tag: object.tag,
            length_bytes: next - pos - tag_len - object.value.len(),
            value: object.value.len(),
        });
        pos = next;
    }
    Ok((pos, shapes))
}

fn df1_images(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const IMAGE: &str = "knobs.image_layout";
    const FACE: &str = "face_layout";
    let Some(layout) = ctx.layout() else {
        return all_unknown(&[IMAGE, FACE], &[], "the card type was not read");
    };
    if let Err(e) = ctx.open() {
        return all_unknown(&[IMAGE, FACE], &[], &e);
    }
    let mut out = Vec::new();
    if layout.generation == Generation::First {
        out.push(match layout.holding_element(Element::FrontImage) {
            Some((row, object)) => {
                let read = ctx.read_ef(row);
                let evidence = vec![read_seen(row.label_text(), true, &read)];
                let area = object.area.unwrap_or(0);
                // The image's length in D0, and whether its last byte is zero (padding).
                let shape = read.and_then(|c| {
                    object_at(&c, object.tag)
                        .map(|o| o.map(|f| (f.value.len(), f.value.last() == Some(&0))))
                        .map_err(|e| format!("the front-image EF does not parse: {e}"))
                });
                match shape {
                    Ok(Some((len, _))) if len < area => value(
                        IMAGE,
                        "exact",
                        evidence,
                        format!("D0 holds {len} bytes of a {area}-byte area"),
                    ),
                    Ok(Some((len, true))) if len == area => value(
                        IMAGE,
                        "full",
                        evidence,
                        format!(
                            "D0 holds the whole {area}-byte area, the image zero-padded inside"
                        ),
                    ),
                    Ok(Some((len, false))) if len == area => not_shown(
                        IMAGE,
                        evidence,
                        format!(
                            "the image fills the whole {area}-byte area: both layouts store it \
                             alike"
                        ),
                    ),
                    Ok(Some((len, _))) => unknown(
                        IMAGE,
                        evidence,
                        format!("D0 of {len} bytes is larger than its {area}-byte area"),
                    ),
                    Ok(None) => unknown(IMAGE, evidence, "no D0 in the front-image EF"),
                    Err(e) => unknown(IMAGE, evidence, e),
                }
            }
            None => unknown(IMAGE, Vec::new(), "the layout has no front image"),
        });
    }
    out.push(match layout.holding_element(Element::FaceImage) {
        Some((row, object)) => {
            let read = ctx.read_ef(row);
            let evidence = vec![read_seen(row.label_text(), true, &read)];
            // D1's length, whether it was written long, whether it is all zeros.
            let shape = read.and_then(|c| {
                object_at(&c, object.tag)
                    .map(|o| o.map(|f| (f.value.len(), f.long, f.value.iter().all(|&b| b == 0))))
                    .map_err(|e| format!("the face EF does not parse: {e}"))
            });
            match shape {
                Ok(None) => value(FACE, "omitted", evidence, "no D1 in its EF".into()),
                Ok(Some((0, false, _))) => value(
                    FACE,
                    "zero_length",
                    evidence,
                    "D1 00: present and empty".into(),
                ),
                // Generation 2 stores a missing face zero-filled at full length: an empty
                // D1 is zero_length, whatever its length form.
                Ok(Some((0, true, _))) if layout.generation == Generation::Second => value(
                    FACE,
                    "zero_length",
                    evidence,
                    "D1 82 00 00: present and empty (long length form)".into(),
                ),
                Ok(Some((0, true, _))) if ctx.long_lengths == Some(true) => not_shown(
                    FACE,
                    evidence,
                    "D1 82 00 00 on a card writing long lengths: an empty image of the exact \
                     layout (zero_filled) and an empty D1 (zero_length) store it alike",
                ),
                Ok(Some((0, true, _))) => value(
                    FACE,
                    "zero_filled",
                    evidence,
                    "D1 82 00 00: an image of no bytes in the exact layout (fill after it)".into(),
                ),
                Ok(Some((len, _, true))) => value(
                    FACE,
                    "zero_filled",
                    evidence,
                    format!("D1 holds {len} zero bytes"),
                ),
                Ok(Some((len, _, false))) => not_shown(
                    FACE,
                    evidence,
                    format!(
                        "the card holds a {len}-byte face image: how it stores a missing one \
                         does not show"
                    ),
                ),
                Err(e) => unknown(FACE, evidence, e),
            }
        }
        None => unknown(FACE, Vec::new(), "the layout has no face image"),
    });
    out
}

fn certificate_layout(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "signature.certificate_layout";
    let Some(layout) = ctx.layout() else {
        return vec![unknown(PATH, Vec::new(), "the card type was not read")];
    };
    let Some((row, object)) = layout.holding_element(Element::Certificate) else {
        return vec![unknown(PATH, Vec::new(), "the layout has no certificate")];
    };
    if let Err(e) = ctx.open() {
        return vec![unknown(PATH, Vec::new(), e)];
    }
    let read = ctx.read_ef(row);
    let evidence = vec![read_seen(row.label_text(), false, &read)];
    let content = match read {
        Ok(c) => c,
        Err(e) => return vec![unknown(PATH, evidence, e)],
    };
    // The certificate's TLV, and where it ends in the EF.
    let mut pos = 0;
    let found = loop {
        match tlv::parse_at(&content, pos) {
            Ok((o, end)) if o.tag == object.tag => break Some((o.value, end)),
            Ok((_, end)) if end < content.len() && !is_fill(&content[end..]) => pos = end,
            _ => break None,
        }
    };
    let Some((value_bytes, end)) = found else {
        return vec![unknown(
            PATH,
            evidence,
            format!("no {:02X} object in {}", object.tag, row.label_text()),
        )];
    };
    let der = match tlv::parse_at(value_bytes, 0) {
        Ok((_, der_end)) => der_end,
        Err(e) => {
            return vec![unknown(
                PATH,
                evidence,
                format!("the certificate's own length does not parse: {e}"),
            )];
        }
    };
    let stored = value_bytes.len();
    let fills = match object.area {
        Some(area) => stored == area,
        // Padded to the end of the EF's allocated size (whatever fill follows).
        None => allocated(row).is_some_and(|size| end >= size),
    };
    let tag = format!("{:02X}", object.tag);
    vec![if der == stored && fills {
        not_shown(
            PATH,
            evidence,
            format!("the {der}-byte certificate fills its area: both layouts store it alike"),
        )
    } else if der == stored {
        value(
            PATH,
            "exact",
            evidence,
            format!("{tag} holds exactly the {der}-byte certificate"),
        )
    } else if der < stored && value_bytes[der..].iter().all(|&b| b == 0) {
        value(
            PATH,
            "padded",
            evidence,
            format!("{tag} holds {stored} bytes: the {der}-byte certificate and zeros"),
        )
    } else {
        unknown(
            PATH,
            evidence,
            format!(
                "{tag} holds {stored} bytes around a {der}-byte certificate, outside both layouts"
            ),
        )
    }]
}

fn text_encoding(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "text_encoding";
    let Some(layout) = ctx.layout() else {
        return vec![unknown(PATH, Vec::new(), "the card type was not read")];
    };
    if let Err(e) = ctx.open() {
        return vec![unknown(PATH, Vec::new(), e)];
    }
    let text_elements = [
        Element::AddressText,
        Element::ComprehensivePermissionText,
        Element::IndividualPermissionText,
    ];
    let mut evidence = Vec::new();
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for element in text_elements {
        let Some((row, object)) = layout.holding_element(element) else {
            continue;
        };
        let read = ctx.read_ef(row);
        evidence.push(read_seen(row.label_text(), false, &read));
        let content = match read {
            Ok(c) => c,
            Err(e) => return vec![unknown(PATH, evidence, e)],
        };
        match object_at(&content, object.tag) {
            Ok(Some(Found { value: v, .. })) => {
                let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                texts.push(v[..end].to_vec());
            }
            Ok(None) => {}
            Err(e) => {
                return vec![unknown(
                    PATH,
                    evidence,
                    format!("{}: {e}", row.label_text()),
                )];
            }
        }
    }
    let non_ascii: usize = texts
        .iter()
        .map(|t| t.iter().filter(|&&b| b >= 0x80).count())
        .sum();
    if non_ascii == 0 {
        return vec![not_shown(
            PATH,
            evidence,
            "the text is ASCII: both encodings store it alike",
        )];
    }
    let counted = format!("{} text objects, {non_ascii} non-ASCII bytes", texts.len());
    if texts.iter().all(|t| std::str::from_utf8(t).is_ok()) {
        vec![value(
            PATH,
            "utf8",
            evidence,
            format!("{counted}, all valid UTF-8"),
        )]
    } else if texts
        .iter()
        .all(|t| !SHIFT_JIS.decode_without_bom_handling(t).1)
    {
        vec![value(
            PATH,
            "shift_jis",
            evidence,
            format!("{counted}: not UTF-8, valid Shift_JIS"),
        )]
    } else {
        vec![unknown(
            PATH,
            evidence,
            format!("{counted}: neither UTF-8 nor Shift_JIS"),
        )]
    }
}

/// The knob value `status` stands for in `table`, or unknown with the evidence.
fn by_status(
    path: &'static str,
    answer: &Result<rclab_emulator::protocol::Response, rclab_emulator::reader::ReaderError>,
    seen: Seen,
    table: &[(Status, &str)],
) -> Finding {
    let status = match answer {
        Ok(r) => r.status,
        Err(e) => return unknown(path, vec![seen], e.to_string()),
    };
    match table.iter().find(|(s, _)| *s == status) {
        Some((_, v)) => value(path, v, vec![seen], format!("answered {status}")),
        None => unknown(path, vec![seen], format!("{status}, outside every value")),
    }
}

fn class_errors(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    use Status::*;
    let paths = [
        "knobs.cla_0c",
        "knobs.unknown_cla",
        "knobs.sm_on_plain_commands",
        "knobs.plain_verify",
    ];
    if let Err(e) = ctx.fresh() {
        return all_unknown(&paths, &[], &e);
    }
    let mut out = Vec::new();
    let (a, seen) = ctx.raw(&[0x0C, 0xB0, 0x8B, 0x00, 0x00]);
    out.push(by_status(
        paths[0],
        &a,
        seen,
        &[
            (SecureMessagingNotSupported, "sm_not_supported"),
            (ClassNotSupported, "class_not_supported"),
            (IncorrectSmDataObjects, "incorrect_sm_data_objects"),
        ],
    ));
    let (a, seen) = ctx.raw(&[0xA0, 0xB0, 0x8B, 0x00, 0x00]);
    out.push(by_status(
        paths[1],
        &a,
        seen,
        &[
            (ClassNotSupported, "class_not_supported"),
            (InstructionNotSupported, "instruction_not_supported"),
        ],
    ));
    let (a, seen) = ctx.raw(&[0x08, 0x84, 0x00, 0x00, 0x08]);
    out.push(match &a {
        Ok(r) if r.status == Success && r.data.len() == 8 => value(
            paths[2],
            "run_as_plain",
            vec![seen],
            "GET CHALLENGE with CLA 08 gave a challenge".into(),
        ),
        _ => by_status(
            paths[2],
            &a,
            seen,
            &[
                (SecureMessagingNotSupported, "sm_not_supported"),
                (IncorrectSmDataObjects, "incorrect_sm_data_objects"),
                (ClassNotSupported, "class_not_supported"),
            ],
        ),
    });
    let (a, seen) = ctx.raw(&[0x00, 0x20, 0x00, 0x86]);
    out.push(by_status(
        paths[3],
        &a,
        seen,
        &[
            (IncorrectSmDataObjects, "incorrect_sm_data_objects"),
            (SecurityStatusNotSatisfied, "security_status_not_satisfied"),
        ],
    ));
    out
}

fn pupi(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "reader.pupi";
    let mut evidence = Vec::new();
    let mut uids = Vec::new();
    for _ in 0..3 {
        if let Err(e) = ctx.fresh() {
            return vec![unknown(PATH, evidence, e)];
        }
        let (a, seen) = ctx.raw(&[0xFF, 0xCA, 0x00, 0x00, 0x00]);
        evidence.push(seen);
        match a {
            Ok(r) if r.status == Status::Success && !r.data.is_empty() => uids.push(r.data),
            _ => {
                return vec![not_shown(
                    PATH,
                    evidence,
                    "the reader does not answer GET DATA with a UID: no PUPI shows",
                )];
            }
        }
    }
    let default = rclab_emulator::transport::reader_layer::DEFAULT_PUPI;
    vec![if uids.windows(2).all(|w| w[0] != w[1]) {
        value(
            PATH,
            "random",
            evidence,
            "a different UID at each of three power-ups (not kept)".into(),
        )
    } else if uids.iter().all(|u| u == &default) {
        value(
            PATH,
            "52 43 4C 42",
            evidence,
            "the same UID at three power-ups: rclab's default PUPI".into(),
        )
    } else if uids.windows(2).all(|w| w[0] == w[1]) {
        unknown(
            PATH,
            evidence,
            "a fixed UID that is not rclab's default: not kept, it identifies the card",
        )
    } else {
        unknown(PATH, evidence, "the UID changed at some power-ups only")
    }]
}

fn file_shapes(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const LENGTHS: &str = "knobs.tlv_lengths";
    const FILL: &str = "knobs.trailing_fill";
    let Some(layout) = ctx.layout() else {
        return all_unknown(&[LENGTHS, FILL], &[], "the card type was not read");
    };
    if let Err(e) = ctx.open() {
        return all_unknown(&[LENGTHS, FILL], &[], &e);
    }
    let mut evidence = Vec::new();
    let (mut short, mut long_small) = (0usize, 0usize);
    // What follows the TLVs in EFs that have room after them: zeros, FF, or nothing.
    let (mut zeros, mut ff, mut none, mut odd) = (0usize, 0usize, 0usize, 0usize);
    for row in layout.files {
        let read = ctx.read_ef(row);
        evidence.push(read_seen(
            row.label_text(),
            row.access == rclab_emulator::protocol::layout::Access::AuthSm,
            &read,
        ));
        let content = match read {
            Ok(c) => c,
            Err(e) => return all_unknown(&[LENGTHS, FILL], &evidence, &e),
        };
        let (end, forms) = match tlv_walk(&content) {
            Ok(walk) => walk,
            Err(e) => {
                let why = format!("{} does not parse: {e}", row.label_text());
                return all_unknown(&[LENGTHS, FILL], &evidence, &why);
            }
        };
        if row.id.df != rclab_emulator::protocol::layout::Df::Mf {
            short += forms.iter().filter(|f| f.short()).count();
            long_small += forms
                .iter()
                .filter(|f| !f.short() && f.value < 0x80)
                .count();
        }
        // Long lengths the layout does not write grow the EF's allocated size.
        let growth: usize = forms
            .iter()
            .filter(|f| !row.object(f.tag).is_some_and(|o| o.long_length))
            .map(Shape::excess)
            .sum();
        // An EF without a fixed size is allocated its objects' areas only when they are
        // all there and none is empty (a missing face leaves no room behind).
        let whole = row.size.is_some()
            || (forms.len() == row.objects.len() && forms.iter().all(|f| f.value > 0));
        let rest = &content[end..];
        if rest.is_empty() {
            if whole && allocated(row).is_some_and(|size| content.len() < size + growth) {
                none += 1;
            }
        } else if rest.iter().all(|&b| b == 0) {
            zeros += 1;
        } else if rest.iter().all(|&b| b == 0xFF) {
            ff += 1;
        } else {
            odd += 1;
        }
    }
    let lengths = if short > 0 {
        value(
            LENGTHS,
            "minimal",
            evidence.clone(),
            format!("{short} lengths outside the MF in the short form"),
        )
    } else if long_small > 0 {
        value(
            LENGTHS,
            "long_form",
            evidence.clone(),
            format!("no short length outside the MF; {long_small} under 128 bytes written long"),
        )
    } else {
        not_shown(
            LENGTHS,
            evidence.clone(),
            "no length under 128 bytes outside the MF",
        )
    };
    ctx.long_lengths = lengths.value().map(|v| v == "long_form");
    let counts = format!(
        "EFs with room after their TLVs: {zeros} zero-filled, {ff} FF-filled, {none} ending \
         at their TLVs, {odd} other"
    );
    let fill = match (zeros, ff, none, odd) {
        (0, 0, 0, 0) => not_shown(FILL, evidence, "no EF has room after its TLVs"),
        (_, 0, 0, 0) => value(FILL, "zeros", evidence, counts),
        (0, _, 0, 0) => value(FILL, "ff", evidence, counts),
        (0, 0, _, 0) => value(FILL, "none", evidence, counts),
        _ => unknown(FILL, evidence, counts),
    };
    vec![lengths, fill]
}

/// The size the layout allocates an EF: its fixed size, or its objects' areas with their
/// headers (an EF of images); `None` when an object has no fixed area.
fn allocated(row: &EfRow) -> Option<usize> {
    row.size.or_else(|| {
        row.objects
            .iter()
            .map(|o| {
                let area = o.area?;
                let tag = if o.tag > 0xFF { 2 } else { 1 };
                let length = match area {
                    _ if o.long_length => 3,
                    0..=0x7F => 1,
                    0x80..=0xFF => 2,
                    _ => 3,
                };
                Some(tag + length + area)
            })
            .sum()
    })
}

fn sm_read_lengths(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const LENGTH: &str = "knobs.sm_read_length";
    const SHORT_LE: &str = "knobs.sm_read_short_le";
    let Some(layout) = ctx.layout() else {
        return all_unknown(&[LENGTH, SHORT_LE], &[], "the card type was not read");
    };
    let Some(row) = layout
        .files
        .iter()
        .find(|r| r.access == rclab_emulator::protocol::layout::Access::AuthSm)
    else {
        return all_unknown(&[LENGTH, SHORT_LE], &[], "the layout has no SM EF");
    };
    if let Err(e) = ctx.open().and_then(|()| ctx.select(row.id.df)) {
        return all_unknown(&[LENGTH, SHORT_LE], &[], &e);
    }
    let p1 = 0x80 | row.id.sfi;
    // DO 96 asks for 8 bytes of an EF that holds more (every SM EF does).
    let asked = ctx.session.read_sm_once(p1, 0, 8);
    let seen = Seen {
        sent: spaced_hex(&rclab_emulator::reader::sm_read_apdu(p1, 0, 8)),
        status: match &asked {
            Ok((status, _)) => status.to_string(),
            Err(e) => e.to_string(),
        },
        length: asked.as_ref().map_or(0, |(_, plain)| plain.len()),
    };
    let length = match asked {
        Ok((Status::Success, plain)) if plain.len() == 8 => value(
            LENGTH,
            "as_asked",
            vec![seen],
            "DO 96 asked 8 bytes: 8 bytes came back".into(),
        ),
        Ok((Status::Success, plain)) if plain.len() > 8 => value(
            LENGTH,
            "to_end_of_file",
            vec![seen],
            format!(
                "DO 96 asked 8 bytes: the rest of the EF came back ({} bytes)",
                plain.len()
            ),
        ),
        Ok((status, plain)) => unknown(
            LENGTH,
            vec![seen],
            format!(
                "{status} with {} plaintext bytes, outside both values",
                plain.len()
            ),
        ),
        Err(e) => unknown(LENGTH, vec![seen], e.to_string()),
    };
    // 8 plaintext bytes come back as DO 86 of at least 19 bytes: longer than Le 8.
    let apdu = [0x08, 0xB0, p1, 0x00, 0x04, 0x96, 0x02, 0x00, 0x08, 0x08];
    let (a, seen) = ctx.raw(&apdu);
    let evidence = vec![seen];
    let short_le = match a {
        Ok(r) if matches!(r.status, Status::WrongLe(_) | Status::WrongLength) => value(
            SHORT_LE,
            "wrong_le",
            evidence,
            format!("an SM answer longer than Le 8: {}", r.status),
        ),
        Ok(r) if r.status == Status::Success && r.data.len() > 8 => value(
            SHORT_LE,
            "whole_answer",
            evidence,
            format!(
                "an SM answer longer than Le 8: all {} bytes and 90 00",
                r.data.len()
            ),
        ),
        Ok(r) => unknown(
            SHORT_LE,
            evidence,
            format!(
                "{} with {} bytes, outside both values",
                r.status,
                r.data.len()
            ),
        ),
        Err(e) => unknown(SHORT_LE, evidence, e.to_string()),
    };
    vec![length, short_le]
}

/// A card number of the right form that is not `number`: its first letter changed.
fn wrong_number(number: &str) -> String {
    let mut chars: Vec<char> = number.chars().collect();
    if let Some(first) = chars.first_mut() {
        *first = if *first == 'Z' { 'Y' } else { 'Z' };
    }
    chars.into_iter().collect()
}

fn failed_verify(ctx: &mut Ctx<'_>) -> Vec<Finding> {
    const PATH: &str = "knobs.failed_verify_drops_session";
    let Some(number) = ctx.number.clone() else {
        return vec![unknown(PATH, Vec::new(), "no card number")];
    };
    if let Err(e) = ctx.open() {
        return vec![unknown(PATH, Vec::new(), e)];
    }
    let seen = |what: &str, status: &Result<Status, String>| Seen {
        sent: format!("VERIFY ({what}, not kept)"),
        status: match status {
            Ok(s) => s.to_string(),
            Err(e) => e.clone(),
        },
        length: 0,
    };
    let wrong = ctx.verify_status(&wrong_number(&number));
    let mut evidence = vec![seen("a wrong number", &wrong)];
    if wrong != Ok(Status::VerificationFailed) {
        return vec![unknown(
            PATH,
            evidence,
            "the wrong number was not refused with 63 00",
        )];
    }
    let right = ctx.verify_status(&number);
    evidence.push(seen("the card number", &right));
    match right {
        Ok(Status::Success) => vec![value(
            PATH,
            "false",
            evidence,
            "after a failed VERIFY the session still verifies the right number".into(),
        )],
        Ok(
            s @ (Status::ConditionsNotSatisfied
            | Status::IncorrectSmDataObjects
            | Status::SecurityStatusNotSatisfied),
        ) => vec![value(
            PATH,
            "true",
            evidence,
            format!("after a failed VERIFY the right number is refused with {s}: no session"),
        )],
        Ok(s) => vec![unknown(
            PATH,
            evidence,
            format!("the right number then got {s}, outside both values"),
        )],
        Err(e) => vec![unknown(PATH, evidence, e)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbedCard;
    use rclab_emulator::card::knobs::KNOBS;

    #[test]
    fn every_knob_is_decided_by_one_probe_or_listed_as_undecidable() {
        // `rclab probe` reads residence cards and the specified card's 在留AP: the plain My
        // Number platform's rows are not probed yet (no card shows them to the probe), and
        // the README says so.
        let cards = [
            ProbedCard::Residence(Generation::First),
            ProbedCard::Residence(Generation::Second),
            ProbedCard::Specified,
        ];
        let shown: Vec<_> = KNOBS
            .iter()
            .filter(|k| cards.iter().any(|c| c.shows(k)))
            .collect();
        assert!(
            shown.iter().any(|k| k.is_residence_ap()),
            "the specified card's rows are covered"
        );
        for k in KNOBS.iter().filter(|k| k.is_residence_ap()) {
            assert!(ProbedCard::Specified.shows(k), "{}", k.path);
            assert!(
                !ProbedCard::Residence(Generation::Second).shows(k),
                "{}",
                k.path
            );
        }
        for k in shown {
            let deciding: Vec<&str> = PROBES
                .iter()
                .filter(|p| p.decides.contains(&k.path))
                .map(|p| p.name)
                .collect();
            match (deciding.as_slice(), undecidable(k.path)) {
                ([_], None) => {}
                ([], Some(why)) => assert!(!why.is_empty(), "{}", k.path),
                (probes, why) => panic!(
                    "{}: decided by {probes:?}, undecidable: {why:?} (one of the two, once)",
                    k.path
                ),
            }
        }
        for p in PROBES {
            for path in p.decides {
                assert!(knob(path).is_some(), "{}: {path} is no knob", p.name);
            }
            assert!(!p.sends.is_empty());
        }
        for (path, _) in UNDECIDABLE {
            assert!(knob(path).is_some(), "{path} is no knob");
        }
    }

    #[test]
    fn a_wrong_number_differs_and_keeps_the_form() {
        assert_eq!(wrong_number("AB12345678CD"), "ZB12345678CD");
        assert_eq!(wrong_number("ZB12345678CD"), "YB12345678CD");
    }

    #[test]
    fn long_and_short_lengths_are_told_apart() {
        let long = |ef: &[u8]| object_at(ef, 0xD1).unwrap().unwrap().long;
        assert!(!long(&[0xD1, 0x00]));
        assert!(long(&[0xD1, 0x82, 0x00, 0x00, 0x00]));
        assert!(object_at(&[0x00, 0xD1, 0x00], 0xD1).unwrap().is_none());
        assert!(object_at(&[0xD1, 0x05], 0xD1).is_err());
    }
}
