//! A real third-party client on the real stack: Debian's OpenSC (`pkcs15-tool`,
//! `pkcs11-tool` with `opensc-pkcs11.so`) reads the emulated My Number card's JPKI AP through
//! pcscd + vpcd — both certificates, both PIN objects with their tries left — signs with the
//! authentication key after the PIN (the signature verifies with `openssl` against the
//! certificate), and shows the tries going down and the blocked state after the last.
//!
//! Every APDU OpenSC sends (the other drivers' probes included) is recorded; the test checks
//! the card answered each, and that no SELECT of a foreign AID got `90 00`.
//!
//! Skipped with a message when no pcscd with vpcd readers runs (`scripts/pcsc-up`) or OpenSC
//! is not installed; fails instead when `RCLAB_REQUIRE_PCSC` is set (CI). `RCLAB_TRACE=1`
//! also prints every exchange.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is the failure report; helpers are crate-local

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rclab_emulator::fault::SimCard;
use rclab_emulator::profile::{self, Profile};
use rclab_emulator::transport::vpcd::probe::listening_ports;
use rclab_emulator::transport::vpcd::{
    BASE_PORT, ReaderOptions, Reply, VirtualCard, VirtualReader,
};

const PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const JPKI_AID: &str = "D392F000260100000001";

/// The profile's card, recording every C-APDU and R-APDU (hex) as vpcd carries them.
struct Recorded {
    card: SimCard,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl VirtualCard for Recorded {
    fn atr(&self) -> Vec<u8> {
        VirtualCard::atr(&self.card)
    }
    fn reset(&mut self) {
        VirtualCard::reset(&mut self.card);
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.respond(apdu).data.unwrap_or_default()
    }
    fn respond(&mut self, apdu: &[u8]) -> Reply {
        let reply = self.card.respond(apdu);
        let answer = reply
            .data
            .as_deref()
            .map(hex::encode_upper)
            .unwrap_or_default();
        self.log
            .lock()
            .unwrap()
            .push((hex::encode_upper(apdu), answer));
        reply
    }
}

fn my_number(name: &str) -> Profile {
    let path = common::vectors().join(format!("profiles/my-number/{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// True when OpenSC's tools are installed; fails under `RCLAB_REQUIRE_PCSC` otherwise.
fn opensc_available() -> bool {
    let found = Path::new(PKCS11_MODULE).exists()
        && Command::new("pkcs15-tool")
            .arg("--version")
            .output()
            .is_ok();
    if !found {
        let message = "OpenSC is not installed: `apt-get install opensc` (scripts/pcsc-up does)";
        assert!(
            std::env::var_os("RCLAB_REQUIRE_PCSC").is_none(),
            "{message} (RCLAB_REQUIRE_PCSC is set)"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// A reader with the card in it, the log of what OpenSC sent, and an opensc.conf whose
/// PKCS#11 module has a slot for every reader (the default, 16 virtual slots at 4 per
/// card, reaches only the first four of six readers).
struct Served {
    reader: VirtualReader,
    log: Arc<Mutex<Vec<(String, String)>>>,
    dir: PathBuf,
}

impl Served {
    fn new(profile: &Profile) -> Served {
        // The fifth reader: pcsc_faults takes the last, the others lease from the first.
        let ports = listening_ports(BASE_PORT..BASE_PORT + 32);
        let port = ports[ports.len().saturating_sub(2)];
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut options = ReaderOptions::new(port);
        options.trace = std::env::var_os("RCLAB_TRACE").is_some();
        let card = Recorded {
            card: profile.card(),
            log: Arc::clone(&log),
        };
        let reader = VirtualReader::spawn(options, Some(Box::new(card)));
        assert!(
            reader.wait_attached(Duration::from_secs(30)),
            "vpcd never took the card on port {port}"
        );
        let dir = common::temp_dir("opensc", &profile.name.replace('/', "-"));
        std::fs::write(
            dir.join("opensc.conf"),
            "app opensc-pkcs11 {\n  pkcs11 {\n    max_virtual_slots = 64;\n  }\n}\n",
        )
        .unwrap();
        // pcscd notices the card at its next presence poll.
        std::thread::sleep(Duration::from_millis(500));
        Served { reader, log, dir }
    }

    /// Runs an OpenSC tool with this reader's configuration; (success, stdout + stderr).
    fn tool(&self, program: &str, args: &[&str]) -> (bool, String) {
        let output = Command::new(program)
            .args(args)
            .env("OPENSC_CONF", self.dir.join("opensc.conf"))
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn pkcs15(&self, args: &[&str]) -> String {
        let name = self.reader.name();
        let mut all = vec!["--reader", name.as_str()];
        all.extend_from_slice(args);
        self.tool("pkcs15-tool", &all).1
    }

    /// `pkcs11-tool --login --pin PIN --sign --mechanism SHA256-RSA-PKCS --id 01` over `data`;
    /// the signature, or the tool's output when it failed.
    fn sign(&self, pin: &str, data: &Path) -> Result<Vec<u8>, String> {
        let signature = self.dir.join("signature.bin");
        let _ = std::fs::remove_file(&signature);
        let name = self.reader.name();
        let (ok, text) = self.tool(
            "pkcs11-tool",
            &[
                "--module",
                PKCS11_MODULE,
                "--slot-description",
                name.as_str(),
                "--login",
                "--pin",
                pin,
                "--sign",
                "--mechanism",
                "SHA256-RSA-PKCS",
                "--id",
                "01",
                "-i",
                data.to_str().unwrap(),
                "-o",
                signature.to_str().unwrap(),
            ],
        );
        match (ok, std::fs::read(&signature)) {
            (true, Ok(bytes)) => Ok(bytes),
            _ => Err(text),
        }
    }

    fn exchanges(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

/// The certificate OpenSC read (`--read-certificate ID`, PEM) as DER, via openssl.
fn pem_to_der(pem: &str, dir: &Path) -> Vec<u8> {
    let start = pem.find("-----BEGIN CERTIFICATE-----").expect(pem);
    let input = dir.join("read.pem");
    let output = dir.join("read.der");
    std::fs::write(&input, &pem[start..]).unwrap();
    let status = Command::new("openssl")
        .args([
            "x509",
            "-in",
            input.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
        ])
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(output).unwrap()
}

/// `openssl dgst -sha256 -verify <public key of cert> -signature sig data`.
fn openssl_verifies(cert_der: &Path, data: &Path, signature: &[u8], dir: &Path) -> bool {
    let public = dir.join("public.pem");
    let sig = dir.join("sig.bin");
    std::fs::write(&sig, signature).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-pubkey", "-in"])
        .arg(cert_der)
        .output()
        .unwrap();
    std::fs::write(&public, out.stdout).unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&sig)
        .arg(data)
        .output()
        .unwrap()
        .status
        .success()
}

fn tries_left(list_pins: &str) -> Vec<u32> {
    list_pins
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Tries left"))
        .filter_map(|l| l.trim_start_matches([' ', ':']).trim().parse().ok())
        .collect()
}

/// No SELECT by AID got `90 00` unless it named an application the card has.
fn assert_no_foreign_aid_accepted(exchanges: &[(String, String)]) {
    let known = [
        "A0000001510000",
        JPKI_AID,
        "D3921000310001010408",
        "D3921000310001010402",
        "D3921000310001010100",
        "D3921000310001010401",
    ];
    for (command, answer) in exchanges {
        if command.starts_with("00A404") && answer == "9000" {
            let aid = &command[10..];
            assert!(known.contains(&aid), "foreign AID {aid} answered 90 00");
        }
        assert!(
            answer.len() >= 4,
            "{command} got no status word: {answer:?}"
        );
    }
}

#[test]
fn opensc_reads_the_adult_card_signs_and_sees_the_pin_block() {
    if !common::stack_available() || !opensc_available() {
        return;
    }
    let p = my_number("valid/adult");
    let jpki = common::vectors().join("pki/jpki");
    let served = Served::new(&p);
    let started = Instant::now();

    // Both certificates (and both CA certificates) are found, with the JPKI paths.
    let listed = served.pkcs15(&["--list-certificates"]);
    for needle in [
        "User Authentication Certificate",
        "Digital Signature Certificate",
        "Path           : 000a",
        "Path           : 0001",
        "Path           : 000b",
        "Path           : 0002",
    ] {
        assert!(listed.contains(needle), "{needle} not in:\n{listed}");
    }
    let auth = pem_to_der(&served.pkcs15(&["--read-certificate", "01"]), &served.dir);
    assert_eq!(auth, std::fs::read(jpki.join("auth.crt")).unwrap());
    // The signature certificate is private: readable after the signature password.
    let sign = served.pkcs15(&[
        "--read-certificate",
        "02",
        "--verify-pin",
        "--auth-id",
        "02",
        "--pin",
        "TESTPASS1",
    ]);
    assert_eq!(
        pem_to_der(&sign, &served.dir),
        std::fs::read(jpki.join("sign.crt")).unwrap()
    );
    let pins = served.pkcs15(&["--list-pins"]);
    assert!(pins.contains("User Authentication PIN") && pins.contains("Digital Signature PIN"));
    assert_eq!(tries_left(&pins), [3, 5], "{pins}");

    // A signature with the authentication key, verified by openssl with the certificate.
    let data = served.dir.join("challenge.bin");
    std::fs::write(
        &data,
        b"rclab: a fresh challenge for the JPKI authentication key",
    )
    .unwrap();
    let signature = served.sign("1234", &data).unwrap_or_else(|e| panic!("{e}"));
    let read_and_sign = started.elapsed();
    assert_eq!(signature.len(), 256);
    assert!(openssl_verifies(
        &jpki.join("auth.crt"),
        &data,
        &signature,
        &served.dir
    ));
    eprintln!(
        "full JPKI read (both certificates, PIN list) + sign over PC/SC: {} ms",
        read_and_sign.as_millis()
    );

    // Wrong PINs: the tries go down, the last blocks, then even the right PIN is refused.
    for left in [2, 1, 0] {
        let out = served.pkcs15(&["--verify-pin", "--auth-id", "01", "--pin", "0000"]);
        assert!(out.contains("PIN code or key incorrect"), "{out}");
        let pins = served.pkcs15(&["--list-pins"]);
        assert_eq!(tries_left(&pins), [left, 5], "{pins}");
    }
    let out = served.pkcs15(&["--verify-pin", "--auth-id", "01", "--pin", "1234"]);
    assert!(
        out.contains("Reference data not usable"),
        "blocked PIN: {out}"
    );
    let refused = served.sign("1234", &data);
    assert!(refused.is_err(), "a blocked PIN still signed");

    let exchanges = served.exchanges();
    assert_no_foreign_aid_accepted(&exchanges);
    let mut distinct: Vec<&str> = exchanges.iter().map(|(c, _)| c.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    eprintln!(
        "{} exchanges, {} distinct commands:",
        exchanges.len(),
        distinct.len()
    );
    for command in distinct {
        eprintln!("  {command}");
    }
    served.reader.stop();
}

#[test]
fn opensc_reads_and_signs_with_every_valid_my_number_card() {
    if !common::stack_available() || !opensc_available() {
        return;
    }
    let valid = profile::load_dir(&common::vectors().join("profiles/my-number/valid")).unwrap();
    assert!(valid.len() >= 2);
    for p in &valid {
        let served = Served::new(p);
        let listed = served.pkcs15(&["--list-certificates"]);
        assert!(
            listed.contains("Path           : 000a"),
            "{}: {listed}",
            p.name
        );
        let auth = pem_to_der(&served.pkcs15(&["--read-certificate", "01"]), &served.dir);
        let cert = served.dir.join("auth.der");
        std::fs::write(&cert, &auth).unwrap();
        let data = served.dir.join("data.bin");
        std::fs::write(&data, p.name.as_bytes()).unwrap();
        let pin = p.my_number.as_ref().unwrap().apps[0].pins[0]
            .value
            .clone()
            .map(|v| String::from_utf8(v).unwrap())
            .unwrap();
        let signature = served
            .sign(&pin, &data)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(
            openssl_verifies(&cert, &data, &signature, &served.dir),
            "{}: the signature does not verify with the card's certificate",
            p.name
        );
        assert_no_foreign_aid_accepted(&served.exchanges());
        served.reader.stop();
    }
}

/// With the other value of the `reader.atr` knob (the PC/SC Part 3 Type B form, standing
/// for the undocumented contactless ATR) OpenSC no longer matches the card by ATR, and finds
/// it by selecting the JPKI AP instead.
#[test]
fn opensc_finds_the_card_by_select_without_the_jpki_atr() {
    if !common::stack_available() || !opensc_available() {
        return;
    }
    let dir = common::temp_dir("opensc-atr", "overlay");
    let overlay = dir.join("contactless-atr.yaml");
    let adult = common::vectors().join("profiles/my-number/valid/adult.yaml");
    std::fs::write(
        &overlay,
        format!(
            "extends: {}\nreader:\n  atr: \"3B 88 80 01 00 00 00 00 00 81 81 00 09\"\n",
            adult.display()
        ),
    )
    .unwrap();
    let p = profile::load(&overlay).unwrap_or_else(|e| panic!("{e}"));
    let served = Served::new(&p);
    let listed = served.pkcs15(&["--list-certificates"]);
    assert!(listed.contains("Path           : 000a"), "{listed}");
    let exchanges = served.exchanges();
    assert!(
        exchanges
            .iter()
            .any(|(c, a)| c == &format!("00A4040C0A{JPKI_AID}") && a == "9000")
    );
    assert_no_foreign_aid_accepted(&exchanges);
    served.reader.stop();
}
