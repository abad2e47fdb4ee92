//! What checkers read, against what the chip holds: the reference checker reads every
//! field right on every genuine card, and a careless decoding of the same chip is caught
//! field by field.

use crate::common;

use rclab_emulator::verdict::VerdictKind;
use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::data::{self, CardFields, FieldStatus, Text};
use rclab_suite::run::{self, Transport, report};

#[test]
fn reference_checker_reads_every_genuine_card_right() {
    let out = std::env::temp_dir().join(format!("rclab-data-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = common::run_config(
        vec![Adapter::reference()],
        common::profiles(""),
        Transport::Inproc,
        out.clone(),
    );
    let results = run::run(&config).unwrap();
    let mut genuine = 0;
    for r in &results {
        assert!(!r.data_error, "{}: {:?}", r.profile, r.fields);
        if r.expected.verdict != VerdictKind::Genuine {
            continue;
        }
        genuine += 1;
        assert!(r.data.is_some(), "{}: no data", r.profile);
        for f in &r.fields {
            assert_eq!(f.status, FieldStatus::Right, "{}: {f:?}", r.profile);
        }
        let names: Vec<&str> = r.fields.iter().map(|f| f.field.as_str()).collect();
        for must in [
            "card_number",
            "generation",
            "card_type",
            "images.face.sha256",
        ] {
            assert!(names.contains(&must), "{}: {must} not compared", r.profile);
        }
    }
    assert!(genuine >= 5);
    report::write_all(&out, &config.checkers, &results).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Data read") && md.contains("### Data errors\n\nNone."));
    let json = std::fs::read_to_string(out.join("results.json")).unwrap();
    assert!(json.contains("\"fields\"") && json.contains("\"status\": \"right\""));
    let _ = std::fs::remove_dir_all(&out);
}

/// A decoder that treats generation-1 text as UTF-8 with replacement characters (the
/// commonest careless reading of Shift_JIS) is wrong on the address, right elsewhere.
#[test]
fn a_careless_text_decoding_is_a_wrong_field() {
    let profile = common::profiles("valid")
        .into_iter()
        .find(|p| p.name.ends_with("gen1-residence"))
        .unwrap();
    let truth = data::truth(&profile.image);
    let address = profile
        .image
        .files
        .iter()
        .find(|f| f.name == "DF2/EF01 address")
        .unwrap();
    let tlvs = rclab_emulator::protocol::tlv::parse_all(&address.content).unwrap();
    let raw = rclab_emulator::protocol::tlv::find(&tlvs, 0xD4).unwrap();
    let careless = CardFields {
        address: Some(Text::new(
            String::from_utf8_lossy(raw).trim_end_matches('\0'),
        )),
        generation: Some(1),
        ..CardFields::default()
    };
    let checks = data::compare(&careless, &truth);
    let status = |f: &str| checks.iter().find(|c| c.field == f).unwrap().status;
    assert_eq!(status("address"), FieldStatus::Wrong);
    assert_eq!(status("generation"), FieldStatus::Right);
    assert_eq!(status("address_date"), FieldStatus::NotReported);
    assert_eq!(
        truth.address.as_ref().map(Text::as_str),
        Some("東京都新宿区試験町1-2-3 サンプルハイツ101")
    );
}

/// The bug class `valid/gen1-cp932-text` exists for: generation-1 text decoded with plain
/// Shift_JIS (Python's `shift_jis`, iconv's `SHIFT_JIS`, Java's `Shift_JIS`) instead of
/// Windows-31J. Decoded here by Python itself, the same bytes the chip serves.
#[test]
fn plain_shift_jis_misreads_the_cp932_profile() {
    let profile = common::profiles("valid")
        .into_iter()
        .find(|p| p.name.ends_with("gen1-cp932-text"))
        .unwrap();
    let truth = data::truth(&profile.image);
    let content = &profile
        .image
        .files
        .iter()
        .find(|f| f.name == "DF2/EF01 address")
        .unwrap()
        .content;
    let tlvs = rclab_emulator::protocol::tlv::parse_all(content).unwrap();
    let raw = rclab_emulator::protocol::tlv::find(&tlvs, 0xD4).unwrap();
    let decode = |codec: &str| {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]).rstrip(b'\\0').decode(sys.argv[2], 'replace').encode('utf-8'))")
            .arg(hex::encode(raw))
            .arg(codec)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let compare = |address: String| {
        let reported = CardFields {
            address: Some(Text::new(&address)),
            ..CardFields::default()
        };
        data::compare(&reported, &truth)
            .into_iter()
            .find(|c| c.field == "address")
            .unwrap()
            .status
    };
    assert_eq!(compare(decode("cp932")), FieldStatus::Right);
    assert_eq!(compare(decode("shift_jis")), FieldStatus::Wrong);
}

/// `valid/gen2-data-edges`: sex code 3 is "unspecified" and an all-zero expiry is no date.
#[test]
fn the_gen2_edge_profile_holds_unspecified_sex_and_no_expiry() {
    let profile = common::profiles("valid")
        .into_iter()
        .find(|p| p.name.ends_with("gen2-data-edges"))
        .unwrap();
    let truth = data::truth(&profile.image);
    assert_eq!(truth.sex, Some(data::Sex::Unspecified));
    assert_eq!(truth.work_permission_expiry, None);
    assert_eq!(
        truth.status_of_residence.as_ref().map(Text::as_str),
        Some("TOKUTEIKAT")
    );
    assert_eq!(truth.birth_date, data::Date::parse("2000-02-29"));
    let careless = CardFields {
        sex: Some(data::Sex::Female),
        work_permission_expiry: data::Date::parse("2000-01-01"),
        ..CardFields::default()
    };
    let checks = data::compare(&careless, &truth);
    let status = |f: &str| checks.iter().find(|c| c.field == f).unwrap().status;
    assert_eq!(status("sex"), FieldStatus::Wrong);
    assert_eq!(status("work_permission_expiry"), FieldStatus::NotOnChip);
}
