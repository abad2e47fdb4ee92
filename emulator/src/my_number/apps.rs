//! The My Number card as data: ONE table of its applications (spec notes B1), and per
//! application its elementary files (B2, B5, B6) and its secrets — PINs and private keys
//! (B2, B4). The profile compiler fills the files the table names, and the engine
//! ([`super::engine`]) reads only this table and the compiled image: selecting an
//! application, an EF, who may read it, which PIN opens it, how many tries a PIN has.
//!
//! Applications whose data another module builds (the text-support AP and the surface AP)
//! have their rows here; their files are filled when those builders are wired in (their
//! table rows list the EFs with [`Content::Supplied`], which the compiler leaves out until
//! then, so selecting them works and reading their files answers `6A 82`).

/// The Issuer Security Domain (GlobalPlatform card manager): the power-on state.
/// Selecting it gives the clean "MF" state and clears every application's security status.
pub const ISD_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00];

/// One application of the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum App {
    /// 公的個人認証AP: the JPKI authentication and signature key pairs and certificates.
    Jpki,
    /// 券面事項入力補助AP: individual number and the four basic attributes, as text.
    TextSupport,
    /// 券面事項確認AP: the card face (images, photo) and its signature.
    Surface,
    /// 共通カードAP.
    Common,
    /// 住基AP (resident registry).
    Juki,
}

/// What an EF holds (the profile compiler builds it from the profile's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// JPKI `0006`: PKCS#11 `CK_TOKEN_INFO`, 160 bytes, 32-bit big-endian fields.
    TokenInfo,
    /// JPKI `0008`: 3 bytes, `8F 8F 00` when both certificates are present.
    CertificateMap,
    /// JPKI `000A`: the authentication (利用者証明用) certificate, DER.
    AuthCertificate,
    /// JPKI `000B`: the authentication CA certificate, DER.
    AuthCaCertificate,
    /// JPKI `0001`: the signature (署名用) certificate, DER; absent on an under-15 card.
    SignCertificate,
    /// JPKI `0002`: the signature CA certificate, DER.
    SignCaCertificate,
    /// Built by the application's own module (text-support and surface APs), not yet wired:
    /// the EF is left out of the image until its builder supplies it.
    Supplied,
}

/// Who may read an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAccess {
    /// Anyone, once the application is selected.
    Free,
    /// Only after the PIN (key EF) with this FID was verified in the current selection.
    AfterPin(u16),
    /// After any one of these PINs (the text AP's access matrix, B5: its PIN or one
    /// 照合番号 opens a file).
    AfterAnyOf(&'static [u16]),
}

impl FileAccess {
    /// True when a selection that verified the PINs `verified` may read the file.
    pub fn opened_by(self, verified: &[u16]) -> bool {
        match self {
            FileAccess::Free => true,
            FileAccess::AfterPin(pin) => verified.contains(&pin),
            FileAccess::AfterAnyOf(pins) => pins.iter().any(|p| verified.contains(p)),
        }
    }

    /// The PINs that open the file (empty: free).
    pub fn pins(self) -> Vec<u16> {
        match self {
            FileAccess::Free => Vec::new(),
            FileAccess::AfterPin(pin) => vec![pin],
            FileAccess::AfterAnyOf(pins) => pins.to_vec(),
        }
    }
}

/// How large an EF is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeRule {
    /// Exactly this many bytes (the compiler refuses anything else).
    Fixed(usize),
    /// As long as its content (a DER certificate, at most [`MAX_FILE`] bytes).
    AsBuilt,
}

/// Longest EF content the compiler accepts (the READ BINARY offset form reaches `7FFF`).
pub const MAX_FILE: usize = 0x8000;

/// One elementary file of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// File identifier, for `00 A4 02 0C 02 <FID>`; its low 5 bits are the SFI.
    pub fid: u16,
    /// Name used in errors and traces.
    pub name: &'static str,
    /// What it holds.
    pub content: Content,
    /// Who may read it.
    pub access: FileAccess,
    /// Its size rule.
    pub size: SizeRule,
}

