//! Every behaviour the specification leaves open that a card can show, as one table
//! ([`KNOBS`]): where a profile sets it, the values it takes, the default and why, how sure
//! we are (the spec's evidence levels), the spec section and the generations it applies to.
//!
//! Everything reads this table: the README's knob table is generated from it (a test fails
//! when they differ), the variant generator writes one profile overlay per (knob, value)
//! with [`KnobSpec::overlay`], and a test compiles every value over every valid profile of
//! the knob's generations and checks the reference checker still reads the card as genuine.
//!
//! Some knobs predate the `knobs:` section and live elsewhere in a profile
//! (`text_encoding`, `face_layout`, `signature.certificate_layout`); the table lists them
//! by their real YAML path rather than moving them, so no profile breaks.

use serde_yaml_ng::{Mapping, Value};

use crate::chip::ChipKind;
use crate::protocol::Generation;

/// How well a knob's default is supported (the evidence levels of the protocol notes, §0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// `[S]`: stated by the specification.
    Specified,
    /// `[R]`: shown by a real card or its dump.
    RealCard,
    /// `[C]`: what working reader code does.
    ReaderCode,
    /// `[I]`: inferred (arithmetic on sizes, ISO 7816-4 convention).
    Inferred,
    /// `[?]`: uncertain, unresolved.
    Unknown,
}

impl Evidence {
    /// The tag the spec writes: `[S]`, `[R]`, `[C]`, `[I]` or `[?]`.
    pub const fn tag(self) -> &'static str {
        match self {
            Evidence::Specified => "[S]",
            Evidence::RealCard => "[R]",
            Evidence::ReaderCode => "[C]",
            Evidence::Inferred => "[I]",
            Evidence::Unknown => "[?]",
        }
    }
}

/// A knob's default: one value, or one per generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobDefault {
    /// The same value in every generation.
    Same(&'static str),
    /// Generation 1's value, then generation 2's.
    PerGeneration(&'static str, &'static str),
}

impl KnobDefault {
    /// The default value in `generation`.
    pub const fn for_generation(self, generation: Generation) -> &'static str {
        match (self, generation) {
            (KnobDefault::Same(v), _) => v,
            (KnobDefault::PerGeneration(first, _), Generation::First) => first,
            (KnobDefault::PerGeneration(_, second), Generation::Second) => second,
        }
    }
}

/// One open behaviour a profile can choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnobSpec {
    /// The profile's YAML path, dotted (`knobs.read_past_end`, `text_encoding`).
    pub path: &'static str,
    /// Every value it takes, as the YAML scalar a profile writes.
    pub values: &'static [&'static str],
    /// The value a profile gets when it does not choose (the likeliest real card).
    pub default: KnobDefault,
    /// Why the default is the likeliest value.
    pub why: &'static str,
    /// How sure the default is, tagged as the protocol notes tag their facts.
    pub evidence: Evidence,
    /// The protocol notes' section (`§3.7`).
    pub spec: &'static str,
    /// The generations a card shows it in (a value set on another generation's profile
    /// compiles and changes nothing).
    pub generations: &'static [Generation],
}

const BOTH: &[Generation] = &[Generation::First, Generation::Second];
const FIRST: &[Generation] = &[Generation::First];
/// The knobs of the My Number card (`card.kind: my_number`): no residence-card generation
/// shows them, so the residence variant generator never sets them.
pub const MY_NUMBER: &[Generation] = &[];

