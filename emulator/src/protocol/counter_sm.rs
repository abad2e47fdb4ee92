//! Counter-based secure messaging of the My Number card platform (spec notes
//! `my-number-platform.md` A5): the SM of the text-support AP after SET SESSION KEY, and the
//! best-evidence model of the specified residence card's SM.
//!
//! Unlike the residence card's gen-2 SM ([`super::sm`], IV = 0 under KSenc from MUTUAL
//! AUTHENTICATE), every SM command here has a message counter `N` (1 for the first SM command
//! after key delivery, +1 per SM command, rejected ones included; plain commands do not count)
//! and its cryptograms — command and response — use `IV_N = AES-128-ECB(Kenc, N as 16-byte
//! big-endian)`. The command data is exactly one DO: `86 L 01 ‖ AES-CBC(Kenc, IV_N, pad(P))`
//! for VERIFY and SELECT, the Le DO (`96 03 00 Lh Ll`, or the gen-2 `96 02 Lh Ll` as a
//! variant for the specified card, open question 3) for READ BINARY. The response data is
//! `86 L 01 ‖ AES-CBC(Kenc, IV_N, pad(R))` followed by the status word in clear.
//!
//! A malformed DO, a padding indicator other than `01` or a padding that does not check
//! (which is what a wrong counter looks like) is `69 88` and destroys the session: every later
//! command is answered `69 FC` \[R: MC\]. Note that CBC confines a wrong IV to the first
//! plaintext block, so the padding check catches a wrong counter reliably only for data of one
//! block (a PIN, a FID, a card number) — a property of the scheme, not of this code.
//!
//! [`CardCounterSm`] is the card's half, [`ReaderCounterSm`] the reader's; both are pure (no
//! I/O): they turn command data into plaintext and back. [`CmacSm`] is the other reading of
//! SPEC3's "AES-CMAC" (open question 2, reading (a)): ISO SM with a CMAC, separate types
//! ([`CardCmacSm`], [`ReaderCmacSm`] keep its counters) so a profile knob can pick it without
//! touching the encryption-only path. No public vector exists for it: its tests are
//! round trips and tamper checks only.

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use cmac::Mac;
use thiserror::Error;

use super::apdu::{Apdu, CommandBuilder};
use super::crypto::{Key, pad, unpad};
use super::status::Status;
use super::tlv;

/// CLA of an SM command whose header is not authenticated (the only class the text AP takes).
pub const CLA_SM: u8 = 0x08;
/// CLA of ISO SM with an authenticated header (used by [`CmacSm`] only).
pub const CLA_SM_CMAC: u8 = 0x0C;
/// Tag of the padding-indicator-plus-cryptogram DO.
pub const TAG_CRYPTOGRAM: u16 = 0x86;
/// Tag of the Le DO of an SM READ BINARY.
pub const TAG_LE: u16 = 0x96;
/// The one padding indicator the platform uses: ISO/IEC 7816-4 padding.
pub const PADDING_INDICATOR: u8 = 0x01;
/// AES block size.
const BLOCK: usize = 16;

/// `69 87`: the SM data object is missing.
pub const SW_MISSING_SM_DO: u16 = 0x6987;
/// `69 FC`: the SM session was destroyed by an earlier error (platform-specific word).
pub const SW_SESSION_DESTROYED: u16 = 0x69FC;

/// The message counter `N` of one SM exchange: the command and its response share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageCounter(pub u64);

impl MessageCounter {
    /// The counter of the first SM command after SET SESSION KEY.
    pub const FIRST: MessageCounter = MessageCounter(1);

    /// `N` as the 16-byte big-endian block that is encrypted into the IV.
    pub fn block(self) -> [u8; BLOCK] {
        u128::from(self.0).to_be_bytes()
    }
}

/// `IV_N = AES-128-ECB(Kenc, N as 16-byte big-endian)` (A5): why a replayed or reordered
/// command fails to decrypt.
pub fn iv(kenc: &Key, counter: MessageCounter) -> [u8; BLOCK] {
    let cipher = aes::Aes128::new(kenc.into());
    let mut block = counter.block().into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// How an SM READ BINARY carries its expected length (open question 3; a specified-card knob).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LeDoForm {
    /// `96 03 00 Lh Ll`: the JICSAP form measured on the My Number text AP \[R: MC\].
    #[default]
    ThreeByte,
    /// `96 02 Lh Ll`: the residence card's gen-2 form, a candidate for the specified card \[I\].
    TwoByte,
}

impl LeDoForm {
    /// The DO asking for `len` plaintext bytes (`0` = the whole file).
    pub fn encode(self, len: u16) -> Vec<u8> {
        let [h, l] = len.to_be_bytes();
        match self {
            LeDoForm::ThreeByte => vec![0x96, 0x03, 0x00, h, l],
            LeDoForm::TwoByte => vec![0x96, 0x02, h, l],
        }
    }

