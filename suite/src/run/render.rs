//! The card as a person sees it, for the HTML report: the chip's images (CCITT G4 TIFF
//! front/name/address images, JPEG 2000 face) decoded in-process and re-encoded as PNG
//! `data:` URIs, so that `report.html` stays one self-contained file.
//!
//! Decoders: `tiff` (image-rs, with its `fax` feature: CCITT T.6 through the `fax` crate)
//! and `hayro-jpeg2000` (pure Rust, no C library, `unsafe` forbidden); `png` writes. Pure
//! Rust crates rather than Debian's `opj_decompress`/`tiffcp`: no process per image (the
//! report of the full example matrix renders in well under a second), and the same
//! behaviour wherever the suite is built.

use std::collections::HashMap;
use std::io::Cursor;

use serde::Serialize;

use rclab_emulator::card::EfId;
use rclab_emulator::profile::Profile;

use super::data::{self, CardFields};
use crate::checker::data::{ImageInfo, trim_zeros};

/// Largest image rendered (pixels); a header declaring more is shown as not rendered.
pub const MAX_PIXELS: u64 = 4_000_000;

/// One rendered image.
#[derive(Clone, Debug, Serialize)]
pub struct Rendered {
    /// `front`, `face`, `name` or `address`.
    pub role: &'static str,
    /// `data:image/png;base64,…`, or empty when it could not be rendered.
    pub png: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Why it was not rendered (or the format it was rendered from).
    pub note: String,
}

/// One profile's card: its images and the fields its chip holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CardView {
    /// The card's images, rendered for the HTML report.
    pub images: Vec<Rendered>,
    /// The fields the profile put on the chip, to compare reports with.
    pub truth: Option<CardFields>,
}

/// Every profile's card view, by profile name. Equal images are decoded once.
#[derive(Clone, Debug, Default)]
pub struct Cards {
    /// Each profile's view, by profile file name.
    pub by_profile: HashMap<String, CardView>,
}

impl Cards {
    /// Renders the images and fields of every profile.
    pub fn from_profiles(profiles: &[Profile]) -> Cards {
        let mut cache: HashMap<String, Rendered> = HashMap::new();
        let mut by_profile = HashMap::new();
        for profile in profiles {
            let truth = data::truth(&profile.image);
            let mut images = Vec::new();
            for (role, value) in chip_images(profile) {
                let digest = ImageInfo::of(value).sha256;
                let rendered = cache
                    .entry(digest)
                    .or_insert_with(|| render(role, value))
                    .clone();
                images.push(Rendered { role, ..rendered });
            }
            by_profile.insert(
                profile.name.clone(),
                CardView {
                    images,
                    truth: Some(truth),
                },
            );
        }
        Cards { by_profile }
    }
}

/// The image values on the chip, by role, in the order a person looks at them.
fn chip_images(profile: &Profile) -> Vec<(&'static str, &[u8])> {
    use rclab_emulator::card::Df;
    use rclab_emulator::protocol::tlv;
    let mut out = Vec::new();
    let files = &profile.image.files;
    let value = |df: Df, sfi: u8, tag: u16| -> Option<&[u8]> {
        let content = &files.iter().find(|f| f.id == EfId::new(df, sfi))?.content;
        let tlvs = tlv::parse_all(content).ok()?;
        tlv::find(&tlvs, tag)
    };
    let wanted: &[(&'static str, Df, u8, u16)] = match profile.generation {
        rclab_emulator::protocol::Generation::First => &[
            ("front", Df::Df1, 0x05, 0xD0),
            ("face", Df::Df1, 0x06, 0xD1),
        ],
        rclab_emulator::protocol::Generation::Second => &[
            ("face", Df::Df1, 0x04, 0xD1),
            ("name", Df::Df1, 0x04, 0xD0),
            ("address", Df::Df1, 0x06, 0xDFD1),
        ],
    };
    for (role, df, sfi, tag) in wanted {
        if let Some(v) = value(*df, *sfi, *tag) {
            out.push((*role, v));
        }
    }
    out
}

/// Decodes one chip image to PNG; never panics, whatever the bytes.
pub fn render(role: &'static str, value: &[u8]) -> Rendered {
    let info = ImageInfo::of(value);
    // The decoders are third-party code meeting a profile's bytes: a panic in one is
    // caught and shown as "not rendered", never the end of the report.
    let decoded = std::panic::catch_unwind(|| match info.format {
        "tiff" => decode_tiff(value),
        "jp2" | "j2k" => decode_jpeg2000(trim_zeros(value)),
        "empty" => Err("no image stored".to_owned()),
        _ => Err("not a TIFF or JPEG 2000 image".to_owned()),
    })
    .unwrap_or_else(|_| Err("the decoder failed on these bytes".to_owned()));
    match decoded.and_then(|gray_or_rgb| encode_png(&gray_or_rgb).map(|png| (gray_or_rgb, png))) {
        Ok((pixels, png)) => Rendered {
            role,
            png: format!("data:image/png;base64,{}", base64(&png)),
            width: pixels.width,
            height: pixels.height,
            note: info.format.to_owned(),
        },
        Err(why) => Rendered {
            role,
            png: String::new(),
            width: 0,
            height: 0,
            note: why,
        },
    }
}

/// 8-bit pixels, 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels.
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per pixel.
    pub channels: u8,
    /// Row-major pixel bytes.
    pub data: Vec<u8>,
}

