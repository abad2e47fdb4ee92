#![no_main]
// The body is rclab_suite::fuzzing::my_number_checker_responses, which suite/tests/fuzz_regressions.rs replays.
libfuzzer_sys::fuzz_target!(|data: &[u8]| rclab_suite::fuzzing::my_number_checker_responses(data));