    /// The length a Le DO of this form asks for; the card refuses the other form.
    pub fn decode(self, data: &[u8]) -> Result<ExpectedLength, CounterSmError> {
        let (obj, end) = one_do(data)?;
        if obj.tag != TAG_LE {
            return Err(CounterSmError::UnexpectedTag {
                found: obj.tag,
                expected: TAG_LE,
            });
        }
        if end != data.len() {
            return Err(CounterSmError::ExtraDataObjects);
        }
        match (self, obj.value) {
            (LeDoForm::ThreeByte, [0x00, h, l]) | (LeDoForm::TwoByte, [h, l]) => {
                Ok(ExpectedLength(u16::from_be_bytes([*h, *l])))
            }
            _ => Err(CounterSmError::LeDoShape(obj.value.len())),
        }
    }
}

/// The plaintext length an SM READ BINARY asks for; `0` means "to the end of the file".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpectedLength(pub u16);

impl ExpectedLength {
    /// True when the reader asked for the whole file (`00 00`).
    pub fn whole_file(self) -> bool {
        self.0 == 0
    }
}

/// Why an SM command or response was refused. Each maps to the status word the card answers
/// ([`CounterSmError::status`]) and says whether the card destroys the session.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CounterSmError {
    /// The session was destroyed by an earlier SM error (or its counter ran out).
    #[error("the SM session was destroyed by an earlier error")]
    SessionDestroyed,
    /// The command has no data: no SM DO at all.
    #[error("the command carries no SM data object")]
    MissingDataObject,
    /// The data does not parse as one BER-TLV object.
    #[error("SM data is not a data object: {0}")]
    Malformed(tlv::TlvError),
    /// The DO has the wrong tag for this command (`86` for VERIFY/SELECT, `96` for READ).
    #[error("SM data object {found:02X}, expected {expected:02X}")]
    UnexpectedTag {
        /// The tag sent.
        found: u16,
        /// The tag this command takes.
        expected: u16,
    },
    /// More than one DO (or trailing bytes after the one DO).
    #[error("more than one SM data object")]
    ExtraDataObjects,
    /// The Le DO has a value of the wrong length for the configured form.
    #[error("Le DO with a {0}-byte value does not have the configured form")]
    LeDoShape(usize),
    /// The padding-indicator byte is not `01`.
    #[error("padding indicator {0:#04x}, expected 01")]
    PaddingIndicator(u8),
    /// The cryptogram is empty or not a whole number of AES blocks.
    #[error("cryptogram of {0} bytes is empty or not block aligned")]
    CryptogramLength(usize),
    /// The plaintext does not end in ISO/IEC 7816-4 padding: a wrong key or a wrong counter.
    #[error("plaintext padding does not check (wrong key or counter)")]
    BadPadding,
    /// The data is too long for one DO `86`.
    #[error("{0} bytes do not fit one DO 86")]
    TooLong(usize),
    /// A CMAC that does not verify ([`CmacSm`] only).
    #[error("cryptographic checksum does not verify")]
    BadMac,
}

impl CounterSmError {
    /// The status word the card answers for this error (A5, A6).
    pub fn status(&self) -> Status {
        match self {
            CounterSmError::SessionDestroyed => Status::Other(SW_SESSION_DESTROYED),
            CounterSmError::MissingDataObject => Status::Other(SW_MISSING_SM_DO),
            CounterSmError::TooLong(_) => Status::WrongLength,
            _ => Status::IncorrectSmDataObjects,
        }
    }

    /// True when the card destroys the session on this error: every `69 88` does (A5);
    /// a missing DO (`69 87`) does not \[I\].
    pub fn destroys_session(&self) -> bool {
        self.status() == Status::IncorrectSmDataObjects
    }
}

fn one_do(data: &[u8]) -> Result<(tlv::Tlv<'_>, usize), CounterSmError> {
    if data.is_empty() {
        return Err(CounterSmError::MissingDataObject);
    }
    tlv::parse_at(data, 0).map_err(CounterSmError::Malformed)
}

/// `86 L 01 ‖ AES-CBC(Kenc, IV_N, pad(plain))`, padding always added.
pub fn seal(kenc: &Key, counter: MessageCounter, plain: &[u8]) -> Result<Vec<u8>, CounterSmError> {
    if plain.len() + BLOCK + 1 > tlv::MAX_VALUE_LEN {
        return Err(CounterSmError::TooLong(plain.len()));
    }
    let mut value = Vec::with_capacity(plain.len() + BLOCK + 1);
    value.push(PADDING_INDICATOR);
    value.extend_from_slice(
        &cbc::Encryptor::<aes::Aes128>::new(kenc.into(), &iv(kenc, counter).into())
            .encrypt_padded_vec::<NoPadding>(&pad(plain, BLOCK)),
    );
    tlv::encode(TAG_CRYPTOGRAM, &value).map_err(|_| CounterSmError::TooLong(plain.len()))
}

