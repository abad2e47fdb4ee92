//! A deterministic corpus of command sequences for golden-answer tests: the answers of the
//! card (and of a faulty card) to it are pinned by a digest, so a restructuring of the
//! command parser, the engine or the fault layer that changes one answer byte fails.
//!
//! The generator is a ChaCha20 stream (stable across crate versions, unlike proptest's value
//! trees) that mixes every class the card tells apart (`00`, `08`, `0C`, others), every
//! instruction it knows plus GET RESPONSE and unknown ones, P1/P2 around each rule, every
//! ISO case (short and extended), data that addresses real files and AIDs, SM data objects
//! sealed with the live session key, and byte-level damage. Genuine authentications and
//! VERIFYs are interleaved so the deep paths (SM reads, protected EFs) are reached.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rclab_emulator::card::{Access, CardImage, ElementaryFile};
use rclab_emulator::protocol::crypto::{Key, card_number_key};
use rclab_emulator::protocol::{AID_DF1, AID_DF2, AID_DF3, CommandBuilder, Generation, auth, sm};
use sha2::{Digest, Sha256};

/// One step of a corpus sequence.
pub enum Step {
    /// Send these commands, one after the other.
    Apdus(Vec<Vec<u8>>),
    /// GET CHALLENGE + MUTUAL AUTHENTICATE with the chip's own number (the reader-side
    /// randoms come from the corpus stream); the caller sends both and learns KSenc.
    Authenticate,
    /// Reset of the chip.
    Reset,
}

/// The card under test as the corpus drives it (see [`run`]).
pub type Driven<'a> = dyn FnMut(Option<&[u8]>) -> (Vec<u8>, Vec<u8>) + 'a;

/// Drives one sequence: `card(Some(apdu))` sends bytes and returns the card's reply (empty
/// when none) and anything else the caller wants pinned; `card(None)` resets the chip.
/// Returns the SHA-256 of every command and answer, in order.
pub fn run(image: &CardImage, seed: u64, steps: usize, card: &mut Driven) -> [u8; 32] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut digest = Sha256::new();
    let mut key: Option<Key> = None;
    let record = |digest: &mut Sha256, apdu: &[u8], (reply, pinned): &(Vec<u8>, Vec<u8>)| {
        for part in [apdu, reply, pinned] {
            digest.update((part.len() as u32).to_be_bytes());
            digest.update(part);
        }
    };
    for _ in 0..steps {
        match step(&mut rng, image, key.as_ref()) {
            Step::Apdus(apdus) => {
                for apdu in apdus {
                    let reply = card(Some(&apdu));
                    record(&mut digest, &apdu, &reply);
                }
            }
            Step::Reset => {
                card(None);
                key = None;
                digest.update(b"reset");
            }
            Step::Authenticate => {
                let generation = image.generation;
                let challenge = [0x00, 0x84, 0x00, 0x00, 0x08];
                let reply = card(Some(&challenge));
                record(&mut digest, &challenge, &reply);
                let reply = &reply.0;
                let Ok(rnd_icc) = <[u8; 8]>::try_from(&reply[..reply.len().saturating_sub(2)])
                else {
                    continue;
                };
                let mut rnd_ifd = [0; 8];
                let mut k_ifd = [0; 16];
                rng.fill_bytes(&mut rnd_ifd);
                rng.fill_bytes(&mut k_ifd);
                let number_key = card_number_key(image.chip_card_number.as_bytes());
                let cryptogram =
                    auth::cryptogram(generation, &number_key, &rnd_ifd, &rnd_icc, &k_ifd);
                let apdu = CommandBuilder::new(0x00, 0x82, 0x00, 0x00)
                    .data(cryptogram)
                    .ne(256)
                    .to_bytes();
                let reply = card(Some(&apdu));
                record(&mut digest, &apdu, &reply);
                let data = &reply.0[..reply.0.len().saturating_sub(2)];
                key =
                    auth::reader_finish(generation, &number_key, &rnd_ifd, &rnd_icc, &k_ifd, data)
                        .ok();
                if let Some(key) = key.filter(|_| rng.random_bool(0.7)) {
                    let apdu = CommandBuilder::new(0x08, 0x20, 0x00, 0x86)
                        .data(seal(
                            &mut rng,
                            generation,
                            Some(&key),
                            image.chip_card_number.as_bytes(),
                        ))
                        .to_bytes();
                    let reply = card(Some(&apdu));
                    record(&mut digest, &apdu, &reply);
                }
            }
        }
    }
    digest.finalize().into()
}