/// Every knob. Row order is the README's.
pub const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        path: "knobs.image_layout",
        values: &["exact", "full"],
        default: KnobDefault::Same("exact"),
        why: "SPEC1 gives 7 000 / 3 000 as maxima and pads the signed values to them, \
              which would mean nothing for full-length values; a deployed reader that stops \
              at the first 62 82 loses the tails of full-length images",
        evidence: Evidence::Inferred,
        spec: "§6.4, §7.1",
        generations: FIRST,
    },
    KnobSpec {
        path: "knobs.read_past_end",
        values: &["end_of_file_warning", "wrong_le", "success", "wrong_p1_p2"],
        default: KnobDefault::Same("end_of_file_warning"),
        why: "ISO 7816-4's answer to a read crossing the end of an EF (the bytes there are, \
              then 62 82); the others: 6C xx (available length), 90 00 with the short data, \
              6B 00 (wrong P1-P2)",
        evidence: Evidence::Unknown,
        spec: "§3.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.failed_verify_drops_session",
        values: &["false", "true"],
        default: KnobDefault::Same("false"),
        why: "no source says a failed VERIFY ends secure messaging, and no reader depends \
              on it",
        evidence: Evidence::Unknown,
        spec: "§3.8",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.cla_0c",
        values: &[
            "sm_not_supported",
            "class_not_supported",
            "incorrect_sm_data_objects",
        ],
        default: KnobDefault::Same("sm_not_supported"),
        why: "68 82 is the spec's word for secure messaging the card does not do, and CLA 0C \
              (header authenticated) is a kind this card does not do; the others: 6E 00 \
              (unknown class), 69 88 (no MAC where one is expected)",
        evidence: Evidence::Inferred,
        spec: "§3.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.unknown_cla",
        values: &["class_not_supported", "instruction_not_supported"],
        default: KnobDefault::Same("class_not_supported"),
        why: "ISO 7816-4's 6E 00 for a class the card does not know; 6D 00 from a card that \
              looks commands up by CLA and INS together",
        evidence: Evidence::Inferred,
        spec: "§3.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.sm_on_plain_commands",
        values: &[
            "sm_not_supported",
            "incorrect_sm_data_objects",
            "class_not_supported",
            "run_as_plain",
        ],
        default: KnobDefault::Same("sm_not_supported"),
        why: "SELECT, GET CHALLENGE and MUTUAL AUTHENTICATE are never protected, and 68 82 \
              says SM is not supported for the command; the others: 69 88, 6E 00, or the \
              card ignores the SM bit and carries the command out",
        evidence: Evidence::Inferred,
        spec: "§3.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.plain_verify",
        values: &["incorrect_sm_data_objects", "security_status_not_satisfied"],
        default: KnobDefault::Same("incorrect_sm_data_objects"),
        why: "VERIFY takes the card number only inside DO 86, so a plain VERIFY lacks its SM \
              data objects (69 88); 69 82 from a card that checks the channel first",
        evidence: Evidence::Inferred,
        spec: "§3.4, §3.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.sm_read_short_le",
        values: &["wrong_le", "whole_answer"],
        default: KnobDefault::Same("wrong_le"),
        why: "ISO 7816-4: an answer never exceeds Ne, so a wrapped answer longer than the \
              APDU's Le gets 6C xx (short APDU, length fits) or 67 00; whole_answer: a card \
              that sizes its answer by DO 96 alone and sends it all",
        evidence: Evidence::Unknown,
        spec: "§3.6, §11.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.sm_read_length",
        values: &["as_asked", "to_end_of_file"],
        default: KnobDefault::Same("as_asked"),
        why: "ISO 7816-4 makes DO 96 the plaintext's Ne, and readers deployed for real \
              cards read DF1 in slices (96 02 01 00); to_end_of_file: a card that answers \
              the rest of the EF whatever DO 96 asks (only 96 02 00 00 is specified)",
        evidence: Evidence::Unknown,
        spec: "§3.6, §11.7",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.tlv_lengths",
        values: &["minimal", "long_form"],
        default: KnobDefault::Same("minimal"),
        why: "the specified EF sizes (73 bytes for generation 2's 53 printed-entry bytes, \
              342 for generation 1's address) leave room for minimal lengths only, beside the \
              specified DE 82 00 C8 (kept); long_form writes every length outside the MF \
              82 xx xx (a real card shows C1 01 31), each EF growing by the bytes added",
        evidence: Evidence::Unknown,
        spec: "§6.4",
        generations: BOTH,
    },
    KnobSpec {
        path: "knobs.trailing_fill",
        values: &["zeros", "ff", "none"],
        default: KnobDefault::Same("zeros"),
        why: "SPEC2 Appendix 2 shows 00 after generation 2's DF3 certificate [S], and the \
              same fill elsewhere is inferred; ff: erased memory; none: the EF is as long \
              as its TLVs",
        evidence: Evidence::Inferred,
        spec: "§6.4",
        generations: BOTH,
    },
    KnobSpec {
        path: "text_encoding",
        values: &["shift_jis", "utf8"],
        default: KnobDefault::Same("shift_jis"),
        why: "two of three public readers decode D4–D6 as cp932 first",
        evidence: Evidence::Unknown,
        spec: "§6.2",
        generations: FIRST,
    },
    KnobSpec {
        path: "face_layout",
        values: &["zero_filled", "zero_length", "omitted"],
        default: KnobDefault::Same("zero_filled"),
        why: "every other image is a zero-padded fixed area and the check code covers the \
              face padded to 3 000 bytes (applies only to a card without a face image)",
        evidence: Evidence::Unknown,
        spec: "§6.5",
        generations: BOTH,
    },
    KnobSpec {
        path: "signature.certificate_layout",
        values: &["padded", "exact"],
        default: KnobDefault::PerGeneration("padded", "exact"),
        why: "generation 1: DB is reported as a 1 200-byte zero-padded area; generation 2: \
              SPEC2 Appendix 2 shows DD at the certificate's length",
        evidence: Evidence::Inferred,
        spec: "§2.2, §2.3",
        generations: BOTH,
    },
    KnobSpec {
        path: "reader.get_data",
        values: &["true", "false"],
        default: KnobDefault::Same("true"),
        why: "PC/SC readers answer the pseudo-APDU FF CA themselves (PC/SC Part 3 \
              §3.2.2.1.3); false passes it to the card, which answers 6E 00",
        evidence: Evidence::Specified,
        spec: "§1",
        generations: BOTH,
    },
    KnobSpec {
        path: "reader.pupi",
        values: &["52 43 4C 42", "random"],
        default: KnobDefault::Same("52 43 4C 42"),
        why: "a fixed PUPI replays transcripts byte for byte; ISO 14443-3 lets a Type B \
              card draw a random PUPI per session (random: new at every power-up, from the \
              profile's seed, the same sequence on every run)",
        evidence: Evidence::Unknown,
        spec: "§1, §11.12",
        generations: BOTH,
    },
    // --- The My Number card (`card.kind: my_number`; spec notes: my-number-platform.md).
    KnobSpec {
        path: "platform.reselect_same_app",
        values: &["clears", "keeps"],
        default: KnobDefault::Same("clears"),
        why: "OpenSC's jpki_logout logs out by re-selecting the JPKI AP, so a card that keeps \
              the PIN state would stay logged in for it; MC measured that some cards do not \
              reliably clear it (open question 6)",
        evidence: Evidence::Unknown,
        spec: "MN B1",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.mf_select",
        values: &["no_op_once_selected", "always_refused"],
        default: KnobDefault::Same("no_op_once_selected"),
        why: "MC measured 00 A4 00 00 answering 6A 86 after reset and 90 00 (changing \
              nothing) once an application is selected",
        evidence: Evidence::RealCard,
        spec: "MN B7",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.blocked_pin_status",
        values: &["reference_data_not_usable", "authentication_method_blocked"],
        default: KnobDefault::Same("reference_data_not_usable"),
        why: "MC measured 69 84 on every VERIFY after the exhausting 63 C0; ISO's 69 83 was \
              never reported for this card (open question 9)",
        evidence: Evidence::RealCard,
        spec: "MN B4",
        generations: MY_NUMBER,
    },
    // --- The My Number card's text-support AP (issue 15 item 1; spec notes B4, B5, A5).
    KnobSpec {
        path: "platform.check_number_tries",
        values: &["ten", "three"],
        default: KnobDefault::Same("ten"),
        why: "MC implies ten consecutive wrong tries for 照合番号B (B4, marked [R?]); no \
              source gives 照合番号A's, which takes the same here; three is the 4-digit PINs' \
              count (open question 8)",
        evidence: Evidence::Unknown,
        spec: "MN B4",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.sm_without_session",
        values: &["security_status_not_satisfied", "incorrect_sm_data_objects"],
        default: KnobDefault::Same("security_status_not_satisfied"),
        why: "no source measured an SM command (CLA 08) on the text AP before SET SESSION \
              KEY; a missing session key is a missing security state (69 82), the other \
              reading is that its DO cannot be opened (69 88)",
        evidence: Evidence::Inferred,
        spec: "MN A5",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.text_failed_key_delivery",
        values: &["drops_session", "keeps_session"],
        default: KnobDefault::Same("drops_session"),
        why: "no source sent a failing SET SESSION KEY while a session was open; ending it \
              follows the platform's rule that an SM error destroys the session (A5), keeping \
              it is the other reading",
        evidence: Evidence::Inferred,
        spec: "MN A4",
        generations: MY_NUMBER,
    },
    // --- The specified residence card's 在留AP (issue 16; spec notes Part A, open questions).
    KnobSpec {
        path: "platform.residence_oaep_digest",
        values: &["sha256", "sha1"],
        default: KnobDefault::Same("sha256"),
        why: "SPEC3 names RSA-OAEP per PKCS#1 v2.2 without the hash; the same platform's text AP \
              uses SHA-256 with MGF1-SHA-256 and an empty label (MC, reproduced); SHA-1 is \
              PKCS#1's default (open question 1)",
        evidence: Evidence::Unknown,
        spec: "MN A4",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_key_template",
        values: &["encryption_key", "encryption_and_mac_key"],
        default: KnobDefault::Same("encryption_key"),
        why: "the text AP takes A0 22 80 20 <32> and answers 6A 80 to the form with a MAC key 81; \
              SPEC3 naming AES-CMAC suggests A0 44 80 20 <32> 81 20 <32> (open question 1); \
              under residence_sm: cmac the card takes the MAC-key form whatever this says",
        evidence: Evidence::Unknown,
        spec: "MN A4",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_sm",
        values: &["counter_iv", "cmac"],
        default: KnobDefault::Same("counter_iv"),
        why: "the counter-IV SM with encryption only (CLA 08, DO 86) is the platform's measured SM \
              (text AP); SPEC3's AES-CMAC may instead mean ISO SM with CLA 0C, DOs 87/97/99 \
              and an 8-byte CMAC 8E over the counter block, header and DOs (open question 2)",
        evidence: Evidence::Unknown,
        spec: "MN A5",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_le_do",
        values: &["two_byte", "three_byte"],
        default: KnobDefault::Same("two_byte"),
        why: "generation 2 reads with 96 02 Lh Ll and the specified card carries generation 2's \
              data; the text AP's JICSAP form is 96 03 00 Lh Ll (open question 3)",
        evidence: Evidence::Unknown,
        spec: "MN A5",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_verify_p2",
        values: &["gen2_86", "sfi81"],
        default: KnobDefault::Same("gen2_86"),
        why: "generation 2's VERIFY of the card number is 08 20 00 86; the text AP names its keys \
              80|SFI (open question 4)",
        evidence: Evidence::Inferred,
        spec: "MN A5",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_wrong_number",
        values: &["verification_failed", "tries_left"],
        default: KnobDefault::Same("verification_failed"),
        why: "generation 2 answers a wrong card number 63 00 with no counter; the platform's PINs \
              count down 63 Cx and block (here after ten tries, then 69 84); LJ only reports \
              a wrong number (open question 4)",
        evidence: Evidence::Unknown,
        spec: "MN A6",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_df_select",
        values: &["plain", "secure_messaging"],
        default: KnobDefault::Same("plain"),
        why: "SPEC3 (via RN) lists only VERIFY and READ BINARY as SM commands; on the text AP SELECT \
              of an EF may be SM (open question 3)",
        evidence: Evidence::Inferred,
        spec: "MN A3",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_common_data",
        values: &["ap_level", "also_after_df"],
        default: KnobDefault::Same("ap_level"),
        why: "LJ reads C0/C1 directly under the 在留AP before key delivery because reaching them \
              again needs a re-select (its comment on SPEC3 4.2.3); P1 8B/8A as in generation 2 \
              (open question 5)",
        evidence: Evidence::Inferred,
        spec: "MN A2",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "platform.residence_delivery_key_format",
        values: &["raw_modulus", "subject_public_key_info", "platform_tlv"],
        default: KnobDefault::Same("raw_modulus"),
        why: "the format of MoJ's keys_smrsapub_001.bin is not public (open question 1); its name \
              and size suggest bare key bytes; the profile hands a checker the TEST public key \
              in this format (the card itself never shows it)",
        evidence: Evidence::Unknown,
        spec: "MN A4",
        generations: MY_NUMBER,
    },
    KnobSpec {
        path: "reader.atr",
        values: &[
            "3B E0 00 FF 81 31 FE 45 14",
            "3B 88 80 01 00 00 00 00 00 81 81 00 09",
        ],
        default: KnobDefault::Same("3B E0 00 FF 81 31 FE 45 14"),
        why: "the contact ATR in OpenSC's JPKI table (TCK checks); the ATR a PC/SC reader \
              synthesises for the card over NFC is documented nowhere (open question 7), so \
              the PC/SC Part 3 Type B form stands for it, and OpenSC then finds the card by \
              SELECT",
        evidence: Evidence::Unknown,
        spec: "MN B7",
        generations: MY_NUMBER,
    },
];

