//! The individual number (個人番号): twelve digits, the last a check digit (spec notes
//! `my-number-platform.md` B10). Two types, so a forged card can still be built and read:
//! [`NumberDigits`] is any twelve ASCII digits (what an EF holds), [`IndividualNumber`] is
//! digits whose check digit is right (what a checker may accept).

use std::fmt;

use thiserror::Error;

/// Number of digits of an individual number.
pub const LEN: usize = 12;

/// Why bytes are not an individual number.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IndividualNumberError {
    /// Not twelve bytes.
    #[error("{0} characters, an individual number has 12")]
    Length(usize),
    /// A byte that is not an ASCII digit.
    #[error("byte {byte:#04x} at position {position} is not an ASCII digit")]
    NotADigit {
        /// Index of the byte (0-based).
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// The twelfth digit is not the check digit of the first eleven.
    #[error("check digit {found}, the first 11 digits give {expected}")]
    CheckDigit {
        /// The twelfth digit as written.
        found: u8,
        /// The check digit the formula gives.
        expected: u8,
    },
}

/// Twelve ASCII digits, check digit not verified: the content of text AP EF `0001`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberDigits([u8; LEN]);

impl NumberDigits {
    /// Parses exactly twelve ASCII digits.
    pub fn parse(bytes: &[u8]) -> Result<NumberDigits, IndividualNumberError> {
        let digits: [u8; LEN] = bytes
            .try_into()
            .map_err(|_| IndividualNumberError::Length(bytes.len()))?;
        if let Some(position) = digits.iter().position(|b| !b.is_ascii_digit()) {
            return Err(IndividualNumberError::NotADigit {
                position,
                byte: digits[position],
            });
        }
        Ok(NumberDigits(digits))
    }

    /// The twelve ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; LEN] {
        &self.0
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The check digit the first eleven digits call for.
    pub fn expected_check_digit(&self) -> u8 {
        let mut first_eleven = [0; LEN - 1];
        first_eleven.copy_from_slice(&self.0[..LEN - 1]);
        check_digit(&first_eleven)
    }

    /// The digits as an [`IndividualNumber`], refused when the check digit is wrong.
    pub fn checked(self) -> Result<IndividualNumber, IndividualNumberError> {
        let found = self.0[LEN - 1] - b'0';
        let expected = self.expected_check_digit();
        if found != expected {
            return Err(IndividualNumberError::CheckDigit { found, expected });
        }
        Ok(IndividualNumber(self))
    }
}

impl fmt::Debug for NumberDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NumberDigits({})", self.as_str())
    }
}

impl fmt::Display for NumberDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The check digit of eleven ASCII digits (B10): `r = Σ P_n·Q_n mod 11` over n = 1..11,
/// `P_n` the n-th digit from the right, `Q_n = n + 1` for n ≤ 6 and `n − 5` for n ≥ 7; the
/// check digit is 0 when r ≤ 1, else 11 − r.
pub fn check_digit(first_eleven: &[u8; LEN - 1]) -> u8 {
    let r: u32 = first_eleven
        .iter()
        .rev()
        .enumerate()
        .map(|(i, digit)| {
            let n = i as u32 + 1;
            let q = if n <= 6 { n + 1 } else { n - 5 };
            u32::from(digit.wrapping_sub(b'0')) * q
        })
        .sum::<u32>()
        % 11;
    if r <= 1 { 0 } else { (11 - r) as u8 }
}

/// An individual number whose check digit is right.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndividualNumber(NumberDigits);

impl IndividualNumber {
    /// Parses twelve ASCII digits and refuses a wrong check digit.
    pub fn parse(bytes: &[u8]) -> Result<IndividualNumber, IndividualNumberError> {
        NumberDigits::parse(bytes)?.checked()
    }

    /// The number whose first eleven digits are `first_eleven`, with its check digit
    /// computed: how a test PKI invents a valid number.
    pub fn with_check_digit(
        first_eleven: &[u8],
    ) -> Result<IndividualNumber, IndividualNumberError> {
        if first_eleven.len() != LEN - 1 {
            return Err(IndividualNumberError::Length(first_eleven.len() + 1));
        }
        let mut digits = [b'0'; LEN];
        digits[..LEN - 1].copy_from_slice(first_eleven);
        let checked = NumberDigits::parse(&digits)?;
        digits[LEN - 1] = b'0' + checked.expected_check_digit();
        Ok(IndividualNumber(NumberDigits(digits)))
    }

    /// The digits.
    pub fn digits(&self) -> &NumberDigits {
        &self.0
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndividualNumber({})", self.as_str())
    }
}

impl fmt::Display for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B10: the test card's number and the textbook example both check.
    #[test]
    fn b10_check_digits() {
        for number in ["537686677188", "123456789018"] {
            let parsed = IndividualNumber::parse(number.as_bytes()).unwrap();
            assert_eq!(parsed.as_str(), number);
            let built = IndividualNumber::with_check_digit(&number.as_bytes()[..11]).unwrap();
            assert_eq!(built, parsed);
        }
    }

    #[test]
    fn a_wrong_check_digit_is_refused_with_the_expected_one() {
        assert_eq!(
            IndividualNumber::parse(b"537686677189"),
            Err(IndividualNumberError::CheckDigit {
                found: 9,
                expected: 8
            })
        );
        // The digits themselves still parse: a forged EF can be built and read.
        assert!(NumberDigits::parse(b"537686677189").is_ok());
    }

    #[test]
    fn shape_errors() {
        assert_eq!(
            IndividualNumber::parse(b"12345"),
            Err(IndividualNumberError::Length(5))
        );
        assert_eq!(
            IndividualNumber::parse(b"12345678901X"),
            Err(IndividualNumberError::NotADigit {
                position: 11,
                byte: b'X'
            })
        );
        assert_eq!(
            IndividualNumber::with_check_digit(b"1234"),
            Err(IndividualNumberError::Length(5))
        );
    }

    #[test]
    fn every_eleven_digit_prefix_has_exactly_one_check_digit() {
        for prefix in ["00000000000", "99999999999", "10000000000", "53768667718"] {
            let valid: Vec<u8> = (b'0'..=b'9')
                .filter(|&d| {
                    let mut n = prefix.as_bytes().to_vec();
                    n.push(d);
                    IndividualNumber::parse(&n).is_ok()
                })
                .collect();
            assert_eq!(valid.len(), 1, "{prefix}");
        }
    }
}