fn pick<T: Copy>(rng: &mut ChaCha20Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn step(rng: &mut ChaCha20Rng, image: &CardImage, key: Option<&Key>) -> Step {
    match rng.random_range(0..100) {
        0 => return Step::Reset,
        1..=6 => return Step::Authenticate,
        _ => {}
    }
    let mut apdus = if rng.random_bool(0.5) {
        plausible(rng, image, key)
    } else {
        vec![command(rng, image, key)]
    };
    let Some(apdu) = apdus.last_mut() else {
        return Step::Apdus(apdus);
    };
    // Byte-level damage to one command in eight.
    if rng.random_range(0..8) == 0 && !apdu.is_empty() {
        match rng.random_range(0..3) {
            0 => {
                let at = rng.random_range(0..apdu.len());
                apdu[at] = rng.random();
            }
            1 => apdu.truncate(rng.random_range(0..apdu.len())),
            _ => apdu.push(rng.random()),
        }
    }
    Step::Apdus(apdus)
}

fn command(rng: &mut ChaCha20Rng, image: &CardImage, key: Option<&Key>) -> Vec<u8> {
    let cla = match rng.random_range(0..12) {
        0..=5 => 0x00,
        6..=8 => 0x08,
        9 => 0x0C,
        10 => pick(rng, &[0x80, 0x04, 0x01, 0x10, 0xFF]),
        _ => rng.random(),
    };
    let ins = match rng.random_range(0..16) {
        0..=2 => 0xA4,
        3 => 0x84,
        4 => 0x82,
        5..=6 => 0x20,
        7..=11 => 0xB0,
        12 => 0xC0,
        13 => pick(rng, &[0xB1, 0xD6, 0x88, 0xCA, 0x00]),
        _ => rng.random(),
    };
    let sfis: Vec<u8> = image.files.iter().map(|f| f.id.sfi).collect();
    let fids: Vec<u16> = image.files.iter().filter_map(|f| f.fid).collect();
    let (any1, any2): (u8, u8) = (rng.random(), rng.random());
    let (p1, p2) = match ins {
        0xA4 => (
            pick(rng, &[0x00, 0x00, 0x02, 0x04, 0x04, 0x01, 0x08, any1]),
            pick(rng, &[0x0C, 0x0C, 0x00, 0x04, any2]),
        ),
        0xB0 => {
            let sfi = if rng.random_bool(0.7) && !sfis.is_empty() {
                pick(rng, &sfis)
            } else {
                rng.random_range(0..0x20)
            };
            let p1 = match rng.random_range(0..6) {
                0..=2 => 0x80 | sfi,
                3 => pick(rng, &[0xA0, 0xC0, 0xE0]) | sfi,
                4 => rng.random_range(0..0x80),
                _ => any1,
            };
            let p2 = pick(rng, &[0x00, 0x00, 0x01, 0x10, 0x80, 0xFF, any2]);
            (p1, p2)
        }
        0x20 if rng.random_bool(0.8) => (0x00, 0x86),
        _ if rng.random_bool(0.8) => (0x00, 0x00),
        _ => (any1, any2),
    };
    let aids = [&AID_DF1[..], &AID_DF2[..], &AID_DF3[..]];
    let any16: u16 = rng.random();
    let data: Vec<u8> = match rng.random_range(0..14) {
        0..=3 => Vec::new(),
        4 => vec![0x3F, 0x00],
        5 if !fids.is_empty() => pick(rng, &fids).to_be_bytes().to_vec(),
        5 => rng.random::<[u8; 2]>().to_vec(),
        6 => pick(rng, &aids).to_vec(),
        7 => {
            let aid = pick(rng, &aids);
            match rng.random_range(0..3) {
                0 => aid[..rng.random_range(1..aid.len())].to_vec(),
                1 => [aid, &[0x00][..]].concat(),
                _ => {
                    let mut a = aid.to_vec();
                    a[15] ^= 1;
                    a
                }
            }
        }
        8 => (0..40).map(|_| rng.random()).collect(),
        9 => sm::expected_length(pick(rng, &[0, 0, 1, 8, 0x100, 0xFFFF, any16])).to_vec(),
        10 => {
            let mut d = sm::expected_length(rng.random_range(0..0x200)).to_vec();
            let at = rng.random_range(0..d.len());
            d[at] ^= 1 << rng.random_range(0..8);
            d
        }
        11 => seal(
            rng,
            image.generation,
            key,
            image.chip_card_number.as_bytes(),
        ),
        12 => {
            let plain: [u8; 12] = rng.random();
            seal(rng, image.generation, key, &plain)
        }
        _ => {
            let len = pick(rng, &[1, 3, 16, 255, 256, 300]);
            (0..len).map(|_| rng.random()).collect()
        }
    };
    let mut builder = CommandBuilder::new(cla, ins, p1, p2).data(data);
    match rng.random_range(0..9) {
        0..=1 => {}
        2 => builder = builder.ne(256),
        3 => builder = builder.ne(8),
        4 => builder = builder.ne(rng.random_range(1..=256)),
        5 => builder = builder.ne(65_536).extended(),
        6 => builder = builder.ne(256).extended(),
        7 => builder = builder.ne(rng.random_range(1..=65_536)).extended(),
        _ => builder = builder.ne(pick(rng, &[1, 4, 0x20, 0x200, 0x1000])),
    }
    if rng.random_range(0..10) == 0 {
        builder = builder.extended();
    }
    builder.to_bytes()
}

/// A command a reader would send, with its parameters varied: SELECT of a DF, the MF or
/// an EF, VERIFY of the chip's number, plain and SM READ BINARY by SFI or offset (half of
/// the reads after a SELECT of the EF's DF).
fn plausible(rng: &mut ChaCha20Rng, image: &CardImage, key: Option<&Key>) -> Vec<Vec<u8>> {
    let ef = &image.files[rng.random_range(0..image.files.len())];
    let read = one_plausible(rng, image, key, ef);
    if matches!(read.get(1), Some(0xB0)) && rng.random_bool(0.5) {
        let select = match ef.id.df.aid() {
            None => CommandBuilder::new(0x00, 0xA4, 0x00, 0x0C).data([0x3F, 0x00]),
            Some(aid) => CommandBuilder::new(0x00, 0xA4, 0x04, 0x0C).data(aid),
        };
        vec![select.to_bytes(), read]
    } else {
        vec![read]
    }
}

fn one_plausible(
    rng: &mut ChaCha20Rng,
    image: &CardImage,
    key: Option<&Key>,
    ef: &ElementaryFile,
) -> Vec<u8> {
    let aids = [&AID_DF1[..], &AID_DF2[..], &AID_DF3[..]];
    let offset: u8 = pick(rng, &[0, 0, 0, 1, 0x10, 0x80, 0xFF]);
    let len: u16 = pick(rng, &[0, 0, 1, 8, 0x20, 0x100, 0x400, 0xFFFF]);
    // Most reads use the form the EF's access condition asks for.
    let fitting = match ef.access {
        Access::AuthSm => 5,
        Access::Free | Access::Auth => 7,
    };
    let choice = if rng.random_bool(0.3) {
        fitting
    } else {
        rng.random_range(0..10)
    };
    match choice {
        0 | 1 => CommandBuilder::new(0x00, 0xA4, 0x04, 0x0C)
            .data(pick(rng, &aids))
            .to_bytes(),
        2 => CommandBuilder::new(0x00, 0xA4, 0x00, 0x0C)
            .data([0x3F, 0x00])
            .to_bytes(),
        3 => match ef.fid {
            Some(fid) => CommandBuilder::new(0x00, 0xA4, 0x02, 0x0C)
                .data(fid.to_be_bytes())
                .to_bytes(),
            None => vec![0x00, 0xA4, 0x00, 0x00],
        },
        4 => CommandBuilder::new(0x08, 0x20, 0x00, 0x86)
            .data(seal(
                rng,
                image.generation,
                key,
                image.chip_card_number.as_bytes(),
            ))
            .to_bytes(),
        5 | 6 => {
            let p1 = if rng.random_bool(0.8) {
                0x80 | ef.id.sfi
            } else {
                0x00
            };
            let mut b = CommandBuilder::new(0x08, 0xB0, p1, offset).data(sm::expected_length(len));
            b = match rng.random_range(0..5) {
                0 => b,
                1 => b.ne(65_536).extended(),
                2 => b.ne(256),
                3 => b.ne(rng.random_range(1..=256)),
                _ => b.ne(65_536).extended(),
            };
            b.to_bytes()
        }
        _ => {
            let p1 = if rng.random_bool(0.8) {
                0x80 | ef.id.sfi
            } else {
                0x00
            };
            let ne = match rng.random_range(0..4) {
                0 => 256,
                1 => usize::from(len.max(1)),
                2 => rng.random_range(1..=256),
                _ => 65_536,
            };
            let mut b = CommandBuilder::new(0x00, 0xB0, p1, offset).ne(ne);
            if rng.random_bool(0.3) {
                b = b.extended();
            }
            b.to_bytes()
        }
    }
}

/// SM data: sealed with the session key when there is one, else with a wrong key.
fn seal(rng: &mut ChaCha20Rng, generation: Generation, key: Option<&Key>, plain: &[u8]) -> Vec<u8> {
    let wrong: Key = rng.random();
    sm::seal(generation, key.unwrap_or(&wrong), plain).expect("short plaintext seals")
}

/// Upper-case hex of a digest.
pub fn hex(digest: [u8; 32]) -> String {
    hex::encode_upper(digest)
}