/// What a PIN may be (checked on the profile's value; the card itself only compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinFormat {
    /// Exactly this many ASCII digits.
    Digits(usize),
    /// Between `min` and `max` upper-case letters A–Z and digits 0–9.
    UpperAlphanumeric {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
}

impl PinFormat {
    /// True when `pin` has this format.
    pub fn accepts(self, pin: &str) -> bool {
        match self {
            PinFormat::Digits(n) => pin.len() == n && pin.bytes().all(|b| b.is_ascii_digit()),
            PinFormat::UpperAlphanumeric { min, max } => {
                (min..=max).contains(&pin.len())
                    && pin
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
        }
    }

    /// The format in words, for profile errors.
    pub fn describe(self) -> String {
        match self {
            PinFormat::Digits(n) => format!("exactly {n} digits"),
            PinFormat::UpperAlphanumeric { min, max } => {
                format!("{min} to {max} upper-case letters A-Z and digits 0-9")
            }
        }
    }
}

/// The state a secret is delivered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    /// Usable: the profile sets its value and tries.
    Issued,
    /// Delivered blocked (`63 C0` / `69 84` from the start), like the text AP's key `0012`.
    Blocked,
}

/// One key EF: a PIN the card verifies, or a private key a PIN unlocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// A reference value for VERIFY.
    Pin {
        /// What the profile's value must look like.
        format: PinFormat,
        /// Consecutive wrong tries before it blocks.
        max_tries: u8,
        /// How it is delivered.
        initial: Initial,
    },
    /// An RSA-2048 private key for COMPUTE DIGITAL SIGNATURE, usable after `pin`.
    PrivateKey {
        /// FID of the PIN that unlocks it.
        pin: u16,
    },
}

/// What a secret is for: where the profile sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    /// JPKI `0018`: 利用者証明用 PIN.
    AuthPin,
    /// JPKI `001B`: 署名用パスワード.
    SignPassword,
    /// JPKI `0017`: the authentication private key.
    AuthKey,
    /// JPKI `001A`: the signature private key.
    SignKey,
    /// Text AP `0011`: the 券面事項入力補助用 PIN (`text_ap.pin`).
    TextPin,
    /// Text AP `0014`: 照合番号A, the individual number (`text_ap.individual_number`).
    CheckNumberA,
    /// Text AP `0015`: 照合番号B, birth date (和暦 YYMMDD) ‖ expiry year ‖ security code.
    CheckNumberB,
    /// A secret of an application whose module is not wired yet (its value is not set by
    /// profiles; it stays blocked).
    Unset,
}

/// One key EF of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretRow {
    /// File identifier (SELECT by FID; SFI = low 5 bits for the `80|SFI` P2 forms).
    pub fid: u16,
    /// Name used in errors and traces.
    pub name: &'static str,
    /// What it is for.
    pub secret: Secret,
    /// PIN or private key.
    pub kind: SecretKind,
}

/// One application: its AID, its files and its secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppRow {
    /// Which application.
    pub app: App,
    /// Its AID (`00 A4 04 0C 0A <AID>`).
    pub aid: &'static [u8],
    /// Name used in traces and errors.
    pub name: &'static str,
    /// Its elementary files.
    pub files: &'static [FileRow],
    /// Its PINs and keys.
    pub secrets: &'static [SecretRow],
}

const fn file(
    fid: u16,
    name: &'static str,
    content: Content,
    access: FileAccess,
    size: SizeRule,
) -> FileRow {
    FileRow {
        fid,
        name,
        content,
        access,
        size,
    }
}

const fn pin(
    fid: u16,
    name: &'static str,
    secret: Secret,
    format: PinFormat,
    max_tries: u8,
    initial: Initial,
) -> SecretRow {
    SecretRow {
        fid,
        name,
        secret,
        kind: SecretKind::Pin {
            format,
            max_tries,
            initial,
        },
    }
}