/// The path prefix of the 在留AP's knobs ([`KnobSpec::is_residence_ap`]).
pub const RESIDENCE_AP_PREFIX: &str = "platform.residence_";

/// The knob at `path`.
pub fn knob(path: &str) -> Option<&'static KnobSpec> {
    KNOBS.iter().find(|k| k.path == path)
}

impl KnobSpec {
    /// True when a card of `generation` shows this knob.
    pub fn applies_to(&self, generation: Generation) -> bool {
        self.generations.contains(&generation)
    }

    /// True for a knob of the My Number card (no residence generation shows it).
    pub fn is_my_number(&self) -> bool {
        self.generations.is_empty()
    }

    /// True for a knob of the specified card's 在留AP (`platform.residence_*`): only a
    /// card of [`ChipKind::SpecifiedResidence`] shows it.
    pub fn is_residence_ap(&self) -> bool {
        self.path.starts_with(RESIDENCE_AP_PREFIX)
    }

    /// True when a profile of `kind` (and, for a residence card, `generation`) shows this
    /// knob: a residence card the knobs of its generation; a My Number card the platform's
    /// knobs but the 在留AP's, which it has no 在留AP to show; a specified card every knob
    /// of the platform, the 在留AP's included (it is a My Number card with the 在留AP). A
    /// value set on a profile this says `false` for compiles and changes nothing.
    pub fn applies_to_profile(&self, kind: ChipKind, generation: Generation) -> bool {
        match kind {
            ChipKind::Residence => self.applies_to(generation),
            ChipKind::MyNumber => self.is_my_number() && !self.is_residence_ap(),
            ChipKind::SpecifiedResidence => self.is_my_number(),
        }
    }

