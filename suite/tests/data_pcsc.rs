//! Over PC/SC, end to end: a checker that decodes generation-1 text as plain Shift_JIS
//! says `genuine` (right) on `valid/gen1-cp932-text` but shows another address: a data
//! error, with both values, apart from FAIL; on a card whose text both codecs read alike
//! it has none.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use rclab_suite::run::adapter::Adapter;
use rclab_suite::run::data::FieldStatus;
use rclab_suite::run::{self, Outcome, Transport, report};

use common::repo;

#[test]
fn plain_shift_jis_is_a_data_error_on_the_cp932_card_only() {
    if !common::stack_available() {
        return;
    }
    let out = std::env::temp_dir().join(format!("rclab-data-pcsc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let adapter = repo().join("suite/tests/data/checkers/pyscard-shift-jis.yaml");
    let config = common::run_config(
        vec![Adapter::load(adapter.to_str().unwrap()).unwrap()],
        common::profiles("valid")
            .into_iter()
            .filter(|p| p.name.ends_with("gen1-cp932-text") || p.name.ends_with("gen1-residence"))
            .collect(),
        Transport::Pcsc,
        out.clone(),
    );
    assert_eq!(config.profiles.len(), 2);
    let results = run::run(&config).unwrap();
    for r in &results {
        assert_eq!(r.outcome, Outcome::Pass, "{}: {}", r.profile, r.detail);
        let wrong: Vec<_> = r
            .fields
            .iter()
            .filter(|f| f.status == FieldStatus::Wrong)
            .collect();
        if r.profile.ends_with("gen1-cp932-text") {
            assert!(r.data_error);
            let fields: Vec<&str> = wrong.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(
                fields,
                ["address", "individual_permission", "work_permission"]
            );
            let address = wrong[0];
            assert!(address.chip.as_deref().unwrap().contains('髙'));
            assert!(address.reported.as_deref().unwrap().contains('\u{FFFD}'));
        } else {
            assert!(!r.data_error, "{wrong:?}");
            assert!(r.fields.iter().all(|f| f.status == FieldStatus::Right));
        }
    }
    report::write_all(&out, &config.checkers, &results).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| pyscard-shift-jis | 2 |") && md.contains("`address` read"));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("type=\"DATA ERROR\""));
    let _ = std::fs::remove_dir_all(&out);
}
