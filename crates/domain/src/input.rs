//! The checks every text a user sends goes through, written once: names,
//! codes, emails, phones, notes and keys are bounded in length, free of
//! control characters, and stored verbatim.

use crate::error::{DomainError, DomainResult};

pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_PHONE_CHARS: usize = 40;
pub const MAX_KEY_CHARS: usize = 200;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_CODE_CHARS: usize = 64;
pub const MAX_EMAIL_CHARS: usize = 320;

pub fn check_text(what: &str, value: &str, max: usize) -> DomainResult<()> {
    let chars = value.chars().count();
    if value.trim().is_empty() {
        return Err(DomainError::InvalidInput(format!(
            "{what} must not be empty"
        )));
    }
    if chars > max {
        return Err(DomainError::InvalidInput(format!(
            "{what} is {chars} characters long, the most allowed is {max}"
        )));
    }
    if value.trim() != value {
        return Err(DomainError::InvalidInput(format!(
            "{what} must not start or end with whitespace"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::InvalidInput(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

pub fn check_email(email: &str) -> DomainResult<()> {
    check_text("email", email, MAX_EMAIL_CHARS)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.contains(' ')
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(DomainError::InvalidInput(format!(
            "{email:?} is not an email address"
        )))
    }
}

/// An ISO 4217 currency code, by its form: three upper-case letters (INR,
/// EUR). Whether the code is assigned is not checked: the list changes.
pub fn check_currency(code: &str) -> DomainResult<()> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(DomainError::InvalidInput(format!(
            "{code:?} is not a currency code (ISO 4217: three upper-case letters, such as INR or EUR)"
        )))
    }
}

/// A phone number, loosely: digits with the usual separators (`+`, spaces,
/// `-`, `.`, parentheses), and at least 5 digits.
pub fn check_phone(phone: &str) -> DomainResult<()> {
    check_text("a phone", phone, MAX_PHONE_CHARS)?;
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let plain = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'));
    if plain && digits >= 5 {
        Ok(())
    } else {
        Err(DomainError::InvalidInput(format!(
            "{phone:?} is not a phone number (digits, with + - . ( ) and spaces)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_checked_loosely() {
        for ok in ["+91 98765 43210", "(030) 123-4567", "12345"] {
            assert!(check_phone(ok).is_ok(), "{ok}");
        }
        for bad in ["1234", "call me", "+91\n98765", "", "12345 ext 6"] {
            assert!(check_phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        for ok in ["INR", "EUR", "USD"] {
            assert!(check_currency(ok).is_ok(), "{ok}");
        }
        for bad in ["", "inr", "Eur", "EURO", "EU", "E1R", " EUR", "€", "ÄÖÜ"] {
            assert!(check_currency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_are_bounded_and_free_of_control_characters() {
        assert!(check_text("a note", "for the Sharmas", MAX_NOTE_CHARS).is_ok());
        assert!(check_text("a note", "line\nbreak", MAX_NOTE_CHARS).is_err());
        assert!(check_text("a note", &"x".repeat(MAX_NOTE_CHARS + 1), MAX_NOTE_CHARS).is_err());
        assert!(check_text("a note", " padded", MAX_NOTE_CHARS).is_err());
    }
}
