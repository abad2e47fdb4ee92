#!/bin/bash
# An eKYC-style My Number checker built from Debian's OpenSC tools, for `rclab run`
# (suite/adapters/opensc-jpki.yaml): what an integrator would script around a JPKI card.
#
#   opensc_jpki_checker.sh --reader NAME --pin NNNN --trust-dir DIR
#
# 1. opensc-tool sends a SELECT of an applet no My Number card holds (PIV), then of the
#    JPKI AP: a card without JPKI is not_my_number_card; one that also "has" PIV answers
#    90 00 to anything: forged{unexpected_status}.
# 2. pkcs15-tool (OpenSC's jpki driver) lists the PIN objects: the authentication PIN's
#    tries left (0: unreadable{pin_blocked}; 1: unreadable{pin_last_try}, never spent) and
#    reads the authentication certificate (id 01).
# 3. openssl verifies the certificate against the trust folder's roots (now):
#    untrusted_certificate, forged{unknown_signer}, forged{certificate_expired}.
# 4. pkcs11-tool logs in with the PIN (wrong: wrong_pin) and signs a fresh 32-byte nonce
#    (SHA256-RSA-PKCS with the authentication key); openssl verifies the signature with the
#    certificate's key (forged{signature_mismatch} otherwise): genuine.
#
# Prints one rclab.verdict/1 JSON line; tool output goes to stderr.
set -u

reader="" pin="" trust=""
while [ $# -gt 0 ]; do
    case "$1" in
        --reader) reader="${2-}"; shift 2 ;;
        --pin) pin="${2-}"; shift 2 ;;
        --trust-dir) trust="${2-}"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

verdict() { # verdict [reason] detail
    local v="$1" reason="" detail
    if [ $# -eq 3 ]; then reason="$2"; detail="$3"; else detail="$2"; fi
    detail=$(printf '%s' "$detail" | tr -d '"\\' | tr '\n\t' '  ' | cut -c1-300)
    if [ -n "$reason" ]; then
        printf '{"schema":"rclab.verdict/1","verdict":"%s","reason":"%s","detail":"%s"}\n' "$v" "$reason" "$detail"
    else
        printf '{"schema":"rclab.verdict/1","verdict":"%s","detail":"%s"}\n' "$v" "$detail"
    fi
    exit 0
}

[ -n "$reader" ] && [ -n "$pin" ] && [ -d "$trust" ] || {
    echo "usage: $0 --reader NAME --pin NNNN --trust-dir DIR" >&2
    exit 2
}
for tool in opensc-tool pkcs15-tool pkcs11-tool openssl; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install opensc openssl)" >&2; exit 3; }
done
module=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
[ -e "$module" ] || module=$(ls /usr/lib/*/opensc-pkcs11.so 2>/dev/null | head -n1)

work=$(mktemp -d) || exit 3
trap 'rm -rf "$work"' EXIT
# One PKCS#11 slot per reader (the default 16 virtual slots reach only four readers), and
# the jpki driver for this card (spec notes B8: OPENSC_DRIVER).
printf 'app default {\n  card_drivers = jpki, internal;\n}\napp opensc-pkcs11 {\n  pkcs11 {\n    max_virtual_slots = 64;\n  }\n}\n' >"$work/opensc.conf"
export OPENSC_CONF="$work/opensc.conf" OPENSC_DRIVER=jpki

# 1. Which applets the card claims.
piv=00A4040C0BA000000308000010000100
jpki=00A4040C0AD392F000260100000001
sent=$(opensc-tool --reader "$reader" --send-apdu "$piv" --send-apdu "$jpki" 2>&1)
echo "$sent" >&2
sws=$(printf '%s\n' "$sent" | sed -n 's/.*SW1=0x\([0-9a-fA-F]*\), SW2=0x\([0-9a-fA-F]*\).*/\1\2/p')
piv_sw=$(printf '%s\n' "$sws" | sed -n 1p)
jpki_sw=$(printf '%s\n' "$sws" | sed -n 2p)
[ -n "$jpki_sw" ] || verdict unreadable transport "opensc-tool could not talk to the card"
[ "$jpki_sw" = "900" ] || [ "$jpki_sw" = "9000" ] || verdict not_my_number_card "SELECT JPKI AP: SW $jpki_sw"
case "$piv_sw" in
    900|9000) verdict forged unexpected_status "the card answers 90 00 to the SELECT of a PIV applet" ;;
esac