const fn key(fid: u16, name: &'static str, secret: Secret, pin: u16) -> SecretRow {
    SecretRow {
        fid,
        name,
        secret,
        kind: SecretKind::PrivateKey { pin },
    }
}

/// JPKI `0018`: the authentication PIN's FID.
pub const JPKI_AUTH_PIN: u16 = 0x0018;
/// JPKI `001B`: the signature password's FID.
pub const JPKI_SIGN_PASSWORD: u16 = 0x001B;
/// The text-support AP's AID (B1).
pub const TEXT_AP_AID: &[u8] = &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
/// Text AP `0011`: the PIN; presented in clear, it also opens SET SESSION KEY (B5).
pub const TEXT_PIN: u16 = 0x0011;
/// Text AP `0014`: 照合番号A.
pub const CHECK_NUMBER_A: u16 = 0x0014;
/// Text AP `0015`: 照合番号B.
pub const CHECK_NUMBER_B: u16 = 0x0015;

use Content::*;
use FileAccess::*;
use SizeRule::*;

/// The applications of a My Number card (B1), in the order of the priorities.
pub static APPS: &[AppRow] = &[
    AppRow {
        app: App::Jpki,
        aid: &[0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01],
        name: "JPKI AP",
        files: &[
            file(
                0x0001,
                "JPKI/0001 signature certificate",
                SignCertificate,
                AfterPin(JPKI_SIGN_PASSWORD),
                AsBuilt,
            ),
            file(
                0x0002,
                "JPKI/0002 signature CA certificate",
                SignCaCertificate,
                Free,
                AsBuilt,
            ),
            file(0x0006, "JPKI/0006 token info", TokenInfo, Free, Fixed(160)),
            file(
                0x0008,
                "JPKI/0008 certificate map",
                CertificateMap,
                Free,
                Fixed(3),
            ),
            file(
                0x000A,
                "JPKI/000A authentication certificate",
                AuthCertificate,
                Free,
                AsBuilt,
            ),
            file(
                0x000B,
                "JPKI/000B authentication CA certificate",
                AuthCaCertificate,
                Free,
                AsBuilt,
            ),
        ],
        secrets: &[
            key(
                0x0017,
                "JPKI/0017 authentication key",
                Secret::AuthKey,
                JPKI_AUTH_PIN,
            ),
            pin(
                JPKI_AUTH_PIN,
                "JPKI/0018 authentication PIN",
                Secret::AuthPin,
                PinFormat::Digits(4),
                3,
                Initial::Issued,
            ),
            key(
                0x001A,
                "JPKI/001A signature key",
                Secret::SignKey,
                JPKI_SIGN_PASSWORD,
            ),
            pin(
                JPKI_SIGN_PASSWORD,
                "JPKI/001B signature password",
                Secret::SignPassword,
                PinFormat::UpperAlphanumeric { min: 6, max: 16 },
                5,
                Initial::Issued,
            ),
        ],
    },
    AppRow {
        app: App::TextSupport,
        aid: TEXT_AP_AID,
        name: "text-support AP",
        // B5's measured access matrix: the PIN opens everything; 照合番号A the number
        // (and 0003/0006/0007), not the attributes; 照合番号B the attributes only.
        files: &[
            file(
                0x0001,
                "TEXT/0001 individual number",
                Supplied,
                AfterAnyOf(&[TEXT_PIN, CHECK_NUMBER_A]),
                Fixed(17),
            ),
            file(
                0x0002,
                "TEXT/0002 basic four attributes",
                Supplied,
                AfterAnyOf(&[TEXT_PIN, CHECK_NUMBER_B]),
                AsBuilt,
            ),
            file(
                0x0003,
                "TEXT/0003 integrity record",
                Supplied,
                AfterAnyOf(&[TEXT_PIN, CHECK_NUMBER_A]),
                AsBuilt,
            ),
            file(0x0004, "TEXT/0004 CV certificate", Supplied, Free, AsBuilt),
            file(0x0005, "TEXT/0005 key information", Supplied, Free, AsBuilt),
            file(
                0x0006,
                "TEXT/0006 session-key delivery public key",
                Supplied,
                AfterAnyOf(&[TEXT_PIN, CHECK_NUMBER_A]),
                AsBuilt,
            ),
            file(
                0x0007,
                "TEXT/0007 card signing public key",
                Supplied,
                AfterAnyOf(&[TEXT_PIN, CHECK_NUMBER_A]),
                AsBuilt,
            ),
        ],
        secrets: &[
            pin(
                TEXT_PIN,
                "TEXT/0011 PIN",
                Secret::TextPin,
                PinFormat::Digits(4),
                3,
                Initial::Issued,
            ),
            pin(
                0x0012,
                "TEXT/0012 PIN (issued blocked)",
                Secret::Unset,
                PinFormat::Digits(4),
                3,
                Initial::Blocked,
            ),
            pin(
                CHECK_NUMBER_A,
                "TEXT/0014 check number A (individual number)",
                Secret::CheckNumberA,
                PinFormat::Digits(12),
                10,
                Initial::Issued,
            ),
            pin(
                CHECK_NUMBER_B,
                "TEXT/0015 check number B (birth date, expiry year, security code)",
                Secret::CheckNumberB,
                PinFormat::Digits(14),
                10,
                Initial::Issued,
            ),
        ],
    },
    AppRow {
        app: App::Surface,
        aid: &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02],
        name: "surface AP",
        files: &[],
        secrets: &[],
    },
    AppRow {
        app: App::Common,
        aid: &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x01, 0x00],
        name: "common AP",
        files: &[],
        secrets: &[pin(
            0x001C,
            "COMMON/001C PIN",
            Secret::Unset,
            PinFormat::Digits(4),
            3,
            Initial::Blocked,
        )],
    },
    AppRow {
        app: App::Juki,
        aid: &[0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x01],
        name: "juki AP",
        files: &[],
        secrets: &[pin(
            0x001C,
            "JUKI/001C PIN",
            Secret::Unset,
            PinFormat::Digits(4),
            3,
            Initial::Blocked,
        )],
    },
];

