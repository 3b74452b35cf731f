//! CPF and CNPJ numbers, validated by their check digits before anything is sent to the
//! gateway.

use std::fmt;

/// A Brazilian taxpayer number: CPF (11 digits, people) or CNPJ (14 digits, companies),
/// stored as digits only.
#[derive(Clone, PartialEq, Eq)]
pub struct CpfCnpj(String);

/// Why a CPF/CNPJ was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpfCnpjError {
    /// Not 11 or 14 digits (punctuation `.`, `-`, `/` and spaces are ignored).
    #[error("cpf_cnpj must have 11 (CPF) or 14 (CNPJ) digits")]
    Length,
    /// Characters other than digits and punctuation.
    #[error("cpf_cnpj may contain only digits, `.`, `-`, `/` and spaces")]
    Characters,
    /// The check digits do not match.
    #[error("cpf_cnpj has invalid check digits")]
    CheckDigits,
}

fn check_digit(digits: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    let rest = sum % 11;
    if rest < 2 { 0 } else { 11 - rest }
}

impl CpfCnpj {
    /// Parses and validates a CPF or CNPJ.
    ///
    /// # Errors
    /// [`CpfCnpjError`].
    pub fn parse(text: &str) -> Result<Self, CpfCnpjError> {
        let mut digits = Vec::with_capacity(14);
        for c in text.chars() {
            match c {
                '0'..='9' => digits.push(c.to_digit(10).unwrap_or(0)),
                '.' | '-' | '/' | ' ' => {}
                _ => return Err(CpfCnpjError::Characters),
            }
        }
        let valid = match digits.len() {
            11 => {
                let first = check_digit(&digits[..9], &[10, 9, 8, 7, 6, 5, 4, 3, 2]);
                let second = check_digit(&digits[..10], &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
                first == digits[9] && second == digits[10]
            }
            14 => {
                let w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
                let w2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
                let first = check_digit(&digits[..12], &w1);
                let second = check_digit(&digits[..13], &w2);
                first == digits[12] && second == digits[13]
            }
            _ => return Err(CpfCnpjError::Length),
        };
        // Repeated digits (000.000.000-00, 111...) pass the arithmetic but are not issued.
        let repeated = digits.iter().all(|d| *d == digits[0]);
        if !valid || repeated {
            return Err(CpfCnpjError::CheckDigits);
        }
        Ok(Self(
            digits.iter().map(|d| char::from(b'0' + *d as u8)).collect(),
        ))
    }

    /// The digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CpfCnpj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data: show only the kind and the last two digits.
        let kind = if self.0.len() == 11 { "CPF" } else { "CNPJ" };
        write!(f, "{kind}(***{})", &self.0[self.0.len() - 2..])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn valid_cpfs_and_cnpjs_are_accepted_with_or_without_punctuation() {
        for ok in [
            "529.982.247-25",
            "52998224725",
            "111.444.777-35",
            "11.222.333/0001-81",
            "11222333000181",
        ] {
            assert!(CpfCnpj::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            CpfCnpj::parse("529.982.247-25").unwrap().digits(),
            "52998224725"
        );
    }

    #[test]
    fn wrong_check_digits_lengths_characters_and_repeats_are_refused() {
        assert_eq!(
            CpfCnpj::parse("529.982.247-24"),
            Err(CpfCnpjError::CheckDigits)
        );
        assert_eq!(
            CpfCnpj::parse("11.222.333/0001-80"),
            Err(CpfCnpjError::CheckDigits)
        );
        assert_eq!(
            CpfCnpj::parse("111.111.111-11"),
            Err(CpfCnpjError::CheckDigits)
        );
        assert_eq!(CpfCnpj::parse("1234567890"), Err(CpfCnpjError::Length));
        assert_eq!(CpfCnpj::parse(""), Err(CpfCnpjError::Length));
        assert_eq!(CpfCnpj::parse("5299822472a"), Err(CpfCnpjError::Characters));
    }

    #[test]
    fn debug_hides_the_number() {
        let shown = format!("{:?}", CpfCnpj::parse("52998224725").unwrap());
        assert_eq!(shown, "CPF(***25)");
    }
}