# 2. The authentication PIN's tries left, and the authentication certificate.
pins=$(pkcs15-tool --reader "$reader" --list-pins 2>&1) || verdict unreadable unexpected_status "pkcs15-tool --list-pins failed: $pins"
echo "$pins" >&2
tries=$(printf '%s\n' "$pins" | awk '/Auth ID|Tries left/ {print}' | sed -n 's/.*Tries left *: *\([0-9]*\).*/\1/p' | head -n1)
case "$tries" in
    "") verdict unreadable malformed_data "pkcs15-tool shows no tries left for the authentication PIN" ;;
    0) verdict unreadable pin_blocked "the authentication PIN is blocked" ;;
    1) verdict unreadable pin_last_try "the authentication PIN has one try left: not spent" ;;
esac
pkcs15-tool --reader "$reader" --read-certificate 01 >"$work/auth.pem" 2>"$work/read.err" \
    || verdict unreadable malformed_data "pkcs15-tool --read-certificate 01: $(cat "$work/read.err")"
openssl x509 -in "$work/auth.pem" -noout 2>/dev/null \
    || verdict forged malformed_certificate "the authentication certificate does not parse"

# 3. The chain to a trusted root, valid now.
: >"$work/roots.pem"
: >"$work/subjects"
for root in "$trust"/*.crt "$trust"/*.der "$trust"/*.pem; do
    [ -f "$root" ] || continue
    openssl x509 -in "$root" -inform DER >"$work/root.pem" 2>/dev/null \
        || openssl x509 -in "$root" >"$work/root.pem" 2>/dev/null || continue
    cat "$work/root.pem" >>"$work/roots.pem"
    openssl x509 -in "$work/root.pem" -noout -subject -nameopt RFC2253 >>"$work/subjects"
done
check=$(openssl verify -no-CApath -no-CAstore -CAfile "$work/roots.pem" "$work/auth.pem" 2>&1)
echo "$check" >&2
case "$check" in
    *": OK"*) ;;
    *"has expired"*|*"not yet valid"*) verdict forged certificate_expired "$check" ;;
    *"signature failure"*) verdict forged unknown_signer "$check" ;;
    *"unable to get local issuer"*|*"unable to get issuer"*)
        # openssl matches issuers by key identifier too: a certificate bearing a trusted
        # root's name that no trusted root signed is a look-alike, not another PKI.
        issuer=$(openssl x509 -in "$work/auth.pem" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
        if sed 's/^subject=//' "$work/subjects" | grep -qxF -- "$issuer"; then
            verdict forged unknown_signer "the certificate bears the trusted root's name $issuer, but no trusted root signed it"
        fi
        verdict untrusted_certificate "$check" ;;
    *) verdict unreadable malformed_data "openssl verify: $check" ;;
esac

# 4. A fresh nonce, signed by the card after the PIN, verified with the certificate's key.
head -c 32 /dev/urandom >"$work/nonce"
# C_GetSlotList counts the slots, then lists them: a card arriving in another reader in
# between (OpenSC adds a virtual slot per PIN of a card) makes the list longer than the
# count, and pkcs11-tool gives up with CKR_BUFFER_TOO_SMALL before it logs in. Nothing
# was sent to this card's PIN, so asking again is safe (three tries at most).
for attempt in 1 2 3; do
    signed=$(pkcs11-tool --module "$module" --slot-description "$reader" --login --pin "$pin" \
        --sign --mechanism SHA256-RSA-PKCS --id 01 -i "$work/nonce" -o "$work/sig" 2>&1)
    status=$?
    echo "$signed" >&2
    case "$signed" in
        *"C_GetSlotList() failed"*CKR_BUFFER_TOO_SMALL*) [ "$attempt" -lt 3 ] && sleep 0.2 && continue ;;
    esac
    break
done
if [ $status -ne 0 ]; then
    case "$signed" in
        *CKR_PIN_INCORRECT*) verdict wrong_pin "the card refused the PIN" ;;
        *CKR_PIN_LOCKED*|*REF_DATA_NOT_USABLE*) verdict unreadable pin_blocked "$signed" ;;
        *) verdict unreadable unexpected_status "pkcs11-tool --sign failed: $signed" ;;
    esac
fi
openssl x509 -in "$work/auth.pem" -noout -pubkey >"$work/pub.pem"
if openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig" "$work/nonce" >&2; then
    verdict genuine "the card signed a fresh nonce with its authentication certificate's key; the chain verifies"
fi
verdict forged signature_mismatch "the card's signature does not verify with the authentication certificate's key"