impl AppRow {
    /// The row of `app`.
    pub fn of(app: App) -> &'static AppRow {
        // Every App has a row: the table test checks it.
        APPS.iter().find(|row| row.app == app).unwrap_or(&APPS[0])
    }

    /// The row whose AID is exactly `aid`.
    pub fn by_aid(aid: &[u8]) -> Option<&'static AppRow> {
        APPS.iter().find(|row| row.aid == aid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_well_formed() {
        for app in [
            App::Jpki,
            App::TextSupport,
            App::Surface,
            App::Common,
            App::Juki,
        ] {
            assert_eq!(AppRow::of(app).app, app);
        }
        for (i, row) in APPS.iter().enumerate() {
            assert_eq!(row.aid.len(), 10, "{}", row.name);
            assert!(APPS[i + 1..].iter().all(|o| o.aid != row.aid));
            for f in row.files {
                assert!(!row.secrets.iter().any(|s| s.fid == f.fid), "{}", f.name);
                for p in f.access.pins() {
                    assert!(row.secrets.iter().any(|s| s.fid == p), "{}", f.name);
                }
            }
            for s in row.secrets {
                if let SecretKind::PrivateKey { pin } = s.kind {
                    assert!(row.secrets.iter().any(|p| p.fid == pin), "{}", s.name);
                }
            }
        }
    }

    #[test]
    fn pin_formats_are_the_cards() {
        let auth = PinFormat::Digits(4);
        assert!(auth.accepts("1234"));
        assert!(!auth.accepts("123") && !auth.accepts("12345") && !auth.accepts("12a4"));
        let sign = PinFormat::UpperAlphanumeric { min: 6, max: 16 };
        assert!(sign.accepts("ABC123") && sign.accepts("A1B2C3D4E5F6G7H8"));
        assert!(
            !sign.accepts("abc123") && !sign.accepts("ABC12") && !sign.accepts("A1B2C3D4E5F6G7H89")
        );
    }
}