/// Opens `data`, which must be exactly one DO `86` (long-form lengths accepted).
pub fn open(kenc: &Key, counter: MessageCounter, data: &[u8]) -> Result<Vec<u8>, CounterSmError> {
    let (obj, end) = one_do(data)?;
    if obj.tag != TAG_CRYPTOGRAM {
        return Err(CounterSmError::UnexpectedTag {
            found: obj.tag,
            expected: TAG_CRYPTOGRAM,
        });
    }
    if end != data.len() {
        return Err(CounterSmError::ExtraDataObjects);
    }
    let [indicator, cryptogram @ ..] = obj.value else {
        return Err(CounterSmError::CryptogramLength(0));
    };
    if *indicator != PADDING_INDICATOR {
        return Err(CounterSmError::PaddingIndicator(*indicator));
    }
    if cryptogram.is_empty() || !cryptogram.len().is_multiple_of(BLOCK) {
        return Err(CounterSmError::CryptogramLength(cryptogram.len()));
    }
    let plain = cbc::Decryptor::<aes::Aes128>::new(kenc.into(), &iv(kenc, counter).into())
        .decrypt_padded_vec::<NoPadding>(cryptogram)
        .map_err(|_| CounterSmError::CryptogramLength(cryptogram.len()))?;
    unpad(&plain)
        .map(<[u8]>::to_vec)
        .ok_or(CounterSmError::BadPadding)
}

/// The right to answer one SM command: the counter its response is sealed under. Only
/// [`CardCounterSm`] hands it out, so a response cannot be sealed under a counter no command
/// used.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseSlot {
    counter: MessageCounter,
}

impl ResponseSlot {
    /// The counter of the command this slot answers.
    pub fn counter(&self) -> MessageCounter {
        self.counter
    }
}

/// The card's half of a counter-SM session, created by a successful SET SESSION KEY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardCounterSm {
    kenc: Key,
    next: MessageCounter,
    le_form: LeDoForm,
    destroyed: bool,
}

impl CardCounterSm {
    /// A fresh session: the next SM command must use `N = 1`.
    pub fn new(kenc: Key, le_form: LeDoForm) -> Self {
        CardCounterSm {
            kenc,
            next: MessageCounter::FIRST,
            le_form,
            destroyed: false,
        }
    }

    /// The counter the next SM command must use.
    pub fn next_counter(&self) -> MessageCounter {
        self.next
    }

    /// True once an SM error destroyed the session (every command is then `69 FC`).
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Spends one counter value for an SM command, whatever becomes of it: the platform
    /// counts rejected commands too (A5). Fails when the session is already destroyed.
    pub fn advance(&mut self) -> Result<ResponseSlot, CounterSmError> {
        if self.destroyed {
            return Err(CounterSmError::SessionDestroyed);
        }
        let counter = self.next;
        match counter.0.checked_add(1) {
            Some(n) => self.next = MessageCounter(n),
            None => self.destroyed = true,
        }
        Ok(ResponseSlot { counter })
    }

    /// Opens the DO `86` of an SM VERIFY or SELECT: its plaintext (the PIN, the FID, the
    /// card number) and the slot to answer under. Spends a counter value even on error; a
    /// `69 88` error destroys the session.
    pub fn open_command(&mut self, data: &[u8]) -> Result<(Vec<u8>, ResponseSlot), CounterSmError> {
        let slot = self.advance()?;
        let opened = open(&self.kenc, slot.counter, data);
        self.settle(opened).map(|plain| (plain, slot))
    }

    /// Reads the Le DO of an SM READ BINARY in the configured form. Spends a counter value
    /// even on error; a `69 88` error destroys the session.
    pub fn open_read(
        &mut self,
        data: &[u8],
    ) -> Result<(ExpectedLength, ResponseSlot), CounterSmError> {
        let slot = self.advance()?;
        let decoded = self.le_form.decode(data);
        self.settle(decoded).map(|len| (len, slot))
    }

    /// The response data for `plain` under the slot's counter (padding always added).
    pub fn seal_response(
        &self,
        slot: &ResponseSlot,
        plain: &[u8],
    ) -> Result<Vec<u8>, CounterSmError> {
        seal(&self.kenc, slot.counter, plain)
    }

    fn settle<T>(&mut self, result: Result<T, CounterSmError>) -> Result<T, CounterSmError> {
        if let Err(e) = &result
            && e.destroys_session()
        {
            self.destroyed = true;
        }
        result
    }
}

/// A reader's SM command waiting for its response: the counter the response is sealed under.
#[derive(Debug, PartialEq, Eq)]
pub struct PendingResponse {
    counter: MessageCounter,
}

impl PendingResponse {
    /// The counter the command used.
    pub fn counter(&self) -> MessageCounter {
        self.counter
    }
}

/// The reader's half of a counter-SM session: builds SM commands with the next counter and
/// opens their responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderCounterSm {
    kenc: Key,
    next: MessageCounter,
    le_form: LeDoForm,
}

impl ReaderCounterSm {
    /// A fresh session after SET SESSION KEY delivered `kenc`.
    pub fn new(kenc: Key, le_form: LeDoForm) -> Self {
        ReaderCounterSm {
            kenc,
            next: MessageCounter::FIRST,
            le_form,
        }
    }

