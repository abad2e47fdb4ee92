#!/usr/bin/env bash
# Regenerates the synthetic card images used by the rclab test vectors.
#
#   vectors/images/generate.sh
#
# Everything here is invented: the people, numbers and addresses do not exist,
# and the faces are cartoons drawn from ImageMagick primitives (no photographs).
#
# Outputs (written next to this script):
#   gen1-*-front.tif        bilevel TIFF, CCITT Group 4 (T.6), one strip, <= 7000 bytes
#   gen2-*-{name,address}.tif bilevel TIFF, CCITT Group 4, one strip,  <= 2500 bytes
#   *-face.jp2              colour JPEG 2000 (JP2 box container),       <= 3000 bytes
#
# Needs (Debian 12 package names; installed with apt-get when missing and run as root):
#   imagemagick libopenjp2-tools libtiff-tools fonts-ipafont-gothic
set -euo pipefail
export LC_ALL=C.UTF-8 TZ=UTC

OUT="$(cd "$(dirname "$0")" && pwd)"

# ---------------------------------------------------------------- dependencies
FONT_DIR=/usr/share/fonts/opentype/ipafont-gothic
need=()
command -v convert-im6.q16 >/dev/null 2>&1 || command -v magick >/dev/null 2>&1 || need+=(imagemagick)
command -v opj_compress >/dev/null 2>&1 && command -v opj_decompress >/dev/null 2>&1 \
  && command -v opj_dump >/dev/null 2>&1 || need+=(libopenjp2-tools)
command -v tiffinfo >/dev/null 2>&1 || need+=(libtiff-tools)
[ -f "$FONT_DIR/ipagp.ttf" ] && [ -f "$FONT_DIR/ipag.ttf" ] || need+=(fonts-ipafont-gothic)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 \
    || { "${sudo[@]}" apt-get update >&2 \
         && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

# Use ImageMagick itself (not any wrapper that may sit earlier on PATH).
if command -v convert-im6.q16 >/dev/null 2>&1; then
  IM=(convert-im6.q16)
else
  IM=(magick)
fi

FP="$FONT_DIR/ipagp.ttf"   # IPA P Gothic (proportional): Japanese + Latin
FM="$FONT_DIR/ipag.ttf"    # IPA Gothic (fixed pitch): numbers

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- helpers
# Write a bilevel, single-strip, CCITT G4 TIFF with no date/software noise.
# $1 = input image (any format IM reads), $2 = output .tif
to_g4() {
  local rows
  rows="$("${IM[@]}" "$1" -format '%h' info:)"
  # Go through PBM first so no colour metadata (white point, primaries) is carried over.
  "${IM[@]}" "$1" -colorspace Gray -threshold 50% "PBM:$WORK/bw.pbm"
  "${IM[@]}" "$WORK/bw.pbm" -strip +set date:create +set date:modify +set date:timestamp \
    -type bilevel \
    -define tiff:rows-per-strip="$rows" -define tiff:fill-order=msb \
    -units PixelsPerInch -density 300 \
    -compress Group4 "TIFF:$2"
}

# One line of large text on white, trimmed and padded. $1 = text, $2 = point size, $3 = out
text_line() {
  "${IM[@]}" -size 1600x160 xc:white +antialias -font "$FP" -pointsize "$2" -fill black \
    -gravity West -annotate +20+0 "$1" \
    -trim +repage -bordercolor white -border 12 "$WORK/line.png"
  to_g4 "$WORK/line.png" "$3"
}

# A card front. $1 = out, remaining args are IM drawing options.
card_front() {
  local out="$1"; shift
  "${IM[@]}" -size 856x540 xc:white +antialias -fill none -stroke black -strokewidth 2 \
    -draw 'roundrectangle 4,4 851,535 18,18' \
    -draw 'rectangle 650,150 830,380' \
    -stroke none -fill black \
    "$@" \
    "$WORK/front.png"
  to_g4 "$WORK/front.png" "$out"
}

# Cartoon face, 120x150. $1 = out, $2 background, $3 skin, $4 hair, $5 eyes, $6 clothes, $7 hair style
face() {
  local out="$1" bg="$2" skin="$3" hair="$4" eye="$5" cloth="$6" style="$7"
  local hairdraw
  case "$style" in
    long)  hairdraw=(-fill "$hair" -draw 'roundrectangle 22,28 98,120 30,30') ;;
    short) hairdraw=(-fill "$hair" -draw 'ellipse 60,52 40,34 180,360') ;;
    bun)   hairdraw=(-fill "$hair" -draw 'circle 60,14 60,30' -draw 'ellipse 60,52 40,34 180,360') ;;
    spiky) hairdraw=(-fill "$hair" -draw 'polygon 22,56 28,22 40,38 50,14 60,34 72,12 80,36 94,20 98,56') ;;
  esac
  "${IM[@]}" -size 120x150 "xc:$bg" \
    "${hairdraw[@]}" \
    -fill "$cloth" -draw 'ellipse 60,158 52,36 0,360' \
    -fill "$skin" -draw 'rectangle 50,104 70,128' \
    -fill "$skin" -draw 'ellipse 60,72 34,42 0,360' \
    -draw 'ellipse 26,74 6,10 0,360' -draw 'ellipse 94,74 6,10 0,360' \
    "${hairdraw[@]:0:2}" -draw 'ellipse 60,40 34,14 180,360' \
    -fill white -draw 'ellipse 47,68 8,6 0,360' -draw 'ellipse 73,68 8,6 0,360' \
    -fill "$eye" -draw 'circle 47,68 47,72' -draw 'circle 73,68 73,72' \
    -stroke '#40302a' -strokewidth 2 -fill none \
    -draw 'line 38,56 55,58' -draw 'line 65,58 82,56' \
    -draw 'line 60,72 56,86' -draw 'line 56,86 62,87' \
    -stroke '#a03040' -strokewidth 3 -draw 'arc 46,88 74,104 20,160' \
    -strip -depth 8 -type TrueColor "PPM:$WORK/face.ppm"
  rm -f "$out"
  # Lossy, compression ratio 28:1 (54000 raw bytes -> ~1.9 kB), 4 resolution levels.
  opj_compress -i "$WORK/face.ppm" -o "$WORK/face.jp2" -r 28 -n 4 >"$WORK/opj.log" 2>&1 \
    || { cat "$WORK/opj.log" >&2; exit 1; }
  # Decode back to prove it is a valid codestream.
  opj_decompress -i "$WORK/face.jp2" -o "$WORK/check.ppm" >"$WORK/opj.log" 2>&1 \
    || { cat "$WORK/opj.log" >&2; exit 1; }
  mv "$WORK/face.jp2" "$out"
}

