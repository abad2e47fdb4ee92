//! An EF too large for one secure-messaging answer (only a hand-made image can have one:
//! profiles bound EF sizes) gets a status word from the engine, never a panic.

use crate::common;

use common::{open_session, select, send, sm_read, sm_read_apdu};
use rclab_emulator::card::Df;
use rclab_emulator::protocol::Status;

#[test]
fn an_sm_read_of_an_ef_over_65535_bytes_answers_wrong_length() {
    for name in ["gen1-residence", "gen2-residence"] {
        let profile = common::valid_profile(name);
        let mut card = common::card_with(&profile, |image| {
            let ef = image
                .files
                .iter_mut()
                .find(|f| f.name.starts_with("DF1/EF01"))
                .unwrap();
            ef.content.resize(70_040, 0xD0);
        });
        let key = open_session(&mut card, 7);
        select(&mut card, Df::Df1);
        let sfi = card
            .image()
            .files
            .iter()
            .find(|f| f.name.starts_with("DF1/EF01"))
            .unwrap()
            .id
            .sfi;
        // The whole EF (expected length 0), and the most one DO 86 could not carry.
        for len in [0, u16::MAX] {
            let r = send(&mut card, &sm_read_apdu(0x80 | sfi, 0, len));
            assert_eq!(r.status, Status::WrongLength, "{name}, length {len}");
            assert!(r.data.is_empty(), "{name}");
        }
        // A part that fits is still read.
        let (plain, status) = sm_read(&mut card, &key, 0x80 | sfi, 0, 1_000).unwrap();
        assert_eq!((plain.len(), status), (1_000, Status::Success), "{name}");
    }
}
