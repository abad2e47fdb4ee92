//! What the reader answers itself, before the card sees an APDU: the PC/SC Part 3
//! pseudo-APDU GET DATA (`FF CA`), which a PC/SC reader driver answers with the card's
//! UID/PUPI or historical bytes (PC/SC Part 3 §3.2.2.1.3), and the ATR it presents.
//!
//! The same layer runs in process (the [`Channel`](super::Channel) of a
//! [`SimCard`](crate::fault::SimCard)) and behind vpcd (its `VirtualCard` implementation),
//! so a checker sees the same answers both ways; the exchanges pass through the
//! [`Tap`](super::Tap) like any other, since a checker sent them.

use serde::Deserialize;

use super::vpcd::DEFAULT_ATR;

/// What the reader answers for the card (profile section `reader:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Answer `FF CA` in the reader (`true`, what PC/SC readers do); `false` passes it to
    /// the card, which refuses CLA `FF` with `6E 00`.
    pub get_data: bool,
    /// The PUPI (ISO 14443-3 Type B identifier) `FF CA 00 00` answers.
    pub pupi: Pupi,
    /// The ATR the reader presents (default: the PC/SC Part 3 Type B form, [`DEFAULT_ATR`]).
    pub atr: Vec<u8>,
}

/// The PUPI when a profile names none: fixed, so transcripts replay byte for byte.
pub const DEFAULT_PUPI: [u8; 4] = [0x52, 0x43, 0x4C, 0x42];

/// A card's PUPI: fixed, or drawn anew at every power-up as some Type B cards do (ISO
/// 14443-3 allows a random PUPI per session; `reader.pupi: random`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pupi {
    /// The same four bytes at every power-up.
    Fixed([u8; 4]),
    /// Four bytes per power-up, derived from the profile's seed and the power-up count:
    /// different at each power-up, the same sequence on every run of the profile.
    Random {
        /// The profile's `seed`.
        seed: u64,
    },
}

impl Pupi {
    /// The PUPI the card shows at power-up number `power_up` (0 = the first).
    pub fn at(self, power_up: u64) -> [u8; 4] {
        match self {
            Pupi::Fixed(pupi) => pupi,
            Pupi::Random { seed } => {
                use sha2::{Digest, Sha256};
                let mut hash = Sha256::new();
                hash.update(b"rclab PUPI");
                hash.update(seed.to_be_bytes());
                hash.update(power_up.to_be_bytes());
                let digest = hash.finalize();
                [digest[0], digest[1], digest[2], digest[3]]
            }
        }
    }
}

impl Default for ReaderConfig {
    fn default() -> ReaderConfig {
        ReaderConfig {
            get_data: true,
            pupi: Pupi::Fixed(DEFAULT_PUPI),
            atr: DEFAULT_ATR.to_vec(),
        }
    }
}

/// The profile's `reader:` section as written; every field optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderDoc {
    /// `true` (default): the reader answers `FF CA`; `false`: the card gets it.
    pub get_data: Option<bool>,
    /// Four bytes, hex (`52 43 4C 42`), or `random` (new at every power-up, from `seed`).
    pub pupi: Option<PupiDoc>,
    /// The ATR, hex: at least `TS T0`, at most 33 bytes (ISO 7816-3).
    pub atr: Option<crate::fault::HexBytes>,
}

/// `reader.pupi` as written: hex bytes or the word `random`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum PupiDoc {
    /// `random`.
    Random,
    /// Hex bytes (their count is checked when the section is compiled).
    Bytes(Vec<u8>),
}

impl TryFrom<String> for PupiDoc {
    type Error = String;
    fn try_from(text: String) -> Result<PupiDoc, String> {
        if text.trim() == "random" {
            return Ok(PupiDoc::Random);
        }
        crate::fault::HexBytes::try_from(text)
            .map(|bytes| PupiDoc::Bytes(bytes.0))
            .map_err(|e| format!("{e} (a PUPI is 4 hex bytes, or `random`)"))
    }
}