# ---------------------------------------------------------------- generation 1 fronts
card_front "$OUT/gen1-residence-front.tif" \
  -font "$FP" -pointsize 40 -annotate +28+62 '在留カード' \
  -pointsize 20 -annotate +252+62 'RESIDENCE CARD' \
  -pointsize 18 -annotate +560+40 '番号' \
  -font "$FM" -pointsize 26 -annotate +610+42 'AB12345678CD' \
  -font "$FP" -pointsize 16 -annotate +28+112 '氏名' -annotate +28+130 'NAME' \
  -pointsize 34 -annotate +100+128 'SILVA EXAMPLE ANA' \
  -pointsize 18 -annotate +28+172 '生年月日 1990年04月12日' \
  -annotate +300+172 '性別 F. 女' \
  -annotate +28+206 '国籍・地域 ブラジル' \
  -annotate +28+246 '住居地 東京都新宿区試験町1-2-3 サンプルハイツ101' \
  -annotate +28+292 '在留資格' -pointsize 28 -annotate +120+294 '留学' \
  -pointsize 18 -annotate +190+292 'College Student' \
  -annotate +28+334 '在留期間(満了日) 2年 (2027年03月31日)' \
  -annotate +28+372 '許可の種類 在留期間更新許可' \
  -pointsize 14 -annotate +688+270 '写 真' -annotate +684+290 'PHOTO' \
  -pointsize 22 -annotate +28+430 'このカードは 2027年03月31日 まで有効 です。' \
  -font "$FP" -pointsize 30 -annotate +250+500 'TEST CARD – NOT VALID'

card_front "$OUT/gen1-sprc-front.tif" \
  -font "$FP" -pointsize 34 -annotate +28+60 '特別永住者証明書' \
  -pointsize 15 -annotate +28+84 'SPECIAL PERMANENT RESIDENT CERTIFICATE' \
  -pointsize 18 -annotate +560+40 '番号' \
  -font "$FM" -pointsize 26 -annotate +610+42 'CD98765432EF' \
  -font "$FP" -pointsize 16 -annotate +28+122 '氏名' -annotate +28+140 'NAME' \
  -pointsize 34 -annotate +100+138 'KIM EXAMPLE JUNHO' \
  -pointsize 18 -annotate +28+186 '生年月日 1975年11月03日' \
  -annotate +300+186 '性別 M. 男' \
  -annotate +28+224 '国籍・地域 韓国' \
  -annotate +28+266 '住居地 大阪府大阪市北区見本町4-5-6' \
  -pointsize 14 -annotate +688+270 '写 真' -annotate +684+290 'PHOTO' \
  -pointsize 22 -annotate +28+360 'この証明書は 2030年11月03日 まで有効 です。' \
  -font "$FP" -pointsize 30 -annotate +250+500 'TEST CARD – NOT VALID'