fn check_size(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}×{height} pixels: not rendered (limit {MAX_PIXELS})"
        ));
    }
    Ok(())
}

fn decode_tiff(value: &[u8]) -> Result<Pixels, String> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    let mut decoder = Decoder::new(Cursor::new(value)).map_err(|e| format!("TIFF: {e}"))?;
    let (width, height) = decoder.dimensions().map_err(|e| format!("TIFF: {e}"))?;
    check_size(width, height)?;
    let bits = decoder.get_tag_u32(Tag::BitsPerSample).unwrap_or(1);
    // The decoder hands WhiteIsZero images (the fax default) over already inverted: every
    // result reads as BlackIsZero, 0 black.
    let samples = decoder.get_tag_u32(Tag::SamplesPerPixel).unwrap_or(1);
    let DecodingResult::U8(raw) = decoder.read_image().map_err(|e| format!("TIFF: {e}"))? else {
        return Err("TIFF: not 8-bit or bi-level samples".into());
    };
    let (w, h) = (width as usize, height as usize);
    let data = match (bits, samples) {
        (1, 1) => {
            let stride = w.div_ceil(8);
            if raw.len() < stride * h {
                return Err("TIFF: fewer pixels than its size".into());
            }
            let mut out = Vec::with_capacity(w * h);
            for row in raw.chunks(stride).take(h) {
                for x in 0..w {
                    let bit = row[x / 8] >> (7 - x % 8) & 1;
                    out.push(if bit == 1 { 255 } else { 0 });
                }
            }
            out
        }
        (8, 1) if raw.len() >= w * h => raw[..w * h].to_vec(),
        _ => return Err(format!("TIFF: {bits}-bit, {samples} samples: not rendered")),
    };
    Ok(Pixels {
        width,
        height,
        channels: 1,
        data,
    })
}

fn decode_jpeg2000(value: &[u8]) -> Result<Pixels, String> {
    use hayro_jpeg2000::{DecodeSettings, Image};
    let image =
        Image::new(value, &DecodeSettings::default()).map_err(|e| format!("JPEG 2000: {e:?}"))?;
    let (width, height) = (image.width(), image.height());
    check_size(width, height)?;
    let channels = image.color_space().num_channels() + u8::from(image.has_alpha());
    let data = image.decode().map_err(|e| format!("JPEG 2000: {e:?}"))?;
    if !(1..=4).contains(&channels) {
        return Err(format!("JPEG 2000: {channels} channels: not rendered"));
    }
    Ok(Pixels {
        width,
        height,
        channels,
        data,
    })
}

fn encode_png(pixels: &Pixels) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, pixels.width, pixels.height);
    encoder.set_color(match pixels.channels {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| format!("PNG: {e}"))?;
    writer
        .write_image_data(&pixels.data)
        .map_err(|e| format!("PNG: {e}"))?;
    writer.finish().map_err(|e| format!("PNG: {e}"))?;
    Ok(out)
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_vector_images_render() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/images");
        for (file, role) in [
            ("gen1-residence-front.tif", "front"),
            ("gen1-residence-face.jp2", "face"),
            ("gen2-residence-name.tif", "name"),
        ] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let mut padded = bytes.clone();
            padded.extend_from_slice(&[0; 100]);
            let r = render(role, &padded);
            assert!(
                r.png.starts_with("data:image/png;base64,"),
                "{file}: {}",
                r.note
            );
            assert!(r.width > 10 && r.height > 10, "{file}");
        }
    }

    /// Before: WhiteIsZero fax images were inverted twice (white text on black).
    #[test]
    fn bilevel_images_are_black_on_white() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/images");
        for file in ["gen1-residence-front.tif", "gen2-residence-name.tif"] {
            let pixels = decode_tiff(&std::fs::read(dir.join(file)).unwrap()).unwrap();
            let white = pixels.data.iter().filter(|&&p| p == 255).count();
            assert!(
                white * 2 > pixels.data.len(),
                "{file}: {white} of {} pixels white",
                pixels.data.len()
            );
        }
    }

    #[test]
    fn garbage_is_not_rendered_and_does_not_panic() {
        for bytes in [
            &b""[..],
            b"II*\0garbage",
            b"\0\0\0\x0CjP  \r\n\x87\ngarbage",
            b"\xFF\x4F\xFF\x51",
            &[0xAB; 300],
        ] {
            let r = render("face", bytes);
            assert!(r.png.is_empty());
            assert!(!r.note.is_empty());
        }
    }
}