    /// The counter the next SM command will use.
    pub fn next_counter(&self) -> MessageCounter {
        self.next
    }

    fn spend(&mut self) -> MessageCounter {
        let counter = self.next;
        self.next = MessageCounter(counter.0.saturating_add(1));
        counter
    }

    /// `08 INS P1 P2 Lc <DO 86 of plain>`: the shape of SM VERIFY and SELECT (no Le).
    pub fn cryptogram_command(
        &mut self,
        ins: u8,
        p1: u8,
        p2: u8,
        plain: &[u8],
    ) -> Result<(Vec<u8>, PendingResponse), CounterSmError> {
        let counter = self.next;
        let sealed = seal(&self.kenc, counter, plain)?;
        self.spend();
        let apdu = CommandBuilder::new(CLA_SM, ins, p1, p2)
            .data(sealed)
            .to_bytes();
        Ok((apdu, PendingResponse { counter }))
    }

    /// SM VERIFY of `secret` against the key reference `p2` (`80 | SFI` on the text AP,
    /// e.g. `91` for EF 0011; `86` assumed for the specified card's card number).
    pub fn verify(
        &mut self,
        p2: u8,
        secret: &[u8],
    ) -> Result<(Vec<u8>, PendingResponse), CounterSmError> {
        self.cryptogram_command(0x20, 0x00, p2, secret)
    }

    /// SM SELECT of an EF by FID (`08 A4 02 0C`).
    pub fn select_ef(&mut self, fid: u16) -> Result<(Vec<u8>, PendingResponse), CounterSmError> {
        self.cryptogram_command(0xA4, 0x02, 0x0C, &fid.to_be_bytes())
    }

    /// SM READ BINARY: `08 B0 P1 P2 00 00 Lc <Le DO> 00 00` (extended, like MC), asking
    /// for `len` bytes (`0` = the whole file).
    pub fn read_binary(&mut self, p1: u8, p2: u8, len: u16) -> (Vec<u8>, PendingResponse) {
        let counter = self.spend();
        let apdu = CommandBuilder::new(CLA_SM, 0xB0, p1, p2)
            .data(self.le_form.encode(len))
            .ne(65_536)
            .extended()
            .to_bytes();
        (apdu, PendingResponse { counter })
    }

    /// Opens the response data of `pending` (one DO `86`). Only for answers that carry data
    /// (READ BINARY): a VERIFY or SELECT answered with a bare status word has nothing to
    /// open, and empty data is [`CounterSmError::MissingDataObject`].
    pub fn open_response(
        &self,
        pending: &PendingResponse,
        data: &[u8],
    ) -> Result<Vec<u8>, CounterSmError> {
        open(&self.kenc, pending.counter, data)
    }
}

/// Length of the truncated CMAC of [`CmacSm`].
pub const CMAC_LEN: usize = 8;

/// Reading (a) of SPEC3's "AES-CMAC" (A5, open question 2) \[?\]: ISO/IEC 7816-4 SM with a
/// cryptographic checksum, for the specified card's SM-variant knob. Command: CLA `0C`,
/// `87 L 01 ‖ AES-CBC(Kenc, IV_N, pad(P))` (VERIFY/SELECT) or `97 L <Le>` (READ), then
/// `8E 08 <CMAC>`; response: `87` (if data) ‖ `99 02 SW` ‖ `8E 08 <CMAC>`. The CMAC is
/// AES-CMAC under Kmac, truncated to 8 bytes, over `N block ‖ pad(header) ‖ pad(DOs)` for a
/// command and `N block ‖ pad(DOs)` for a response — the counter block in the MAC input is
/// itself one of the open question's alternatives, chosen here so a replay fails the MAC.
/// None of this is confirmed by a public source; it exists so a checker can be tested
/// against the alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmacSm {
    kenc: Key,
    kmac: Key,
}

/// A command opened by [`CmacSm::open_command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmacCommand {
    /// The plaintext of DO `87` (empty when the command had none).
    pub plain: Vec<u8>,
    /// The value of DO `97`, when the command had one.
    pub le: Option<Vec<u8>>,
}

/// Tag of the odd-INS-style cryptogram DO of [`CmacSm`].
const TAG_CMAC_CRYPTOGRAM: u16 = 0x87;
/// Tag of the Le DO of [`CmacSm`].
const TAG_CMAC_LE: u16 = 0x97;
/// Tag of the status DO of [`CmacSm`] responses.
const TAG_CMAC_STATUS: u16 = 0x99;
/// Tag of the checksum DO.
const TAG_CMAC: u16 = 0x8E;

impl CmacSm {
    /// A session with the delivered encryption and MAC keys.
    pub fn new(kenc: Key, kmac: Key) -> Self {
        CmacSm { kenc, kmac }
    }

    fn mac(&self, counter: MessageCounter, parts: &[&[u8]]) -> [u8; CMAC_LEN] {
        let mut mac = <cmac::Cmac<aes::Aes128> as KeyInit>::new((&self.kmac).into());
        mac.update(&counter.block());
        for part in parts {
            mac.update(&pad(part, BLOCK));
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0; CMAC_LEN];
        out.copy_from_slice(&full[..CMAC_LEN]);
        out
    }