# ---------------------------------------------------------------- generation 2 name / address images
text_line 'TRAN EXAMPLE BAO'  56 "$OUT/gen2-residence-name.tif"
text_line 'LEE EXAMPLE SUJIN' 56 "$OUT/gen2-sprc-name.tif"
text_line 'TRAN EXAMPLE AN'   56 "$OUT/gen2-infant-name.tif"
text_line '愛知県名古屋市中区試験通7-8-9 テストマンション202' 40 "$OUT/gen2-residence-address.tif"
text_line '福岡県福岡市博多区見本4-3-2'                       40 "$OUT/gen2-sprc-address.tif"
text_line '愛知県名古屋市中区試験通7-8-9 テストマンション202' 40 "$OUT/gen2-infant-address.tif"

# ---------------------------------------------------------------- faces (the infant has none)
face "$OUT/gen1-residence-face.jp2" '#cfe3f5' '#e8b98f' '#3a2414' '#2e6b3a' '#c0392b' long
face "$OUT/gen1-sprc-face.jp2"      '#e9e4d0' '#f1cba6' '#161616' '#3b2a1e' '#2c3e75' short
face "$OUT/gen2-residence-face.jp2" '#d8f0dc' '#c98e62' '#111111' '#4a3020' '#e6a11f' spiky
face "$OUT/gen2-sprc-face.jp2"      '#f3dbe6' '#f5d5b8' '#6b3f1f' '#1f4f8f' '#5a8f3c' bun

# ---------------------------------------------------------------- verification
fail=0
check_tif() {
  local f="$1" limit="$2" info
  info="$(tiffinfo "$f" 2>&1)" || { echo "FAIL $f: tiffinfo error" >&2; fail=1; return; }
  grep -q 'Compression Scheme: CCITT Group 4' <<<"$info" || { echo "FAIL $f: not CCITT G4" >&2; fail=1; }
  grep -q 'Bits/Sample: 1' <<<"$info"                    || { echo "FAIL $f: not 1 bit/sample" >&2; fail=1; }
  grep -q 'Samples/Pixel: 1' <<<"$info"                  || { echo "FAIL $f: not 1 sample/pixel" >&2; fail=1; }
  local h rps
  h="$(sed -n 's/.*Image Width: [0-9]* Image Length: \([0-9]*\).*/\1/p' <<<"$info")"
  rps="$(sed -n 's/.*Rows\/Strip: \([0-9]*\).*/\1/p' <<<"$info")"
  [ -n "$h" ] && [ "$rps" = "$h" ] || { echo "FAIL $f: not a single strip (rows/strip=$rps, length=$h)" >&2; fail=1; }
  # Decode every strip (tiffinfo -D) to prove the G4 data is well formed.
  tiffinfo -D "$f" >/dev/null 2>"$WORK/err" && ! [ -s "$WORK/err" ] \
    || { echo "FAIL $f: decode error: $(cat "$WORK/err")" >&2; fail=1; }
  check_size "$f" "$limit" "$(sed -n 's/.*Image Width: \([0-9]*\) Image Length: \([0-9]*\).*/\1x\2/p' <<<"$info") G4"
}
check_jp2() {
  local f="$1" limit="$2" sig dims
  sig="$(head -c 12 "$f" | od -An -tx1 | tr -d ' \n')"
  [ "$sig" = "0000000c6a5020200d0a870a" ] || { echo "FAIL $f: no JP2 signature box" >&2; fail=1; }
  opj_dump -i "$f" >"$WORK/dump" 2>&1 || { echo "FAIL $f: opj_dump error" >&2; fail=1; }
  grep -q 'numcomps=3' "$WORK/dump" || { echo "FAIL $f: not 3 components" >&2; fail=1; }
  opj_decompress -i "$f" -o "$WORK/dec.ppm" >/dev/null 2>&1 || { echo "FAIL $f: does not decode" >&2; fail=1; }
  dims="$("${IM[@]}" "$WORK/dec.ppm" -format '%wx%h' info:)"
  check_size "$f" "$limit" "$dims JP2"
}
check_size() {
  local f="$1" limit="$2" what="$3" size
  size="$(stat -c %s "$f")"
  if [ "$size" -gt "$limit" ]; then
    printf 'FAIL %-28s %5d bytes > %d  (%s)\n' "$(basename "$f")" "$size" "$limit" "$what" >&2
    fail=1
  else
    printf '  ok %-28s %5d bytes <= %d  (%s)\n' "$(basename "$f")" "$size" "$limit" "$what"
  fi
}

for f in gen1-residence-front gen1-sprc-front; do check_tif "$OUT/$f.tif" 7000; done
for f in gen2-residence-name gen2-sprc-name gen2-infant-name \
         gen2-residence-address gen2-sprc-address gen2-infant-address; do
  check_tif "$OUT/$f.tif" 2500
done
for f in gen1-residence-face gen1-sprc-face gen2-residence-face gen2-sprc-face; do
  check_jp2 "$OUT/$f.jp2" 3000
done

if [ "$fail" -ne 0 ]; then
  echo "image generation FAILED" >&2
  exit 1
fi
echo "all images generated in $OUT"
