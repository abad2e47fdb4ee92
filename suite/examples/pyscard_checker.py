#!/usr/bin/python3
"""A small, independent residence-card checker over PC/SC (pyscard + pycryptodome).

It reads a Japanese residence card / special permanent resident certificate chip of
either generation (gen 1: card type '1'/'2', 2-key TDES + ISO 9797-1 MAC 3; gen 2: '05'/'06',
AES-128 + CMAC-8): card type, GET CHALLENGE, MUTUAL AUTHENTICATE with the card-number key,
VERIFY of the card number under SM, then every EF of DF1 (SM), DF2 and DF3. It shares no
code with rclab: it is written from the protocol note only, as a second implementation.

It SKIPS the check code (signature) and certificate verification ON PURPOSE: a card that
authenticates and reads cleanly is called "genuine". rclab's conformance report against
this checker shows which forgeries such a reader lets through.

    /usr/bin/python3 pyscard_checker.py --reader "Virtual PCD 00 00" \\
        --card-number AB12345678CD [--wait SECONDS] [--max-response N]
        [--front-desk-slices N] [--dump-images DIR]

`--front-desk-slices 256` makes it the deployed front-desk reader of issue 19: every EF
read under secure messaging is read in N-byte slices, and the first status other than
90 00 ends the EF, that answer (and any data in it) discarded. `--dump-images DIR` writes
each image value it read to DIR/<name>.bin (front, face, name, address) for decoding.

stdout: exactly one JSON object (schema rclab.verdict/2, with the `data` it read when it read
every EF); diagnostics go to stderr.
Exit 0 whenever a verdict was printed, 2 on usage errors.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time
import unicodedata

from Cryptodome.Cipher import AES, DES, DES3
from Cryptodome.Hash import CMAC
from smartcard import scard

AID = {df: bytes([0xD3, 0x92, 0xF0, 0x00, 0x4F, n]) + bytes(10)
       for df, n in (("DF1", 2), ("DF2", 3), ("DF3", 4))}
# Card type -> (DF, [(SFI, under SM)]) in reading order.
LAYOUT = {
    "1": [("DF1", [(5, True), (6, True)]), ("DF2", [(1, False), (2, False), (3, False), (4, False)]),
          ("DF3", [(2, False)])],
    "2": [("DF1", [(5, True), (6, True)]), ("DF2", [(1, False)]), ("DF3", [(2, False)])],
    "05": [("DF1", [(1, True), (3, True), (4, True), (6, True)]),
           ("DF2", [(1, False), (2, False), (3, False)]), ("DF3", [(2, False)])],
    "06": [("DF1", [(1, True), (3, True), (4, True), (6, True)]), ("DF2", [(3, False)]),
           ("DF3", [(2, False)])],
}
REMOVED = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
           scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_E_NOT_TRANSACTED}
RETRY = REMOVED | {scard.SCARD_W_UNRESPONSIVE_CARD}  # SCardConnect errors worth a retry


class Stop(Exception):
    """Ends the check with a verdict."""
    def __init__(self, verdict, reason, detail):
        super().__init__(detail)
        self.verdict, self.reason, self.detail = verdict, reason, detail


def unexpected(what, sw):
    return Stop("unreadable", "unexpected_status", f"{what}: status {sw:04X}")


def malformed(what):
    return Stop("unreadable", "malformed_data", what)


def pad(data, block):
    data += b"\x80"
    return data + bytes(-len(data) % block)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


class Crypto:
    """Gen 1: 2-key TDES-CBC, zero IV, ISO 9797-1 MAC algorithm 3 with padding method 2
    always added. Gen 2: AES-128-CBC, zero IV, AES-CMAC truncated to 8 bytes."""
    def __init__(self, generation):
        self.generation, self.block = generation, 8 if generation == 1 else 16

    def cipher(self, key):
        if self.generation == 1:
            return DES3.new(key, DES3.MODE_CBC, iv=bytes(8))
        return AES.new(key, AES.MODE_CBC, iv=bytes(16))

    def enc(self, key, data):
        return self.cipher(key).encrypt(data)

    def dec(self, key, data):
        return self.cipher(key).decrypt(data)

    def mac(self, key, data):
        if self.generation == 2:
            return CMAC.new(key, msg=data, ciphermod=AES).digest()[:8]
        h = DES.new(key[:8], DES.MODE_CBC, iv=bytes(8)).encrypt(pad(data, 8))[-8:]
        return DES.new(key[:8], DES.MODE_ECB).encrypt(DES.new(key[8:], DES.MODE_ECB).decrypt(h))


def parse_tlv(ef, what):
    """BER-TLV list [(tag, value)]; 1- or 2-byte tags; 00 in tag position starts the padding."""
    out, i = [], 0
    while i < len(ef):
        if ef[i] == 0:
            if any(ef[i:]):
                raise malformed(f"{what}: data after zero padding at byte {i}")
            break
        try:
            tag, i = ef[i], i + 1
            if tag & 0x1F == 0x1F:
                tag, i = tag << 8 | ef[i], i + 1
            n, i = ef[i], i + 1
            if n == 0x81:
                n, i = ef[i], i + 1
            elif n == 0x82:
                n, i = ef[i] << 8 | ef[i + 1], i + 2
            elif n > 0x7F:
                raise malformed(f"{what}: length byte {n:02X} at byte {i - 1}")
        except IndexError:
            raise malformed(f"{what}: TLV header cut short at the end of the EF") from None
        if i + n > len(ef):
            raise malformed(f"{what}: tag {tag:02X} needs {n} bytes, {len(ef) - i} left")
        out.append((tag, ef[i:i + n]))
        i += n
    return out


# How generation-1 text that is not UTF-8 is decoded. `--text-codec shift_jis` makes this
# checker the careless reader the profile valid/gen1-cp932-text exists for (plain
# Shift_JIS, unknown bytes replaced): a test uses it to show rclab catches the misreading.
GEN1_CODEC = ("cp932", "strict")


def text(value, generation):
    """A NUL-padded text field: generation 2 is UTF-8; generation 1 (encoding left open by
    the spec) UTF-8 when it is, else Windows-31J (cp932, Shift_JIS with the NEC and IBM
    extensions and Microsoft's mappings of 0x8160 and 0x817C; plain `shift_jis` decodes
    those to different characters or not at all). NFC, as rclab.verdict/2 asks."""
    value = value.rstrip(b"\x00")
    if b"\x00" in value:  # NUL is padding only: text that holds one cannot be shown as read
        raise malformed("NUL byte inside a text field")
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError:
        if generation == 2:
            raise malformed("text field is not UTF-8") from None
        try:
            decoded = value.decode(*GEN1_CODEC)
        except UnicodeDecodeError:
            raise malformed("text field is neither UTF-8 nor Windows-31J") from None
    return unicodedata.normalize("NFC", decoded)


def chip_date(value):
    """`YYYYMMDD` -> `YYYY-MM-DD`; None for an empty (all-zero) date."""
    value = value.rstrip(b"\x00").decode("ascii", "replace")
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{8}", value):
        raise malformed(f"date {value!r} is not YYYYMMDD")
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def card_data(card_type, number, efs, values=None):
    """The rclab.verdict/2 `data` object from the parsed EFs {(df, sfi): {tag: value}}."""
    gen = 1 if len(card_type) == 1 else 2
    ef = lambda df, sfi: efs.get((df, sfi), {})
    image = lambda value: {"sha256": hashlib.sha256(value).hexdigest()}
    data = {"generation": gen, "card_number": number,
            "card_type": "residence_card" if card_type in ("1", "05")
            else "special_permanent_resident_certificate"}
    images = {}
    if gen == 1:
        if 0xD0 in ef("DF1", 5):
            images["front"] = image(ef("DF1", 5)[0xD0])
        if 0xD1 in ef("DF1", 6):
            images["face"] = image(ef("DF1", 6)[0xD1])
        address = ef("DF2", 1)
        if 0xD4 in address:
            data["address"] = text(address[0xD4], 1)
        if 0xD2 in address and chip_date(address[0xD2]):
            data["address_date"] = chip_date(address[0xD2])
        for (sfi, tag, key) in ((2, 0xD5, "work_permission"), (3, 0xD6, "individual_permission")):
            if tag in ef("DF2", sfi) and text(ef("DF2", sfi)[tag], 1):
                data[key] = text(ef("DF2", sfi)[tag], 1)
        if 0xD7 in ef("DF2", 4):
            data["application_pending"] = ef("DF2", 4)[0xD7] == b"1"
    else:
        printed = ef("DF1", 3)
        if 0xC2 in ef("DF1", 1):
            data["card_number"] = text(ef("DF1", 1)[0xC2], 2)
        for tag, key in ((0xC5, "card_expiry"), (0xC6, "birth_date"),
                         (0xCD, "period_of_stay_expiry")):
            if tag in printed and chip_date(printed[tag]):
                data[key] = chip_date(printed[tag])
        for tag, key in ((0xC8, "nationality"), (0xC9, "status_of_residence"),
                         (0xCE, "period_of_stay")):
            if tag in printed and text(printed[tag], 2):
                data[key] = text(printed[tag], 2)
        sex = {b"1": "male", b"2": "female", b"3": "unspecified"}.get(printed.get(0xC7))
        if sex:
            data["sex"] = sex
        for tag, key in ((0xD0, "name"), (0xD1, "face")):
            if tag in ef("DF1", 4):
                images[key] = image(ef("DF1", 4)[tag])
        if 0xDFD1 in ef("DF1", 6):
            images["address"] = image(ef("DF1", 6)[0xDFD1])
        work = ef("DF2", 1)
        if 0xD5 in work and text(work[0xD5], 2):
            data["work_permission"] = text(work[0xD5], 2)
        if 0xD6 in work and chip_date(work[0xD6]):
            data["work_permission_expiry"] = chip_date(work[0xD6])
        if 0xD7 in work:
            data["individual_permission_granted"] = work[0xD7] == b"1"
        if 0xD8 in ef("DF2", 2):
            data["application_pending"] = ef("DF2", 2)[0xD8] == b"1"
    if images:
        data["images"] = images
    if values is not None:
        for key, (df, sfi, tag) in IMAGE_TLVS[gen].items():
            if tag in ef(df, sfi):
                values[key] = ef(df, sfi)[tag]
    return data


# Where each image lives, per generation: name -> (DF, SFI, tag).
IMAGE_TLVS = {
    1: {"front": ("DF1", 5, 0xD0), "face": ("DF1", 6, 0xD1)},
    2: {"name": ("DF1", 4, 0xD0), "face": ("DF1", 4, 0xD1), "address": ("DF1", 6, 0xDFD1)},
}


class Reader:
    def __init__(self):
        self.ctx = self.card = None

    def connect(self, reader, wait):
        """Waits up to `wait` seconds for a card in `reader`, then connects (T=0 or T=1)."""
        hr, self.ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            self.ctx = None
            raise Stop("unreadable", "transport", f"pcscd: {scard.SCardGetErrorMessage(hr)}")
        hr, names = scard.SCardListReaders(self.ctx, [])
        if reader not in (names if hr == scard.SCARD_S_SUCCESS else []):
            raise Stop("unreadable", "transport", f"no reader {reader!r}; readers: {names}")
        deadline, states = time.monotonic() + wait, [(reader, scard.SCARD_STATE_UNAWARE)]
        failed = None  # last SCardConnect error
        while True:
            # Block until the reader's state changes (or time runs out). After a failed
            # connect, wait at most 250 ms: pcscd may still report the card that was just
            # replaced ("Card is unpowered") and send no event when the new one is ready.
            left = max(0.0, deadline - time.monotonic())
            ms = int(min(left, 0.25) * 1000 if failed else left * 1000)
            hr, states = scard.SCardGetStatusChange(self.ctx, ms, states)
            if hr not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                raise Stop("unreadable", "transport",
                           f"SCardGetStatusChange: {scard.SCardGetErrorMessage(hr)}")
            state = states[0][1]
            if state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE:
                hr, card, proto = scard.SCardConnect(self.ctx, reader, scard.SCARD_SHARE_SHARED,
                                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
                if hr == scard.SCARD_S_SUCCESS:
                    self.card, self.proto = card, proto
                    return
                if hr not in RETRY:
                    raise Stop("unreadable", "transport",
                               f"SCardConnect: {scard.SCardGetErrorMessage(hr)}")
                failed = hr
            if time.monotonic() >= deadline:
                if failed:
                    raise Stop("unreadable", "card_removed",
                               f"SCardConnect: {scard.SCardGetErrorMessage(failed)}")
                raise Stop("unreadable", "timeout", f"no card in {reader!r} within {wait} s")
            states = [(reader, state & ~scard.SCARD_STATE_CHANGED)]

    def transmit(self, apdu, what):
        """Sends one APDU; returns (SW as int, data). Follows 61 xx with GET RESPONSE (T=0)."""
        data = b""
        while True:
            hr, resp = scard.SCardTransmit(self.card, self.proto, list(apdu))
            if hr != scard.SCARD_S_SUCCESS or len(resp) < 2:
                reason = ("card_removed" if hr in REMOVED or (hr == 0 and not resp) else
                          "timeout" if hr == scard.SCARD_E_TIMEOUT else "transport")
                msg = scard.SCardGetErrorMessage(hr) if hr else f"{len(resp)}-byte response"
                raise Stop("unreadable", reason, f"{what}: {msg}")
            data += bytes(resp[:-2])
            sw = resp[-2] << 8 | resp[-1]
            if sw >> 8 != 0x61:
                return sw, data
            apdu = bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF])

    def close(self):
        if self.card is not None:  # unpower: a reset on disconnect confuses pcscd with vpcd
            scard.SCardDisconnect(self.card, scard.SCARD_UNPOWER_CARD)
        if self.ctx is not None:
            scard.SCardReleaseContext(self.ctx)


class Checker:
    def __init__(self, reader, number, max_response, files, slices=None):
        self.r, self.number, self.max, self.files = reader, number, max_response, files
        self.slices = slices  # front-desk mode: SM reads in slices of this many bytes
        self.g, self.ks = None, None  # Crypto, KSenc
        self.data = None  # rclab.verdict/2 `data`, once every EF was read
        self.images = {}  # image name -> value bytes, once every EF was read

    def sm_open(self, data, what):
        """DO 86 = 01 || Enc(KSenc, pad(plain)) -> plain; any defect is forged/sm_error."""
        def bad(why):
            return Stop("forged", "sm_error", f"{what}: secure messaging: {why}")
        if len(data) < 2 or data[0] != 0x86:
            raise bad("response is not a DO 86")
        n, i = data[1], 2
        if n in (0x81, 0x82):
            i += n - 0x80
            n = int.from_bytes(data[2:i], "big")
        elif n > 0x7F:
            raise bad(f"DO 86 length byte {n:02X}")
        if i + n != len(data):
            raise bad(f"DO 86 of length {n} in {len(data)} bytes of response")
        value = data[i:]
        if not value or value[0] != 0x01:
            raise bad("padding indicator is not 01")
        ct = value[1:]
        if not ct or len(ct) % self.g.block:
            raise bad(f"cryptogram of {len(ct)} bytes")
        plain = self.g.dec(self.ks, ct).rstrip(b"\x00")
        if not plain.endswith(b"\x80"):
            raise bad("plaintext padding is not 80 00..")
        return plain[:-1]

    def read_once(self, sfi_p1, p2, n, secure, what):
        """One READ BINARY asking n bytes (0 = whole EF); returns (SW, plaintext)."""
        if secure:
            apdu = bytes([0x08, 0xB0, sfi_p1, p2, 0, 0, 4, 0x96, 2, n >> 8, n & 0xFF, 0, 0])
            sw, data = self.r.transmit(apdu, what)
            return sw, self.sm_open(data, what) if sw in (0x9000, 0x6282) else b""
        le = [0, 0, 0] if n == 0 else [n & 0xFF] if n <= 256 else [0, n >> 8, n & 0xFF]
        return self.r.transmit(bytes([0x00, 0xB0, sfi_p1, p2] + le), what)

    def read_sliced(self, sfi, what):
        """The front-desk reader: N-byte SM slices until the first status other than 90 00,
        whose answer is discarded (it ends the file, whatever it carries)."""
        out = b""
        while True:
            off = len(out)
            if off > 0x7FFF:
                raise malformed(f"{what}: EF larger than 32 KiB")
            p1, p2 = (0x80 | sfi, 0) if off == 0 else (off >> 8, off & 0xFF)
            sw, data = self.read_once(p1, p2, self.slices, True, what)
            if sw != 0x9000:
                if off == 0:
                    raise unexpected(what, sw)
                return out
            if len(data) > self.slices:
                raise malformed(f"{what}: card sent {len(data)} bytes, asked {self.slices}")
            out += data
            if not data:
                return out

    def read_ef(self, df, sfi, secure):
        what = f"{df}:{sfi:02X}"
        if secure and self.slices is not None:
            out = self.read_sliced(sfi, what)
        elif self.max is None:
            sw, out = self.read_once(0x80 | sfi, 0, 0, secure, what)
            if sw != 0x9000:
                raise unexpected(what, sw)
        else:
            if secure:  # room for SW, `86 82 LL LL 01` and one padding block
                b = self.g.block
                chunk = max(b, min(self.max - 7 - b, 0x7FF0) // b * b)
            else:
                chunk = max(1, min(self.max - 2, 0x7FFF))
            out = b""
            while True:
                off = len(out)
                if off > 0x7FFF:
                    raise malformed(f"{what}: EF larger than 32 KiB")
                p1, p2 = (0x80 | sfi, 0) if off == 0 else (off >> 8, off & 0xFF)
                sw, data = self.read_once(p1, p2, chunk, secure, what)
                if sw == 0x6B00 and off > 0:
                    break
                if sw not in (0x9000, 0x6282):
                    raise unexpected(what, sw)
                if len(data) > chunk:
                    raise malformed(f"{what}: card sent {len(data)} bytes, asked {chunk}")
                out += data
                if sw == 0x6282 or len(data) < chunk:
                    break
        self.files[what] = out.hex().upper()
        return parse_tlv(out, what)

    def authenticate(self):
        key = hashlib.sha1(self.number.encode()).digest()[:16]
        sw, rnd_icc = self.r.transmit(b"\x00\x84\x00\x00\x08", "GET CHALLENGE")
        if sw != 0x9000:
            raise unexpected("GET CHALLENGE", sw)
        if len(rnd_icc) != 8:
            raise malformed(f"GET CHALLENGE returned {len(rnd_icc)} bytes")
        rnd_ifd, k_ifd = os.urandom(8), os.urandom(16)
        e_ifd = self.g.enc(key, rnd_ifd + rnd_icc + k_ifd)
        apdu = b"\x00\x82\x00\x00\x28" + e_ifd + self.g.mac(key, e_ifd) + b"\x00"
        sw, resp = self.r.transmit(apdu, "MUTUAL AUTHENTICATE")
        if sw == 0x6300:
            raise Stop("wrong_card_number", None, "MUTUAL AUTHENTICATE rejected (63 00)")
        if sw != 0x9000:
            raise unexpected("MUTUAL AUTHENTICATE", sw)
        if len(resp) != 40 or self.g.mac(key, resp[:32]) != resp[32:]:
            raise Stop("forged", "auth_failed", f"M.ICC does not match E.ICC ({len(resp)} bytes)")
        plain = self.g.dec(key, resp[:32])
        if plain[:8] != rnd_icc or plain[8:16] != rnd_ifd:
            raise Stop("forged", "auth_failed", "E.ICC does not echo RND.ICC || RND.IFD")
        self.ks = hashlib.sha1(xor(k_ifd, plain[16:]) + b"\x00\x00\x00\x01").digest()[:16]
        ct = self.g.enc(self.ks, self.number.encode() + b"\x80\x00\x00\x00")
        sw, _ = self.r.transmit(b"\x08\x20\x00\x86\x13\x86\x11\x01" + ct, "VERIFY")
        if sw == 0x6300:
            raise Stop("wrong_card_number", None, "VERIFY rejected the card number (63 00)")
        if sw != 0x9000:
            raise unexpected("VERIFY", sw)

    def run(self):
        try:
            c1 = self.read_ef("MF", 0x0A, False)
        except Stop as s:
            if s.reason in ("unexpected_status", "malformed_data"):
                raise Stop("not_residence_card", None, s.detail) from None
            raise
        card_type = c1[0][1].decode("latin-1") if len(c1) == 1 and c1[0][0] == 0xC1 else None
        if card_type not in LAYOUT:
            raise Stop("not_residence_card", None, f"card type EF holds {self.files['MF:0A']}")
        self.g = Crypto(1 if len(card_type) == 1 else 2)
        self.read_ef("MF", 0x0B, False)
        self.authenticate()
        parsed = {}
        for df, efs in LAYOUT[card_type]:
            sw, _ = self.r.transmit(b"\x00\xA4\x04\x0C\x10" + AID[df], f"SELECT {df}")
            if sw == 0x6A82:
                raise Stop("not_residence_card", None, f"SELECT {df}: 6A 82")
            if sw != 0x9000:
                raise unexpected(f"SELECT {df}", sw)
            for sfi, secure in efs:
                parsed[(df, sfi)] = dict(self.read_ef(df, sfi, secure))
        try:
            self.data = card_data(card_type, self.number, parsed, self.images)
        except Stop as s:  # the verdict stays what it is; only the data cannot be shown
            print(f"data not shown: {s.detail}", file=sys.stderr)
        return (f"card type {card_type}: authenticated and read {len(self.files)} EFs; "
                "check code and certificate NOT verified (skipped on purpose)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reader", required=True, help="PC/SC reader name")
    ap.add_argument("--card-number", required=True, help="12 characters, e.g. AB12345678CD")
    ap.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a card")
    ap.add_argument("--max-response", type=int, help="largest response (bytes): chunked reads")
    ap.add_argument("--front-desk-slices", type=int, metavar="N",
                    help="SM reads in N-byte slices, ending at the first status other than "
                         "90 00 and discarding that answer (the deployed front-desk reader)")
    ap.add_argument("--dump-images", metavar="DIR", help="write each image read to DIR")
    ap.add_argument("--text-codec", choices=["cp932", "shift_jis"], default="cp932",
                    help="generation-1 text that is not UTF-8 (shift_jis: careless, for tests)")
    args = ap.parse_args()
    global GEN1_CODEC
    if args.text_codec == "shift_jis":
        GEN1_CODEC = ("shift_jis", "replace")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{8}[A-Z]{2}", args.card_number):
        ap.error("--card-number must be 2 upper-case letters, 8 digits, 2 upper-case letters")
    if args.max_response is not None and args.max_response < 3:
        ap.error("--max-response must be at least 3")
    if args.front_desk_slices is not None and not 1 <= args.front_desk_slices <= 0x7FFF:
        ap.error("--front-desk-slices must be 1 to 32767")
    files, reader = {}, Reader()
    checker = Checker(reader, args.card_number, args.max_response, files,
                      args.front_desk_slices)
    try:
        reader.connect(args.reader, args.wait)
        verdict, reason, detail = "genuine", None, checker.run()
    except Stop as s:
        verdict, reason, detail = s.verdict, s.reason, s.detail
    finally:
        reader.close()
    print(f"{verdict} ({reason}): {detail}", file=sys.stderr)
    line = {"schema": "rclab.verdict/2", "verdict": verdict, "reason": reason,
            "detail": " ".join(detail.split()), "files_read": files}
    if checker.data is not None:
        line["data"] = checker.data
    if args.dump_images and checker.images:
        os.makedirs(args.dump_images, exist_ok=True)
        for name, value in checker.images.items():
            with open(os.path.join(args.dump_images, f"{name}.bin"), "wb") as f:
                f.write(value)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