    fn cryptogram_do(
        &self,
        counter: MessageCounter,
        plain: &[u8],
    ) -> Result<Vec<u8>, CounterSmError> {
        let mut sealed = seal(&self.kenc, counter, plain)?;
        sealed[0] = TAG_CMAC_CRYPTOGRAM as u8;
        Ok(sealed)
    }

    /// The reader's command: `0C INS P1 P2 Lc [87 …] [97 …] 8E 08 <MAC> [Le]`.
    pub fn wrap_command(
        &self,
        counter: MessageCounter,
        header: [u8; 4],
        plain: &[u8],
        le: Option<&[u8]>,
    ) -> Result<Vec<u8>, CounterSmError> {
        let header = [CLA_SM_CMAC, header[1], header[2], header[3]];
        let mut dos = Vec::new();
        if !plain.is_empty() {
            dos.extend(self.cryptogram_do(counter, plain)?);
        }
        if let Some(le) = le {
            tlv::push(&mut dos, TAG_CMAC_LE, le).map_err(|_| CounterSmError::TooLong(le.len()))?;
        }
        let mac = self.mac(counter, &[&header, &dos]);
        tlv::push(&mut dos, TAG_CMAC, &mac).map_err(|_| CounterSmError::TooLong(dos.len()))?;
        let mut builder = CommandBuilder::new(header[0], header[1], header[2], header[3]).data(dos);
        if le.is_some() {
            builder = builder.ne(256);
        }
        Ok(builder.to_bytes())
    }

    /// The card's reading of a command: checks the MAC over header and DOs, opens DO `87`.
    pub fn open_command(
        &self,
        counter: MessageCounter,
        raw: &[u8],
    ) -> Result<CmacCommand, CounterSmError> {
        let apdu = Apdu::parse(raw).map_err(|_| CounterSmError::MissingDataObject)?;
        let header = [apdu.cla, apdu.ins, apdu.p1, apdu.p2];
        let tlvs = tlv::parse_all(apdu.data).map_err(CounterSmError::Malformed)?;
        let Some((mac_obj, body)) = tlvs.split_last() else {
            return Err(CounterSmError::MissingDataObject);
        };
        if mac_obj.tag != TAG_CMAC {
            return Err(CounterSmError::UnexpectedTag {
                found: mac_obj.tag,
                expected: TAG_CMAC,
            });
        }
        let covered = &apdu.data[..mac_obj.offset];
        if mac_obj.value != self.mac(counter, &[&header, covered]) {
            return Err(CounterSmError::BadMac);
        }
        let mut command = CmacCommand {
            plain: Vec::new(),
            le: None,
        };
        for obj in body {
            match obj.tag {
                TAG_CMAC_CRYPTOGRAM if command.plain.is_empty() => {
                    let as_86 = tlv::encode(TAG_CRYPTOGRAM, obj.value)
                        .map_err(CounterSmError::Malformed)?;
                    command.plain = open(&self.kenc, counter, &as_86)?;
                }
                TAG_CMAC_LE if command.le.is_none() => command.le = Some(obj.value.to_vec()),
                TAG_CMAC_CRYPTOGRAM | TAG_CMAC_LE => return Err(CounterSmError::ExtraDataObjects),
                found => {
                    return Err(CounterSmError::UnexpectedTag {
                        found,
                        expected: TAG_CMAC_CRYPTOGRAM,
                    });
                }
            }
        }
        Ok(command)
    }

    /// The card's response data: `[87 …] 99 02 SW 8E 08 <MAC>` (the SW also follows in clear).
    pub fn wrap_response(
        &self,
        counter: MessageCounter,
        plain: &[u8],
        status: Status,
    ) -> Result<Vec<u8>, CounterSmError> {
        let mut dos = Vec::new();
        if !plain.is_empty() {
            dos.extend(self.cryptogram_do(counter, plain)?);
        }
        tlv::push(&mut dos, TAG_CMAC_STATUS, &status.to_bytes())
            .map_err(|_| CounterSmError::TooLong(plain.len()))?;
        let mac = self.mac(counter, &[&dos]);
        tlv::push(&mut dos, TAG_CMAC, &mac).map_err(|_| CounterSmError::TooLong(plain.len()))?;
        Ok(dos)
    }