    /// The YAML scalar of `value` (`true` is a boolean, `exact` a string), or `None` for a
    /// value the knob does not take.
    pub fn scalar(&self, value: &str) -> Option<Value> {
        if !self.values.contains(&value) {
            return None;
        }
        Some(match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        })
    }

    /// The mapping that sets this knob to `value`, nested along the path
    /// (`{knobs: {read_past_end: wrong_le}}`); `None` for a value the knob does not take.
    pub fn setting(&self, value: &str) -> Option<Mapping> {
        let mut node = self.scalar(value)?;
        let mut keys: Vec<&str> = self.path.split('.').collect();
        let last = keys.pop()?;
        let mut map = Mapping::new();
        map.insert(Value::String(last.to_owned()), node);
        while let Some(key) = keys.pop() {
            node = Value::Mapping(map);
            map = Mapping::new();
            map.insert(Value::String(key.to_owned()), node);
        }
        Some(map)
    }

    /// A whole profile overlay: `extends: <extends>` and this knob set to `value`, as YAML
    /// text; `None` for a value the knob does not take. `extends` is relative to where the
    /// overlay is written, as in any profile.
    pub fn overlay(&self, extends: &str, value: &str) -> Option<String> {
        let mut doc = Mapping::new();
        doc.insert(
            Value::String("extends".into()),
            Value::String(extends.into()),
        );
        for (k, v) in self.setting(value)? {
            doc.insert(k, v);
        }
        serde_yaml_ng::to_string(&Value::Mapping(doc)).ok()
    }
}

