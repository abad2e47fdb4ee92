#!/usr/bin/env bash
# Generates the rclab TEST PKI (imitating the Japanese residence card PKI).
#
#   vectors/pki/generate.sh           regenerate every key and certificate (NEW keys!)
#   vectors/pki/generate.sh --verify  only verify the files already in place
#   vectors/pki/generate.sh --additions  (re)create only the later additions (see below)
#   vectors/pki/generate.sh --jpki   (re)create only the JPKI TEST tree in jpki/ (My Number card)
#   vectors/pki/generate.sh --mynumber  (re)create only the My Number platform keys in mynumber/
#                                    (text-AP CV CA, card and delivery keys; the specified
#                                    card's TEST delivery key pair)
#
# THESE ARE TEST KEYS. They are not, and never were, keys of any real authority.
# Regenerating creates fresh random keys; the committed files are the ones the
# test profiles are signed with, so only regenerate when you mean to re-sign them.
#
# Requires: bash, openssl 3.x CLI. Nothing else.
set -euo pipefail
export LC_ALL=C TZ=UTC

OUT="$(cd "$(dirname "$0")" && pwd)"
MODE=generate
case "${1:-}" in
  "") ;;
  --verify) MODE=verify ;;
  --additions) MODE=additions ;;
  --jpki) MODE=jpki ;;
  --mynumber) MODE=mynumber ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--verify|--additions|--jpki|--mynumber]" >&2; exit 2 ;;
esac

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

DN_BASE="/C=JP/O=Japanese Government/OU=The Ministry of Justice"

