//! The specified residence card (07/08) over the real stack (pcscd + vpcd): SELECT of the
//! JPKI AP, then the 在留AP's whole read at the default knobs — C0/C1 plain, SET SESSION KEY
//! (an extended APDU) under the TEST delivery key, VERIFY of the card number and DF1 under
//! the counter SM, DF2 plain, DF3 — every byte compared with what the profile compiled, and
//! the time it took printed (the figure in the README).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rclab_emulator::my_number::residence_ap::RESIDENCE_AP_AID;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::protocol::counter_sm::ReaderCounterSm;
use rclab_emulator::protocol::key_delivery::{self, DeliveryPublicKey, PublicKeyFormat};
use rclab_emulator::protocol::layout::{Df, EfId};
use rclab_emulator::transport::Channel;
use rclab_suite::pcsc_channel::PcscChannel;
use rclab_suite::run::host::{Access, CardChange, CardHost, Vpcd};

fn load(name: &str) -> Profile {
    let path = common::vectors().join(format!("profiles/my-number/{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A reader other real-stack tests do not start from (the host waits while it is busy).
fn port() -> u16 {
    let ports = rclab_suite::run::vpcd_ports();
    ports
        .len()
        .checked_sub(3)
        .and_then(|i| ports.get(i))
        .or(ports.last())
        .copied()
        .unwrap_or(rclab_emulator::transport::vpcd::BASE_PORT + 3)
}

fn send(card: &mut impl Channel, apdu: &[u8]) -> (Vec<u8>, [u8; 2]) {
    let mut r = card.transmit(apdu).unwrap();
    assert!(r.len() >= 2, "{r:02X?}");
    let sw = r.split_off(r.len() - 2);
    (r, [sw[0], sw[1]])
}

const OK: [u8; 2] = [0x90, 0x00];

/// The whole read; returns every EF read, by id.
fn full_read(profile: &Profile, card: &mut impl Channel) -> Vec<(EfId, Vec<u8>)> {
    let select = |aid: &[u8]| [&[0x00, 0xA4, 0x04, 0x0C, aid.len() as u8][..], aid].concat();
    let jpki = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(send(card, &select(&jpki)).1, OK);
    assert_eq!(send(card, &select(&RESIDENCE_AP_AID)).1, OK);
    let mut out = Vec::new();
    for sfi in [0x0A, 0x0B] {
        let (data, sw) = send(card, &[0x00, 0xB0, 0x80 | sfi, 0x00, 0x00]);
        assert_eq!(sw, OK);
        out.push((EfId::new(Df::Mf, sfi), data));
    }
    let raw = std::fs::read(common::vectors().join("pki/mynumber/delivery.pub.raw")).unwrap();
    let key = DeliveryPublicKey::parse(PublicKeyFormat::RawModulus, &raw).unwrap();
    let knobs = profile.my_number.as_ref().unwrap().knobs.clone();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(16);
    let (apdu, keys) = key_delivery::build(&key, knobs.residence_key_delivery(), &mut rng).unwrap();
    assert_eq!(send(card, &apdu).1, OK, "SET SESSION KEY");
    let mut sm = ReaderCounterSm::new(keys.kenc, knobs.residence_le_form());
    let (verify, _) = sm
        .verify(
            knobs.residence_verify_p2(),
            profile.card_number.as_str().as_bytes(),
        )
        .unwrap();
    assert_eq!(send(card, &verify).1, OK, "VERIFY");
    assert_eq!(send(card, &select(&Df::Df1.aid().unwrap())).1, OK);
    for sfi in [0x01, 0x03, 0x04, 0x06] {
        let (apdu, pending) = sm.read_binary(0x80 | sfi, 0, 0);
        let (data, sw) = send(card, &apdu);
        assert_eq!(sw, OK, "DF1 SFI {sfi:02X}");
        out.push((
            EfId::new(Df::Df1, sfi),
            sm.open_response(&pending, &data).unwrap(),
        ));
    }
    assert_eq!(send(card, &select(&Df::Df2.aid().unwrap())).1, OK);
    for sfi in [0x01, 0x02, 0x03] {
        let (data, sw) = send(card, &[0x00, 0xB0, 0x80 | sfi, 0x00, 0x00]);
        if sw == OK {
            out.push((EfId::new(Df::Df2, sfi), data));
        }
    }
    assert_eq!(send(card, &select(&Df::Df3.aid().unwrap())).1, OK);
    let (apdu, pending) = sm.read_binary(0x82, 0, 0);
    let (data, sw) = send(card, &apdu);
    assert_eq!(sw, OK, "DF3");
    out.push((
        EfId::new(Df::Df3, 0x02),
        sm.open_response(&pending, &data).unwrap(),
    ));
    out
}

#[test]
fn the_specified_cards_read_whole_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let mut host = Vpcd::new(rclab_emulator::transport::vpcd::Endpoint::local(port()));
    for name in ["valid/specified-07", "valid/specified-08"] {
        let profile = load(name);
        let ((reads, took), _) = host
            .serve(profile.card(), CardChange::Reinsert, |access| {
                let Access::Reader(reader) = access else {
                    panic!("a vpcd host hands out a reader")
                };
                let mut card =
                    PcscChannel::connect(&reader.name(), Duration::from_secs(20)).expect("connect");
                let started = Instant::now();
                let reads = full_read(&profile, &mut card);
                let took = started.elapsed();
                card.close();
                (reads, took)
            })
            .expect("serve");
        let image = profile.my_number.as_ref().unwrap();
        let data = &image.residence_ap.as_ref().unwrap().data;
        for (id, bytes) in &reads {
            let compiled = &data.file(*id).unwrap().content;
            let shown =
                &compiled[..compiled
                    .len()
                    .min(if id.df == Df::Df2 { 256 } else { usize::MAX })];
            assert_eq!(bytes, shown, "{name} {id:?}");
        }
        assert_eq!(reads.len(), if name.ends_with("07") { 10 } else { 8 });
        let bytes: usize = reads.iter().map(|(_, b)| b.len()).sum();
        eprintln!(
            "{name}: full read over PC/SC, {} EFs, {bytes} bytes, {} ms",
            reads.len(),
            took.as_millis()
        );
    }
}

/// The reference checker over the real stack: every specified profile of the catalogue, and
/// both card types with the least likely reading of every open question at once, meet their
/// expectation; the time of a genuine card's whole check is printed.
#[test]
fn the_reference_checker_meets_every_specified_expectation_over_pcsc() {
    if !common::stack_available() {
        return;
    }
    let mut profiles: Vec<Profile> = common::all_profiles("my-number")
        .into_iter()
        .filter(|p| p.kind() == rclab_emulator::chip::ChipKind::SpecifiedResidence)
        .collect();
    assert!(profiles.len() >= 6, "{}", profiles.len());
    let dir = common::temp_dir("pcsc-specified", "unlikely");
    for base in ["specified-07", "specified-08"] {
        let file = dir.join(format!("{base}.yaml"));
        let yaml = format!(
            "extends: {}\nplatform:\n  residence_oaep_digest: sha1\n  residence_key_template: encryption_and_mac_key\n  residence_le_do: three_byte\n  residence_verify_p2: sfi81\n  residence_df_select: secure_messaging\n",
            common::vectors()
                .join(format!("profiles/my-number/valid/{base}.yaml"))
                .display()
        );
        std::fs::write(&file, yaml).unwrap();
        profiles.push(profile::load(&file).unwrap());
    }
    let trust = rclab_suite::checker::TrustStore::embedded_test_roots();
    let mut host = Vpcd::new(rclab_emulator::transport::vpcd::Endpoint::local(port()));
    for p in &profiles {
        let (report, took) = host
            .serve(p.card(), CardChange::Reinsert, |access| {
                let Access::Reader(reader) = access else {
                    panic!("a vpcd host hands out a reader")
                };
                let mut card =
                    PcscChannel::connect(&reader.name(), Duration::from_secs(20)).expect("connect");
                let started = Instant::now();
                let report = rclab_suite::checker::Checker {
                    trust: &trust,
                    options: common::options(4),
                }
                .check(&mut card, p.card_number.as_str());
                let took = started.elapsed();
                card.close();
                (report, took)
            })
            .expect("serve")
            .0;
        assert_eq!(
            report.verdict, p.expect.verdict,
            "{}: {}",
            p.name, report.detail
        );
        eprintln!(
            "{}: {:?} in {} ms over PC/SC",
            p.name,
            report.verdict.verdict,
            took.as_millis()
        );
    }
}