/// The README's knob table, generated from [`KNOBS`] (Markdown).
pub fn readme_table() -> String {
    let mut out = String::from(
        "| knob (YAML path) | values | default | evidence | spec | generations | why the default |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for k in KNOBS {
        let values: Vec<String> = k.values.iter().map(|v| format!("`{v}`")).collect();
        let default = match k.default {
            KnobDefault::Same(v) => format!("`{v}`"),
            KnobDefault::PerGeneration(a, b) => format!("`{a}` (gen 1), `{b}` (gen 2)"),
        };
        let mut generations: Vec<String> = k
            .generations
            .iter()
            .map(|g| g.number().to_string())
            .collect();
        if k.is_my_number() {
            generations.push("My Number".to_owned());
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            k.path,
            values.join(", "),
            default,
            k.evidence.tag(),
            k.spec,
            generations.join(", "),
            k.why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_is_well_formed() {
        for (i, k) in KNOBS.iter().enumerate() {
            assert!(k.values.len() >= 2, "{}", k.path);
            for g in k.generations {
                assert!(
                    k.values.contains(&k.default.for_generation(*g)),
                    "{}",
                    k.path
                );
            }
            if let KnobDefault::Same(v) = k.default {
                assert!(k.values.contains(&v), "{}", k.path);
            }
            assert!(
                !KNOBS[i + 1..].iter().any(|o| o.path == k.path),
                "{}",
                k.path
            );
            assert_eq!(knob(k.path), Some(k));
            assert!(k.scalar("no such value").is_none());
        }
    }

    #[test]
    fn each_profile_kind_shows_its_own_knobs() {
        use ChipKind::{MyNumber, Residence, SpecifiedResidence};
        let shown = |kind, generation| {
            KNOBS
                .iter()
                .filter(|k| k.applies_to_profile(kind, generation))
                .map(|k| k.path)
                .collect::<Vec<_>>()
        };
        // A residence card: exactly the knobs of its generation, as before.
        for generation in [Generation::First, Generation::Second] {
            let residence = shown(Residence, generation);
            assert!(!residence.is_empty());
            assert!(
                residence
                    .iter()
                    .all(|p| knob(p).unwrap().applies_to(generation))
            );
            assert!(!residence.iter().any(|p| p.starts_with("platform.")));
        }
        // The 在留AP's knobs: on a specified card, never on a plain My Number card.
        let specified = shown(SpecifiedResidence, Generation::Second);
        let plain = shown(MyNumber, Generation::Second);
        let residence_ap: Vec<_> = KNOBS
            .iter()
            .filter(|k| k.is_residence_ap())
            .map(|k| k.path)
            .collect();
        assert!(residence_ap.len() >= 8, "{residence_ap:?}");
        assert!(residence_ap.iter().all(|p| specified.contains(p)));
        assert!(!residence_ap.iter().any(|p| plain.contains(p)));
        assert!(plain.contains(&"platform.reselect_same_app"));
        assert!(specified.contains(&"platform.reselect_same_app"));
        assert_eq!(specified.len(), plain.len() + residence_ap.len());
    }

    #[test]
    fn overlays_nest_the_path_and_type_the_scalars() {
        let k = knob("knobs.failed_verify_drops_session").unwrap();
        assert_eq!(
            k.overlay("../valid/gen1-residence.yaml", "true").unwrap(),
            "extends: ../valid/gen1-residence.yaml\nknobs:\n  failed_verify_drops_session: true\n"
        );
        let k = knob("text_encoding").unwrap();
        assert_eq!(
            k.overlay("a.yaml", "utf8").unwrap(),
            "extends: a.yaml\ntext_encoding: utf8\n"
        );
        assert!(k.overlay("a.yaml", "latin1").is_none());
    }
}