impl ReaderDoc {
    /// The configuration this section gives, or what is wrong with which field. `seed`
    /// is the profile's, which a random PUPI is drawn from.
    pub fn config(&self, seed: u64) -> Result<ReaderConfig, (&'static str, String)> {
        let mut config = ReaderConfig::default();
        if let Some(on) = self.get_data {
            config.get_data = on;
        }
        match &self.pupi {
            None => {}
            Some(PupiDoc::Random) => config.pupi = Pupi::Random { seed },
            Some(PupiDoc::Bytes(bytes)) => {
                let fixed = bytes.as_slice().try_into().map_err(|_| {
                    (
                        "reader.pupi",
                        format!("a PUPI is 4 bytes, got {}", bytes.len()),
                    )
                })?;
                config.pupi = Pupi::Fixed(fixed);
            }
        }
        if let Some(atr) = &self.atr {
            if !(2..=33).contains(&atr.0.len()) || !matches!(atr.0[0], 0x3B | 0x3F) {
                return Err((
                    "reader.atr",
                    format!(
                        "an ATR is 2 to 33 bytes starting 3B or 3F, got {} bytes",
                        atr.0.len()
                    ),
                ));
            }
            config.atr = atr.0.clone();
        }
        Ok(config)
    }
}

/// The historical bytes of `atr` (ISO 7816-3: after TS, T0 and the interface bytes T0 and
/// each TDi announce); as many as are there when the ATR is shorter than T0 says.
pub fn historical_bytes(atr: &[u8]) -> &[u8] {
    let Some(&t0) = atr.get(1) else {
        return &[];
    };
    let count = usize::from(t0 & 0x0F);
    let mut pos = 2;
    let mut y = t0 >> 4;
    loop {
        let present = (y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1);
        pos += usize::from(present);
        if y & 0x8 == 0 {
            break;
        }
        // TDi: the next indicator byte.
        let Some(&td) = atr.get(pos) else {
            return &[];
        };
        pos += 1;
        y = td >> 4;
    }
    let start = pos.min(atr.len());
    &atr[start..(start + count).min(atr.len())]
}