    /// The reader's reading of a response: checks the MAC, returns the plaintext and the
    /// status word of DO `99`.
    pub fn open_response(
        &self,
        counter: MessageCounter,
        data: &[u8],
    ) -> Result<(Vec<u8>, Status), CounterSmError> {
        let tlvs = tlv::parse_all(data).map_err(CounterSmError::Malformed)?;
        let Some((mac_obj, body)) = tlvs.split_last() else {
            return Err(CounterSmError::MissingDataObject);
        };
        if mac_obj.tag != TAG_CMAC {
            return Err(CounterSmError::UnexpectedTag {
                found: mac_obj.tag,
                expected: TAG_CMAC,
            });
        }
        if mac_obj.value != self.mac(counter, &[&data[..mac_obj.offset]]) {
            return Err(CounterSmError::BadMac);
        }
        let (plain, status_obj) = match body {
            [status] => (Vec::new(), status),
            [cryptogram, status] if cryptogram.tag == TAG_CMAC_CRYPTOGRAM => {
                let as_86 = tlv::encode(TAG_CRYPTOGRAM, cryptogram.value)
                    .map_err(CounterSmError::Malformed)?;
                (open(&self.kenc, counter, &as_86)?, status)
            }
            _ => return Err(CounterSmError::ExtraDataObjects),
        };
        match (status_obj.tag, status_obj.value) {
            (TAG_CMAC_STATUS, [a, b]) => Ok((plain, Status::from_sw(u16::from_be_bytes([*a, *b])))),
            (found, _) => Err(CounterSmError::UnexpectedTag {
                found,
                expected: TAG_CMAC_STATUS,
            }),
        }
    }
}

/// The card's half of a [`CmacSm`] session, with the same counter rules as
/// [`CardCounterSm`]: one counter value per SM command (rejected ones included), and any
/// error but a missing DO destroys the session (`69 FC` afterwards) \[I: by analogy with
/// A5\].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardCmacSm {
    sm: CmacSm,
    next: MessageCounter,
    destroyed: bool,
}

impl CardCmacSm {
    /// A fresh session after key delivery with both keys.
    pub fn new(kenc: Key, kmac: Key) -> Self {
        CardCmacSm {
            sm: CmacSm::new(kenc, kmac),
            next: MessageCounter::FIRST,
            destroyed: false,
        }
    }

    /// The counter the next SM command must use.
    pub fn next_counter(&self) -> MessageCounter {
        self.next
    }

    /// True once an SM error destroyed the session.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Checks and opens a whole C-APDU (the MAC covers its header); spends a counter value
    /// even on error.
    pub fn open_command(
        &mut self,
        raw: &[u8],
    ) -> Result<(CmacCommand, ResponseSlot), CounterSmError> {
        let slot = self.advance()?;
        let opened = self.sm.open_command(slot.counter, raw);
        if let Err(e) = &opened
            && e.destroys_session()
        {
            self.destroyed = true;
        }
        opened.map(|command| (command, slot))
    }

    /// Spends one counter value, whatever becomes of the command (as
    /// [`CardCounterSm::advance`]). Fails when the session is already destroyed.
    pub fn advance(&mut self) -> Result<ResponseSlot, CounterSmError> {
        if self.destroyed {
            return Err(CounterSmError::SessionDestroyed);
        }
        let counter = self.next;
        match counter.0.checked_add(1) {
            Some(n) => self.next = MessageCounter(n),
            None => self.destroyed = true,
        }
        Ok(ResponseSlot { counter })
    }

    /// The response data (`[87 …] 99 02 SW 8E 08 <MAC>`) under the slot's counter.
    pub fn seal_response(
        &self,
        slot: &ResponseSlot,
        plain: &[u8],
        status: Status,
    ) -> Result<Vec<u8>, CounterSmError> {
        self.sm.wrap_response(slot.counter, plain, status)
    }
}

/// The reader's half of a [`CmacSm`] session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderCmacSm {
    sm: CmacSm,
    next: MessageCounter,
}

impl ReaderCmacSm {
    /// A fresh session after key delivery with both keys.
    pub fn new(kenc: Key, kmac: Key) -> Self {
        ReaderCmacSm {
            sm: CmacSm::new(kenc, kmac),
            next: MessageCounter::FIRST,
        }
    }

    /// The counter the next SM command will use.
    pub fn next_counter(&self) -> MessageCounter {
        self.next
    }

    /// The protected command for `header` (its CLA becomes `0C`), with `plain` in DO `87`
    /// and `le` in DO `97` when given.
    pub fn command(
        &mut self,
        header: [u8; 4],
        plain: &[u8],
        le: Option<&[u8]>,
    ) -> Result<(Vec<u8>, PendingResponse), CounterSmError> {
        let counter = self.next;
        let apdu = self.sm.wrap_command(counter, header, plain, le)?;
        self.next = MessageCounter(counter.0.saturating_add(1));
        Ok((apdu, PendingResponse { counter }))
    }