# ---------------------------------------------------------------- helpers
newkey_rsa() { openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
newkey_p384() {
  openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
    -pkeyopt ec_param_enc:named_curve -out "$1"
}

# Extension sections used by `openssl ca`.
cat >"$WORK/ext.cnf" <<'EOF'
[ v3_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = ${ENV::RCLAB_SKI}

[ v3_signer ]
keyUsage               = critical, digitalSignature
basicConstraints       = CA:FALSE
authorityKeyIdentifier = keyid
subjectKeyIdentifier   = ${ENV::RCLAB_SKI}
EOF

# Subject key identifier for a key file.
#   RSA (generation 1): "hash", i.e. RFC 5280 4.2.1.2 method (1), 20-byte SHA-1.
#   EC P-384 (generation 2): RFC 5280 4.2.1.2 method (2): 0100 followed by the least
#   significant 60 bits of SHA-1(subjectPublicKey), 8 bytes. The short identifiers
#   (in both SKI and the child's AKI) are what keep test-card-signer2.crt <= 602 bytes.
ski_for_key() {
  local key="$1" spki="$WORK/spki.der" point="$WORK/point.bin" h
  if openssl pkey -in "$key" -noout -text | grep -q 'NIST CURVE: P-384'; then
    openssl pkey -in "$key" -pubout -outform DER -out "$spki"
    # P-384 SPKI ends with BIT STRING 03 62 00 || 04 X Y (97-byte uncompressed point).
    [ "$(tail -c 100 "$spki" | head -c 3 | od -An -tx1 | tr -d ' \n')" = 036200 ] \
      || { echo "unexpected SPKI layout in $key" >&2; exit 1; }
    tail -c 97 "$spki" >"$point"
    h="$(openssl dgst -sha1 -r "$point" | cut -c1-40)"
    echo "4${h:25:15}"
  else
    echo hash
  fi
}

# issue NAME SUBJECT_CN SERIAL_HEX START END EXT ISSUER|self
#   Creates $D/NAME.crt (DER) signed by $D/ISSUER.key.pem (or self-signed) using a
#   throwaway `openssl ca` configuration and database. $D/NAME.key.pem must exist.
#   START/END are YYYYMMDDHHMMSSZ. Signature digest is SHA-256 for both RSA and EC.
issue() {
  local name="$1" cn="$2" serial="$3" start="$4" end="$5" ext="$6" issuer="$7"
  local ca="$WORK/ca-$name"
  rm -rf "$ca"; mkdir -p "$ca/new"
  : >"$ca/index.txt"
  echo "$serial" >"$ca/serial"
  cat >"$ca/ca.cnf" <<EOF
[ ca ]
default_ca = tmp_ca
[ tmp_ca ]
dir              = $ca
database         = \$dir/index.txt
new_certs_dir    = \$dir/new
serial           = \$dir/serial
default_md       = sha256
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ policy_any ]
countryName            = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = optional
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = placeholder
EOF

  openssl req -new -key "$D/$name.key.pem" -subj "$DN_BASE/CN=$cn" \
    -config "$ca/ca.cnf" -out "$ca/req.csr"

  local signopts
  if [ "$issuer" = self ]; then
    signopts=(-selfsign -keyfile "$D/$name.key.pem")
  else
    openssl x509 -inform DER -in "$D/$issuer.crt" -out "$ca/issuer.pem"
    signopts=(-cert "$ca/issuer.pem" -keyfile "$D/$issuer.key.pem")
  fi
  RCLAB_SKI="$(ski_for_key "$D/$name.key.pem")" \
  openssl ca -batch -notext -preserveDN -config "$ca/ca.cnf" -md sha256 \
    -extfile "$WORK/ext.cnf" -extensions "$ext" \
    -startdate "$start" -enddate "$end" \
    "${signopts[@]}" -in "$ca/req.csr" -out "$ca/cert.pem" 2>"$ca/log" \
    || { cat "$ca/log" >&2; exit 1; }
  openssl x509 -in "$ca/cert.pem" -outform DER -out "$D/$name.crt"
}

# ---------------------------------------------------------------- generation
# Material added after the first tree, separate so that it can be added to an existing
# one: `generate.sh --additions` creates only these files (expired-ca must exist).
#  - self-signed card signers with the genuine signer DNs: their issuer is no trusted
#    root's name ("certificate issued by an unknown CA");
#  - a signer under the expired CA that outlives it (to 2034), so that only the root's
#    expiry can reject it.
ADDITIONS="selfsigned-card-signer selfsigned-card-signer2 expired-ca-long-signer"
generate_additions() {
  local G1_FROM=20240508000000Z G1_TO=20340808235959Z
  local G2_FROM=20260420000000Z G2_TO=20390720235959Z
  newkey_rsa  "$D/selfsigned-card-signer.key.pem"
  issue selfsigned-card-signer "TEST ZairyuCard Signer" 1004 "$G1_FROM" "$G1_TO" v3_signer self
  newkey_p384 "$D/selfsigned-card-signer2.key.pem"
  issue selfsigned-card-signer2 "TEST ZairyuCard Signer2" 2004 "$G2_FROM" "$G2_TO" v3_signer self
  newkey_rsa  "$D/expired-ca-long-signer.key.pem"
  issue expired-ca-long-signer "TEST ZairyuCard Signer" 1005 20150605000000Z "$G1_TO" v3_signer expired-ca
}

generate() {
  D="$WORK/out"
  mkdir -p "$D"

  # Validity windows.
  local G1_FROM=20240508000000Z G1_TO=20340808235959Z
  local G2_FROM=20260420000000Z G2_TO=20390720235959Z
  local OLD_FROM=20150605000000Z

  # --- generation 1 (RSA-2048)
  newkey_rsa  "$D/test-ca.key.pem"
  issue test-ca "TEST ZairyuCard CA" 93 "$G1_FROM" "$G1_TO" v3_ca self
  newkey_rsa  "$D/test-card-signer.key.pem"
  issue test-card-signer "TEST ZairyuCard Signer" 1001 "$G1_FROM" "$G1_TO" v3_signer test-ca

  # --- generation 2 (EC P-384)
  newkey_p384 "$D/test-ca2.key.pem"
  issue test-ca2 "TEST ZairyuCard CA2" 01 "$G2_FROM" "$G2_TO" v3_ca self
  newkey_p384 "$D/test-card-signer2.key.pem"
  # ECDSA signatures vary by a byte or two in DER; re-sign until the certificate fits.
  local tries=0
  while :; do
    issue test-card-signer2 "TEST ZairyuCard Signer2" 2001 "$G2_FROM" "$G2_TO" v3_signer test-ca2
    [ "$(stat -c %s "$D/test-card-signer2.crt")" -le 602 ] && break
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || { echo "test-card-signer2.crt never fit in 602 bytes" >&2; exit 1; }
  done

  # --- look-alike CAs: same DN, dates and serial as the genuine ones, different keys
  newkey_rsa  "$D/lookalike-ca.key.pem"
  issue lookalike-ca "TEST ZairyuCard CA" 93 "$G1_FROM" "$G1_TO" v3_ca self
  newkey_rsa  "$D/lookalike-card-signer.key.pem"
  issue lookalike-card-signer "TEST ZairyuCard Signer" 1001 "$G1_FROM" "$G1_TO" v3_signer lookalike-ca
  newkey_p384 "$D/lookalike-ca2.key.pem"
  issue lookalike-ca2 "TEST ZairyuCard CA2" 01 "$G2_FROM" "$G2_TO" v3_ca self
  newkey_p384 "$D/lookalike-card-signer2.key.pem"
  issue lookalike-card-signer2 "TEST ZairyuCard Signer2" 2001 "$G2_FROM" "$G2_TO" v3_signer lookalike-ca2

  # --- expired signers, issued by the genuine CAs
  newkey_rsa  "$D/expired-card-signer.key.pem"
  issue expired-card-signer "TEST ZairyuCard Signer" 1002 "$OLD_FROM" 20200605235959Z v3_signer test-ca
  newkey_p384 "$D/expired-card-signer2.key.pem"
  issue expired-card-signer2 "TEST ZairyuCard Signer2" 2002 "$G2_FROM" 20260520235959Z v3_signer test-ca2

  # --- an expired CA (same DN as test-ca) and a signer under it
  newkey_rsa  "$D/expired-ca.key.pem"
  issue expired-ca "TEST ZairyuCard CA" 2A "$OLD_FROM" 20250905235959Z v3_ca self
  newkey_rsa  "$D/expired-ca-card-signer.key.pem"
  issue expired-ca-card-signer "TEST ZairyuCard Signer" 1003 "$OLD_FROM" 20250905235959Z v3_signer expired-ca

  # --- bare keys without certificates
  newkey_rsa  "$D/other-signer.key.pem"
  newkey_p384 "$D/other-signer2.key.pem"

  generate_additions

  # --- install
  chmod 644 "$D"/*
  mkdir -p "$OUT/trust"
  rm -f "$OUT"/*.key.pem "$OUT"/*.crt "$OUT"/trust/*.crt
  cp "$D"/* "$OUT/"
  cp "$OUT/test-ca.crt" "$OUT/test-ca2.crt" "$OUT/expired-ca.crt" "$OUT/trust/"
}

# ---------------------------------------------------------------- JPKI TEST tree (jpki/)
# The My Number card's JPKI (spec notes B2): a TEST root per key (authentication,
# signature) with `O=JPKI-TEST` DNs, end-entity certificates with the real ones' shape
# (RSA-2048, sha256WithRSA; auth: KU digitalSignature, EKU clientAuth, policy
# 1.2.392.200149.8.5.1.0.30, CN an opaque serial; sign: KU digitalSignature+nonRepudiation,
# policy ...0.20, subject CN/L/L/C, SAN otherName 1.2.392.200149.8.5.5.1-.6 of an INVENTED
# person), and the material of the forged profiles. Separate from the residence tree:
# `generate.sh --jpki` never touches a residence key.
JPKI_AUTH_DN="/C=JP/O=JPKI-TEST/OU=JPKI for user authentication/OU=rclab TEST authority, not J-LIS"
JPKI_SIGN_DN="/C=JP/O=JPKI-TEST/OU=JPKI for digital signature/OU=rclab TEST authority, not J-LIS"
JPKI_FROM=20260110000000Z JPKI_TO=20351231235959Z

cat >"$WORK/jpki-ext.cnf" <<'EOF'
[ jpki_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ jpki_auth ]
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
certificatePolicies    = 1.2.392.200149.8.5.1.0.30
authorityInfoAccess    = OCSP;URI:http://ocsp.jpki-test.invalid/auth
authorityKeyIdentifier = keyid
subjectKeyIdentifier   = hash

[ jpki_sign ]
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = 1.2.392.200149.8.5.1.0.20
authorityInfoAccess    = OCSP;URI:http://ocsp.jpki-test.invalid/sign
subjectAltName         = @jpki_sign_san
authorityKeyIdentifier = keyid
subjectKeyIdentifier   = hash

# The invented holder: name, name alt, sex (2), era-coded birth date, address, address alt.
# FORMAT:UTF8 makes openssl take the bytes as UTF-8 (it would re-encode them as Latin-1).
[ jpki_sign_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:試験　花子
otherName.2 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:00000
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:2
otherName.4 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:319900301
otherName.5 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:東京都千代田区試験町１－２－３
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:000000000000000000
EOF

# jpki_issue NAME SUBJECT SERIAL FROM TO EXT ISSUER|self   (keys and certificates in $D/jpki)
jpki_issue() {
  local name="$1" subject="$2" serial="$3" start="$4" end="$5" ext="$6" issuer="$7"
  local J="$D/jpki" ca="$WORK/jca-$name"
  rm -rf "$ca"; mkdir -p "$ca/new"
  : >"$ca/index.txt"
  echo "$serial" >"$ca/serial"
  cat >"$ca/ca.cnf" <<EOF
[ ca ]
default_ca = tmp_ca
[ tmp_ca ]
dir              = $ca
database         = \$dir/index.txt
new_certs_dir    = \$dir/new
serial           = \$dir/serial
default_md       = sha256
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ policy_any ]
countryName            = optional
localityName           = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = optional
[ req ]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only
[ req_dn ]
CN = placeholder
EOF
  openssl req -new -utf8 -key "$J/$name.key.pem" -subj "$subject" -config "$ca/ca.cnf" -out "$ca/req.csr"
  local signopts
  if [ "$issuer" = self ]; then
    signopts=(-selfsign -keyfile "$J/$name.key.pem")
  else
    openssl x509 -inform DER -in "$J/$issuer.crt" -out "$ca/issuer.pem"
    signopts=(-cert "$ca/issuer.pem" -keyfile "$J/$issuer.key.pem")
  fi
  openssl ca -batch -notext -preserveDN -utf8 -config "$ca/ca.cnf" -md sha256 \
    -extfile "$WORK/jpki-ext.cnf" -extensions "$ext" \
    -startdate "$start" -enddate "$end" \
    "${signopts[@]}" -in "$ca/req.csr" -out "$ca/cert.pem" 2>"$ca/log" \
    || { cat "$ca/log" >&2; exit 1; }
  openssl x509 -in "$ca/cert.pem" -outform DER -out "$J/$name.crt"
}

JPKI_AUTH_EE="/C=JP/CN=TEST0A1B2C3D4E5F60718293A4B5C6"
JPKI_CHILD_EE="/C=JP/CN=TEST1F2E3D4C5B6A79685746352413"
JPKI_SIGN_EE="/C=JP/L=東京都/L=試験市/CN=TEST9F8E7D6C5B4A39281706F5E4D3"
JPKI_FILES="auth-ca sign-ca auth sign child-auth lookalike-auth-ca lookalike-auth auth-expired auth-not-yet-valid"
generate_jpki() {
  local J="$D/jpki"
  mkdir -p "$J"
  for n in $JPKI_FILES other; do newkey_rsa "$J/$n.key.pem"; done
  # Roots: 20 years, like J-LIS's.
  jpki_issue auth-ca "$JPKI_AUTH_DN" 01 20190101000000Z 20441231235959Z jpki_ca self
  jpki_issue sign-ca "$JPKI_SIGN_DN" 01 20190101000000Z 20441231235959Z jpki_ca self
  # End entities of the adult card and of the under-15 card (authentication only).
  jpki_issue auth "$JPKI_AUTH_EE" 1001 "$JPKI_FROM" "$JPKI_TO" jpki_auth auth-ca
  jpki_issue sign "$JPKI_SIGN_EE" 2001 "$JPKI_FROM" "$JPKI_TO" jpki_sign sign-ca
  jpki_issue child-auth "$JPKI_CHILD_EE" 1002 "$JPKI_FROM" "$JPKI_TO" jpki_auth auth-ca
  # Forgeries: a look-alike root (same DN, serial, dates; own key) and an EE with the
  # genuine EE's DN under it; an expired EE and a not-yet-valid one under the genuine root.
  jpki_issue lookalike-auth-ca "$JPKI_AUTH_DN" 01 20190101000000Z 20441231235959Z jpki_ca self
  jpki_issue lookalike-auth "$JPKI_AUTH_EE" 1001 "$JPKI_FROM" "$JPKI_TO" jpki_auth lookalike-auth-ca
  jpki_issue auth-expired "$JPKI_AUTH_EE" 1003 20200110000000Z 20250109235959Z jpki_auth auth-ca
  jpki_issue auth-not-yet-valid "$JPKI_AUTH_EE" 1004 20400110000000Z 20441231235959Z jpki_auth auth-ca
}

install_jpki() {
  D="$WORK/out"; mkdir -p "$D"
  generate_jpki
  chmod 644 "$D"/jpki/*
  mkdir -p "$OUT/jpki"
  rm -f "$OUT"/jpki/*.key.pem "$OUT"/jpki/*.crt
  cp "$D"/jpki/* "$OUT/jpki/"
}

verify_jpki() {
  local J="$OUT/jpki" T a b
  [ -d "$J" ] || return 0
  T="$(epoch 2027-01-01)"
  jpem() { openssl x509 -inform DER -in "$J/$1.crt" -out "$WORK/jv-$1.pem"; echo "$WORK/jv-$1.pem"; }
  jexpect() {
    local want="$1" leaf="$2" ca="$3" got; shift 3
    if openssl verify -x509_strict -CAfile "$(jpem "$ca")" "$@" "$(jpem "$leaf")" >/dev/null 2>&1; then got=ok; else got=fail; fi
    if [ "$got" = "$want" ]; then printf '  ok   jpki/%-20s <- %-18s expect %s\n' "$leaf" "$ca" "$want"
    else echo "FAIL jpki/$leaf <- $ca: expected $want, got $got" >&2; fail=1; fi
  }
  echo "JPKI TEST tree (jpki/):"
  jexpect ok   auth               auth-ca -attime "$T"
  jexpect ok   sign               sign-ca -attime "$T"
  jexpect ok   child-auth         auth-ca -attime "$T"
  jexpect fail auth               sign-ca -attime "$T"
  jexpect ok   lookalike-auth     lookalike-auth-ca -attime "$T"
  jexpect fail lookalike-auth     auth-ca -attime "$T"
  jexpect fail lookalike-auth-ca  auth-ca -attime "$T"
  jexpect fail auth-expired       auth-ca -attime "$T"
  jexpect ok   auth-expired       auth-ca -attime "$(epoch 2024-01-01)"
  jexpect fail auth-not-yet-valid auth-ca -attime "$T"
  jexpect ok   auth-not-yet-valid auth-ca -attime "$(epoch 2041-01-01)"
  for n in $JPKI_FILES; do
    head -c 2 "$J/$n.crt" | od -An -tx1 | grep -q '30 82' \
      || { echo "FAIL jpki/$n.crt does not start 30 82" >&2; fail=1; }
    a="$(openssl pkey -in "$J/$n.key.pem" -pubout -outform DER | openssl dgst -sha256 -r)"
    b="$(openssl x509 -inform DER -in "$J/$n.crt" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r)"
    [ "$a" = "$b" ] || { echo "FAIL jpki/$n.key.pem does not match its certificate" >&2; fail=1; }
  done
  a="$(openssl pkey -in "$J/other.key.pem" -pubout | openssl dgst -sha256 -r)"
  b="$(openssl pkey -in "$J/auth.key.pem" -pubout | openssl dgst -sha256 -r)"
  [ "$a" != "$b" ] || { echo "FAIL jpki/other.key.pem equals auth.key.pem" >&2; fail=1; }
}

# ---------------------------------------------------------------- verification
fail=0
epoch() { date -u -d "$1" +%s; }
pem() { openssl x509 -inform DER -in "$OUT/$1.crt" -out "$WORK/v-$1.pem"; echo "$WORK/v-$1.pem"; }

# expect ok|fail LEAF CA [extra openssl verify options...]
expect() {
  local want="$1" leaf="$2" ca="$3"; shift 3
  local got out
  if out="$(openssl verify -x509_strict -CAfile "$(pem "$ca")" "$@" "$(pem "$leaf")" 2>&1)"; then
    got=ok
  else
    got=fail
  fi
  local why when=""
  why="$(grep -o 'error [0-9]*.*' <<<"$out" | head -1 || true)"
  why="${why/ lookup:/:}"
  case "${1:-}" in
    -attime) when="at $(date -u -d "@$2" +%Y-%m-%d)" ;;
    -no_check_time) when="ignoring time" ;;
  esac
  set -- "$when"
  if [ "$got" = "$want" ]; then
    printf '  ok   %-24s <- %-14s %-16s expect %-4s %s\n' "$leaf" "$ca" "$*" "$want" "$why"
  else
    printf 'FAIL   %-24s <- %-14s %-16s expect %-4s got %s: %s\n' "$leaf" "$ca" "$*" "$want" "$got" "$out" >&2
    fail=1
  fi
}

# check_key NAME: the key in NAME.key.pem is PKCS#8 and (if NAME.crt exists) matches it.
check_key() {
  local name="$1"
  head -1 "$OUT/$name.key.pem" | grep -q '^-----BEGIN PRIVATE KEY-----$' \
    || { echo "FAIL $name.key.pem is not unencrypted PKCS#8" >&2; fail=1; }
  if [ -f "$OUT/$name.crt" ]; then
    local a b
    a="$(openssl pkey -in "$OUT/$name.key.pem" -pubout -outform DER | openssl dgst -sha256 -r)"
    b="$(openssl x509 -inform DER -in "$OUT/$name.crt" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r)"
    [ "$a" = "$b" ] || { echo "FAIL $name.key.pem does not match $name.crt" >&2; fail=1; }
  fi
}

verify_all() {
  local T1 T2 NOW
  T1="$(epoch 2025-01-01)"   # inside generation-1 validity
  T2="$(epoch 2027-01-01)"   # inside generation-2 validity
  NOW="$(epoch 2030-01-01)"  # a fixed "later" time, independent of the machine clock

  echo "chain verification (openssl verify -x509_strict):"
  expect ok   test-ca                test-ca   -attime "$T1"
  expect ok   test-card-signer       test-ca   -attime "$T1"
  expect ok   test-ca2               test-ca2  -attime "$T2"
  expect ok   test-card-signer2      test-ca2  -attime "$T2"
  expect ok   lookalike-card-signer  lookalike-ca  -attime "$T1"
  expect ok   lookalike-card-signer2 lookalike-ca2 -attime "$T2"
  expect fail lookalike-card-signer  test-ca   -attime "$T1"
  expect fail lookalike-card-signer2 test-ca2  -attime "$T2"
  expect fail lookalike-ca           test-ca   -attime "$T1"
  expect fail lookalike-ca2          test-ca2  -attime "$T2"
  # expired-card-signer predates test-ca: no instant makes both valid, so check the
  # signature with -no_check_time and the expiry at a fixed time.
  expect ok   expired-card-signer    test-ca   -no_check_time
  expect fail expired-card-signer    test-ca   -attime "$T1"
  expect ok   expired-card-signer2   test-ca2  -attime "$(epoch 2026-05-01)"
  expect fail expired-card-signer2   test-ca2  -attime "$T2"
  expect ok   expired-ca-card-signer expired-ca -attime "$(epoch 2020-01-01)"
  expect fail expired-ca-card-signer expired-ca -attime "$NOW"
  expect fail expired-ca-card-signer test-ca   -no_check_time
  expect fail test-card-signer       test-ca2  -attime "$T2"
  expect ok   selfsigned-card-signer  selfsigned-card-signer  -attime "$T1"
  expect ok   selfsigned-card-signer2 selfsigned-card-signer2 -attime "$T2"
  expect fail selfsigned-card-signer  test-ca   -attime "$T1"
  expect fail selfsigned-card-signer2 test-ca2  -attime "$T2"
  expect ok   expired-ca-long-signer  expired-ca -attime "$(epoch 2020-01-01)"
  expect fail expired-ca-long-signer  expired-ca -attime "$NOW"

  for n in test-ca test-card-signer test-ca2 test-card-signer2 \
           lookalike-ca lookalike-card-signer lookalike-ca2 lookalike-card-signer2 \
           expired-card-signer expired-card-signer2 expired-ca expired-ca-card-signer \
           selfsigned-card-signer selfsigned-card-signer2 expired-ca-long-signer \
           other-signer other-signer2; do
    check_key "$n"
  done
  # The bare keys must not be the genuine signer keys.
  local pk1 pk2
  for pair in other-signer:test-card-signer other-signer2:test-card-signer2; do
    pk1="$(openssl pkey -in "$OUT/${pair%%:*}.key.pem" -pubout | openssl dgst -sha256 -r)"
    pk2="$(openssl pkey -in "$OUT/${pair##*:}.key.pem" -pubout | openssl dgst -sha256 -r)"
    [ "$pk1" != "$pk2" ] || { echo "FAIL ${pair%%:*} equals ${pair##*:}" >&2; fail=1; }
  done
  cmp -s "$OUT/trust/test-ca.crt" "$OUT/test-ca.crt" && cmp -s "$OUT/trust/test-ca2.crt" "$OUT/test-ca2.crt" \
    && cmp -s "$OUT/trust/expired-ca.crt" "$OUT/expired-ca.crt" \
    && [ "$(ls "$OUT/trust" | wc -l)" -eq 3 ] \
    || { echo "FAIL trust/ must hold exactly test-ca.crt, test-ca2.crt and expired-ca.crt" >&2; fail=1; }

  local s2
  s2="$(stat -c %s "$OUT/test-card-signer2.crt")"
  [ "$s2" -le 602 ] || { echo "FAIL test-card-signer2.crt is $s2 bytes (> 602)" >&2; fail=1; }

  echo
  echo "certificates:"
  printf '  %-28s %5s  %-6s %-9s %-20s %-20s %s\n' FILE BYTES SERIAL KEY NOT_BEFORE NOT_AFTER SUBJECT_CN
  for f in "$OUT"/*.crt; do
    local n serial nb na subj alg
    n="$(basename "$f")"
    serial="$(openssl x509 -inform DER -in "$f" -noout -serial | cut -d= -f2)"
    nb="$(openssl x509 -inform DER -in "$f" -noout -startdate | cut -d= -f2)"
    na="$(openssl x509 -inform DER -in "$f" -noout -enddate | cut -d= -f2)"
    subj="$(openssl x509 -inform DER -in "$f" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')"
    alg="$(openssl x509 -inform DER -in "$f" -noout -text | grep -m1 -oE 'rsaEncryption|id-ecPublicKey')"
    [ "$alg" = rsaEncryption ] && alg=RSA-2048 || alg=P-384
    nb="$(date -u -d "$nb" +%Y-%m-%dT%H:%MZ)"; na="$(date -u -d "$na" +%Y-%m-%dT%H:%MZ)"
    printf '  %-28s %5d  %-6s %-9s %-20s %-20s %s\n' "$n" "$(stat -c %s "$f")" "$serial" "$alg" "$nb" "$na" "$subj"
  done
  echo
  echo "test-card-signer2.crt: $s2 bytes (limit 602)"
}

# ---------------------------------------------------------------- My Number platform keys (mynumber/)
# RSA-2048 TEST keys of the My Number platform's secure-messaging applications (spec notes
# B5, A4, A7). Nothing here is certified by X.509: the text AP's card key is vouched for by a
# card-verifiable certificate the profile compiler builds (signed by text-cv-ca), and the
# delivery keys are bare key pairs whose public halves a checker loads.
#   text-cv-ca        TEST CV CA of the text-support AP (signs EF 0004 and EF 0007)
#   text-card         the text AP's default key (integrity record 0003, self-signature)
#   text-delivery     the text AP's session-key delivery key (public half = EF 0006)
#   delivery          the specified card's TEST delivery key pair (在留AP SET SESSION KEY);
#                     public half as delivery.pub.raw (256-byte modulus, e = 65537),
#                     delivery.pub.der (DER SubjectPublicKeyInfo), delivery.pub.tlv
#                     (A1 82 01 09 { 90 03 010001, 91 82 0100 <n> })
#   other-delivery    a delivery key that is NOT the TEST one (forged card)
MN_KEYS="text-cv-ca text-card text-delivery delivery other-delivery"
generate_mynumber() {
  local M="$D/mynumber" n
  mkdir -p "$M"
  for n in $MN_KEYS; do newkey_rsa "$M/$n.key.pem"; done
  openssl pkey -in "$M/text-cv-ca.key.pem" -pubout -outform DER -out "$M/text-cv-ca.pub.der"
  openssl pkey -in "$M/delivery.key.pem" -pubout -outform DER -out "$M/delivery.pub.der"
  n="$(openssl rsa -in "$M/delivery.key.pem" -noout -modulus | cut -d= -f2)"
  printf '%s' "$n" | xxd -r -p >"$M/delivery.pub.raw"
  printf 'a1820109900301000191820100%s' "$n" | xxd -r -p >"$M/delivery.pub.tlv"
}

install_mynumber() {
  D="$WORK/out"; mkdir -p "$D"
  generate_mynumber
  chmod 644 "$D"/mynumber/*
  mkdir -p "$OUT/mynumber"
  rm -f "$OUT"/mynumber/*.key.pem "$OUT"/mynumber/*.pub.*
  cp "$D"/mynumber/* "$OUT/mynumber/"
}

verify_mynumber() {
  local M="$OUT/mynumber" n e
  [ -d "$M" ] || return 0
  echo "My Number platform keys (mynumber/):"
  for n in $MN_KEYS; do
    if openssl rsa -in "$M/$n.key.pem" -check -noout >/dev/null 2>&1 \
      && [ "$(openssl rsa -in "$M/$n.key.pem" -noout -text | sed -n '1p' | grep -o '2048 bit')" = "2048 bit" ]; then
      printf '  ok   mynumber/%-24s RSA-2048\n' "$n.key.pem"
    else echo "FAIL mynumber/$n.key.pem is not a valid RSA-2048 key" >&2; fail=1; fi
  done
  [ "$(stat -c %s "$M/delivery.pub.raw")" = 256 ] || { echo "FAIL delivery.pub.raw is not 256 bytes" >&2; fail=1; }
  [ "$(stat -c %s "$M/delivery.pub.tlv")" = 269 ] || { echo "FAIL delivery.pub.tlv is not 269 bytes" >&2; fail=1; }
  e="$(openssl rsa -in "$M/delivery.key.pem" -noout -modulus | cut -d= -f2 | tr 'A-F' 'a-f')"
  [ "$(od -An -tx1 -v "$M/delivery.pub.raw" | tr -d ' \n')" = "$e" ] || { echo "FAIL delivery.pub.raw is not the modulus" >&2; fail=1; }
  [ "$(od -An -tx1 -v -j 13 "$M/delivery.pub.tlv" | tr -d ' \n')" = "$e" ] || { echo "FAIL delivery.pub.tlv does not hold the modulus" >&2; fail=1; }
  [ "$(openssl pkey -in "$M/delivery.key.pem" -pubout -outform DER | openssl dgst -sha256 -r)" = "$(openssl dgst -sha256 -r <"$M/delivery.pub.der")" ] \
    || { echo "FAIL delivery.pub.der is not delivery.key.pem's public key" >&2; fail=1; }
  [ "$(openssl pkey -in "$M/delivery.key.pem" -pubout | openssl dgst -sha256 -r)" != "$(openssl pkey -in "$M/other-delivery.key.pem" -pubout | openssl dgst -sha256 -r)" ] \
    || { echo "FAIL other-delivery equals delivery" >&2; fail=1; }
  echo "  ok   mynumber/delivery.pub.{raw,der,tlv} hold delivery.key.pem's public key"
}

if [ "$MODE" = generate ]; then
  echo "generating NEW test keys and certificates in $OUT" >&2
  generate
  install_jpki
  install_mynumber
elif [ "$MODE" = jpki ]; then
  install_jpki
elif [ "$MODE" = mynumber ]; then
  install_mynumber
elif [ "$MODE" = additions ]; then
  D="$WORK/out"; mkdir -p "$D"
  cp "$OUT/expired-ca.crt" "$OUT/expired-ca.key.pem" "$D/"
  generate_additions
  for n in $ADDITIONS; do
    chmod 644 "$D/$n.crt" "$D/$n.key.pem"
    cp "$D/$n.crt" "$D/$n.key.pem" "$OUT/"
  done
fi
verify_all
verify_jpki
verify_mynumber
if [ "$fail" -ne 0 ]; then
  echo "PKI verification FAILED" >&2
  exit 1
fi
echo "PKI OK ($OUT)"