/// The reader's answer to `apdu`, or `None` when the card is to get it (anything but
/// `FF CA`, or `get_data: false`); `power_up` counts the card's power-ups (0 = the first),
/// which a random PUPI changes with.
///
/// PC/SC Part 3 §3.2.2.1.3 (GET DATA): P1 `00` the UID (here the PUPI), P1 `01` the
/// historical bytes, P2 `00`, Le `00` for the whole. The status words follow the public
/// PC/SC drivers that answer this pseudo-APDU themselves (nfc-tools/ifdnfc
/// `src/ifd-nfc.c` `IFDHTransmitToICC`, and a netlink driver modelled on ifdnfc-nci), which
/// agree: a command that is not exactly `FF CA P1 P2 Le` gets `67 00` (wrong length);
/// another P1 `6A 81` (function not supported; we also refuse a P2 other than `00`, which
/// those drivers ignore); an Le shorter than the data `6C xx` with the data's length; an
/// Le longer than the data the data **padded with `00` to Le** and `62 82` (end of data
/// reached before Le bytes); an Le of `00` or of the data's length the data and `90 00`.
pub fn answer(config: &ReaderConfig, power_up: u64, apdu: &[u8]) -> Option<Vec<u8>> {
    if !config.get_data || apdu.len() < 4 || apdu[0] != 0xFF || apdu[1] != 0xCA {
        return None;
    }
    // GET DATA is `FF CA P1 P2 Le`: no command data, and Le present.
    let &[_, _, p1, p2, le] = apdu else {
        return Some(vec![0x67, 0x00]);
    };
    let pupi = config.pupi.at(power_up);
    let data: &[u8] = match (p1, p2) {
        (0x00, 0x00) => &pupi,
        (0x01, 0x00) => historical_bytes(&config.atr),
        _ => return Some(vec![0x6A, 0x81]),
    };
    let le = match usize::from(le) {
        0 => data.len(),
        n => n,
    };
    if le < data.len() {
        // Data here is at most 15 bytes, so the length fits.
        return Some(vec![0x6C, u8::try_from(data.len()).unwrap_or(0)]);
    }
    let mut out = data.to_vec();
    out.resize(le, 0x00);
    let status = if le > data.len() {
        [0x62, 0x82]
    } else {
        [0x90, 0x00]
    };
    out.extend_from_slice(&status);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn historical_bytes_of_the_default_atr_are_atqb_data_protocol_info_and_mbli() {
        assert_eq!(historical_bytes(&DEFAULT_ATR), h("00000000 008181 00"));
        assert_eq!(historical_bytes(&h("3B")), b"");
        assert_eq!(historical_bytes(&h("3B 88 80")), b"");
        assert_eq!(historical_bytes(&h("3B 02 41 42")), b"AB");
        assert_eq!(historical_bytes(&h("3B 05 41")), b"A");
        // TA1 TB1 TC1 present, no TD1.
        assert_eq!(historical_bytes(&h("3B 71 11 22 33 99")), [0x99]);
    }

    #[test]
    fn ff_ca_answers_uid_and_historical_bytes_per_pcsc_part_3() {
        let c = ReaderConfig::default();
        assert_eq!(answer(&c, 0, &h("FFCA000000")), Some(h("52434C42 9000")));
        assert_eq!(answer(&c, 0, &h("FFCA000004")), Some(h("52434C42 9000")));
        assert_eq!(answer(&c, 0, &h("FFCA000002")), Some(h("6C04")));
        // As nfc-tools/ifdnfc: Le past the data pads it with zeros, then 62 82; no Le is
        // a wrong length.
        assert_eq!(
            answer(&c, 0, &h("FFCA000008")),
            Some(h("52434C42 00000000 6282"))
        );
        assert_eq!(answer(&c, 0, &h("FFCA0000")), Some(h("6700")));
        assert_eq!(
            answer(&c, 0, &h("FFCA010000")),
            Some(h("00000000 008181 00 9000"))
        );
        assert_eq!(answer(&c, 0, &h("FFCA020000")), Some(h("6A81")));
        assert_eq!(answer(&c, 0, &h("FFCA000100")), Some(h("6A81")));
        assert_eq!(answer(&c, 0, &h("FFCA00000100")), Some(h("6700")));
        assert_eq!(answer(&c, 0, &h("FFCA00")), None);
        assert_eq!(answer(&c, 0, &h("00A4040C")), None);
        let off = ReaderConfig {
            get_data: false,
            ..ReaderConfig::default()
        };
        assert_eq!(answer(&off, 0, &h("FFCA000000")), None);
    }

    #[test]
    fn reader_section_errors_name_the_field() {
        let doc: ReaderDoc = serde_yaml_ng::from_str("pupi: \"01 02 03\"").unwrap();
        assert_eq!(doc.config(0).unwrap_err().0, "reader.pupi");
        let doc: ReaderDoc = serde_yaml_ng::from_str("atr: \"00 01\"").unwrap();
        assert_eq!(doc.config(0).unwrap_err().0, "reader.atr");
        let doc: ReaderDoc =
            serde_yaml_ng::from_str("pupi: \"01 02 03 04\"\nget_data: false").unwrap();
        let c = doc.config(0).unwrap();
        assert_eq!((c.pupi, c.get_data), (Pupi::Fixed([1, 2, 3, 4]), false));
        let doc: ReaderDoc = serde_yaml_ng::from_str("pupi: random").unwrap();
        assert_eq!(doc.config(7).unwrap().pupi, Pupi::Random { seed: 7 });
        let bad = serde_yaml_ng::from_str::<ReaderDoc>("pupi: randomly").unwrap_err();
        assert!(bad.to_string().contains("`random`"), "{bad}");
    }

    #[test]
    fn a_random_pupi_changes_at_each_power_up_and_replays_from_the_seed() {
        let pupi = Pupi::Random { seed: 42 };
        let sequence: Vec<[u8; 4]> = (0..8).map(|n| pupi.at(n)).collect();
        for (i, a) in sequence.iter().enumerate() {
            assert!(!sequence[i + 1..].contains(a), "{sequence:?}");
        }
        assert_eq!(sequence, (0..8).map(|n| pupi.at(n)).collect::<Vec<_>>());
        assert_ne!(Pupi::Random { seed: 43 }.at(0), pupi.at(0));
        let c = ReaderConfig {
            pupi,
            ..ReaderConfig::default()
        };
        let first = answer(&c, 0, &h("FFCA000000")).unwrap();
        assert_eq!(first[..4], sequence[0]);
        assert_eq!(answer(&c, 1, &h("FFCA000000")).unwrap()[..4], sequence[1]);
    }
}