    /// Checks and opens the response data: the plaintext and the status word of DO `99`.
    pub fn open_response(
        &self,
        pending: &PendingResponse,
        data: &[u8],
    ) -> Result<(Vec<u8>, Status), CounterSmError> {
        self.sm.open_response(pending.counter, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// Kenc of A8's derived vector: `00 01 … 0F` (first 16 bytes of the seed `00 … 1F`).
    fn a8_kenc() -> Key {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn a8_iv1_to_iv3() {
        let k = a8_kenc();
        assert_eq!(
            iv(&k, MessageCounter(1)).to_vec(),
            hex("73 46 13 95 95 C0 B4 1E 49 7B BD E3 65 F4 2D 0A")
        );
        assert_eq!(
            iv(&k, MessageCounter(2)).to_vec(),
            hex("49 D6 87 53 99 9B A6 8C E3 89 7A 68 60 81 B0 9D")
        );
        assert_eq!(
            iv(&k, MessageCounter(3)).to_vec(),
            hex("B9 AD 2B 2E 34 6A C2 38 50 5D 36 5E 9C B7 FC 56")
        );
    }

    /// A8: the reader's N=1 VERIFY, N=2 SELECT, N=3 READ, and the card's N=3 response.
    #[test]
    fn a8_reader_commands_and_card_response() {
        let mut reader = ReaderCounterSm::new(a8_kenc(), LeDoForm::ThreeByte);
        let (verify, p1) = reader.verify(0x91, b"1234").unwrap();
        assert_eq!(
            verify,
            hex("08 20 00 91 13 86 11 01 B8 D4 93 49 A0 BF E2 72 EA 90 02 30 65 2D AA EF")
        );
        assert_eq!(p1.counter(), MessageCounter(1));
        let (select, _) = reader.select_ef(0x0001).unwrap();
        assert_eq!(
            select,
            hex("08 A4 02 0C 13 86 11 01 46 D4 CA AC 31 3B 21 DA 35 E3 FE 7C 43 5C 31 50")
        );
        let (read, pending) = reader.read_binary(0, 0, 0);
        assert_eq!(read, hex("08 B0 00 00 00 00 05 96 03 00 00 00 00 00"));

        // The card side, fed the same three commands.
        let mut card = CardCounterSm::new(a8_kenc(), LeDoForm::ThreeByte);
        let (pin, _) = card
            .open_command(Apdu::parse(&verify).unwrap().data)
            .unwrap();
        assert_eq!(pin, b"1234");
        let (fid, _) = card
            .open_command(Apdu::parse(&select).unwrap().data)
            .unwrap();
        assert_eq!(fid, [0x00, 0x01]);
        let (len, slot) = card.open_read(Apdu::parse(&read).unwrap().data).unwrap();
        assert!(len.whole_file());
        let ef = hex("FF100C353337363836363737313838FFFF");
        let response = card.seal_response(&slot, &ef).unwrap();
        assert_eq!(
            response,
            hex(
                "86 21 01 C7 6A 26 8C 18 FA 81 4B 8C 6A 33 3E CC 84 68 67 96 AA 27 B6 0C BA 7F 02 01 97 67 F7 16 7C E1 39"
            )
        );
        assert_eq!(reader.open_response(&pending, &response).unwrap(), ef);
    }

    /// A8: the hypothetical specified-card VERIFY of card number AA12345678BB at N=1, P2 86.
    #[test]
    fn a8_hypothetical_specified_verify() {
        let mut reader = ReaderCounterSm::new(a8_kenc(), LeDoForm::TwoByte);
        let (verify, _) = reader.verify(0x86, b"AA12345678BB").unwrap();
        assert_eq!(
            verify,
            hex("08 20 00 86 13 86 11 01 56 4A A1 5A 55 13 2F AE C2 9D 95 D3 82 68 F7 FF")
        );
        let (read, _) = reader.read_binary(0x8B, 0, 0);
        assert_eq!(read, hex("08 B0 8B 00 00 00 04 96 02 00 00 00 00"));
    }

    /// A5: padding is always added — a block-aligned plaintext gains a whole block.
    #[test]
    fn aligned_plaintext_gains_a_full_padding_block() {
        let sealed = seal(&a8_kenc(), MessageCounter(4), &[7; 16]).unwrap();
        assert_eq!(&sealed[..3], &[0x86, 0x21, 0x01]);
        assert_eq!(sealed.len(), 3 + 32);
        let empty = seal(&a8_kenc(), MessageCounter(4), &[]).unwrap();
        assert_eq!(&empty[..3], &[0x86, 0x11, 0x01]);
    }

    #[test]
    fn long_form_length_is_accepted() {
        let short = seal(&a8_kenc(), MessageCounter(1), b"1234").unwrap();
        let mut long = vec![0x86, 0x81];
        long.extend_from_slice(&short[1..]);
        let mut card = CardCounterSm::new(a8_kenc(), LeDoForm::ThreeByte);
        assert_eq!(card.open_command(&long).unwrap().0, b"1234");
    }

    #[test]
    fn a_wrong_counter_destroys_the_session_then_every_command_is_69fc() {
        let mut reader = ReaderCounterSm::new(a8_kenc(), LeDoForm::ThreeByte);
        let mut card = CardCounterSm::new(a8_kenc(), LeDoForm::ThreeByte);
        reader.spend(); // the reader skips N=1
        let (verify, _) = reader.verify(0x91, b"1234").unwrap();
        let err = card
            .open_command(Apdu::parse(&verify).unwrap().data)
            .unwrap_err();
        assert_eq!(err, CounterSmError::BadPadding);
        assert_eq!(err.status().sw(), 0x6988);
        assert!(card.is_destroyed());
        let (again, _) = ReaderCounterSm::new(a8_kenc(), LeDoForm::ThreeByte)
            .verify(0x91, b"1234")
            .unwrap();
        let err = card
            .open_command(Apdu::parse(&again).unwrap().data)
            .unwrap_err();
        assert_eq!(err.status().sw(), 0x69FC);
    }

    #[test]
    fn each_malformation_has_its_status_and_rejected_commands_count() {
        let k = a8_kenc();
        let good = seal(&k, MessageCounter(1), b"1234").unwrap();
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (vec![], 0x6987),
            (LeDoForm::ThreeByte.encode(0), 0x6988),
            ([good.clone(), vec![0x97, 0x00]].concat(), 0x6988),
            (
                {
                    let mut b = good.clone();
                    b[2] = 0x02;
                    b
                },
                0x6988,
            ),
            (vec![0x86, 0x05, 0x01, 1, 2, 3, 4], 0x6988),
            (vec![0x86, 0x85], 0x6988),
        ];
        for (data, sw) in cases {
            let mut card = CardCounterSm::new(k, LeDoForm::ThreeByte);
            let err = card.open_command(&data).unwrap_err();
            assert_eq!(err.status().sw(), sw, "{data:02X?}: {err}");
            assert_eq!(card.is_destroyed(), sw == 0x6988);
            assert_eq!(
                card.next_counter(),
                MessageCounter(2),
                "the rejected command counted"
            );
        }
        // The Le DO: the other form is refused.
        let mut card = CardCounterSm::new(k, LeDoForm::ThreeByte);
        assert_eq!(
            card.open_read(&LeDoForm::TwoByte.encode(5)).unwrap_err(),
            CounterSmError::LeDoShape(2)
        );
        let mut card = CardCounterSm::new(k, LeDoForm::TwoByte);
        assert_eq!(
            card.open_read(&LeDoForm::TwoByte.encode(5)).unwrap().0,
            ExpectedLength(5)
        );
        assert_eq!(
            card.open_read(&[0x96, 0x03, 0x01, 0, 0]).unwrap_err(),
            CounterSmError::LeDoShape(3)
        );
    }

    #[test]
    fn cmac_sessions_count_and_die_like_the_counter_sm() {
        let mut reader = ReaderCmacSm::new([1; 16], [2; 16]);
        let mut card = CardCmacSm::new([1; 16], [2; 16]);
        let (verify, pending) = reader
            .command([0x08, 0x20, 0x00, 0x86], b"AA12345678BB", None)
            .unwrap();
        let (opened, slot) = card.open_command(&verify).unwrap();
        assert_eq!(opened.plain, b"AA12345678BB");
        let resp = card.seal_response(&slot, b"", Status::Success).unwrap();
        assert_eq!(
            reader.open_response(&pending, &resp).unwrap(),
            (vec![], Status::Success)
        );
        // A replay of N=1 at N=2 fails the MAC and destroys the session.
        assert_eq!(
            card.open_command(&verify).unwrap_err(),
            CounterSmError::BadMac
        );
        assert!(card.is_destroyed());
        let (read, _) = reader
            .command([0x08, 0xB0, 0x81, 0x00], b"", Some(&[0, 0]))
            .unwrap();
        assert_eq!(card.open_command(&read).unwrap_err().status().sw(), 0x69FC);
    }

    #[test]
    fn cmac_variant_round_trips_and_refuses_a_changed_byte() {
        let sm = CmacSm::new([1; 16], [2; 16]);
        let n = MessageCounter(7);
        let cmd = sm
            .wrap_command(n, [0x08, 0x20, 0x00, 0x86], b"AA12345678BB", None)
            .unwrap();
        assert_eq!(cmd[0], 0x0C);
        let opened = sm.open_command(n, &cmd).unwrap();
        assert_eq!(opened.plain, b"AA12345678BB");
        assert_eq!(opened.le, None);
        assert_eq!(
            sm.open_command(MessageCounter(8), &cmd).unwrap_err(),
            CounterSmError::BadMac
        );
        let mut tampered = cmd.clone();
        tampered[3] ^= 1;
        assert_eq!(
            sm.open_command(n, &tampered).unwrap_err(),
            CounterSmError::BadMac
        );
        let read = sm
            .wrap_command(n, [0x08, 0xB0, 0x81, 0x00], b"", Some(&[0, 0]))
            .unwrap();
        assert_eq!(sm.open_command(n, &read).unwrap().le, Some(vec![0, 0]));
        let resp = sm.wrap_response(n, b"data", Status::Success).unwrap();
        assert_eq!(
            sm.open_response(n, &resp).unwrap(),
            (b"data".to_vec(), Status::Success)
        );
        let resp = sm
            .wrap_response(n, b"", Status::VerificationFailed)
            .unwrap();
        assert_eq!(
            sm.open_response(n, &resp).unwrap(),
            (vec![], Status::VerificationFailed)
        );
    }
}
