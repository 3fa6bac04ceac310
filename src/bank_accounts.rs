//! Bank accounts' pure rules, without I/O: how an account number and an IBAN are shown
//! (Formance v1's `BankAccount.Offuscate`, to the character) and which values are accepted so
//! that showing them can never fail.

/// Why an account number or IBAN is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidNumber {
    /// `accountNumber` or `iban`.
    pub field: &'static str,
    /// What is wrong (never the value).
    pub problem: String,
}

/// The shortest IBAN Formance can mask (4 shown, at least 0 hidden, 4 shown).
pub const MIN_IBAN_LEN: usize = 8;
/// The shortest account number Formance can mask (2 shown, at least 0 hidden, 3 shown).
pub const MIN_ACCOUNT_NUMBER_LEN: usize = 5;
/// The longest value accepted for either (an IBAN has at most 34 characters; room for spaces).
pub const MAX_NUMBER_LEN: usize = 64;

fn check(field: &'static str, value: &str, min: usize) -> Result<(), InvalidNumber> {
    let fail = |problem: String| Err(InvalidNumber { field, problem });
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return fail("must be printable ASCII (letters, digits, spaces, punctuation)".into());
    }
    if value.len() < min {
        return fail(format!("must have at least {min} characters"));
    }
    if value.len() > MAX_NUMBER_LEN {
        return fail(format!("must have at most {MAX_NUMBER_LEN} characters"));
    }
    Ok(())
}

/// Checks an IBAN: printable ASCII, 8 to 64 characters (Formance's masking needs 8; it checks
/// nothing at creation and fails every later read of a shorter one).
pub fn check_iban(iban: &str) -> Result<(), InvalidNumber> {
    check("iban", iban, MIN_IBAN_LEN)
}

/// Checks an account number: printable ASCII, 5 to 64 characters (as [`check_iban`]).
pub fn check_account_number(number: &str) -> Result<(), InvalidNumber> {
    check("accountNumber", number, MIN_ACCOUNT_NUMBER_LEN)
}

/// An IBAN as Formance shows it: the first 4 and last 4 characters, a `*` for each other.
/// Values not accepted by [`check_iban`] are masked entirely.
pub fn obfuscate_iban(iban: &str) -> String {
    mask(iban, 4, 4, MIN_IBAN_LEN)
}

/// An account number as Formance shows it: the first 2 and last 3 characters, a `*` for each
/// other. Values not accepted by [`check_account_number`] are masked entirely.
pub fn obfuscate_account_number(number: &str) -> String {
    mask(number, 2, 3, MIN_ACCOUNT_NUMBER_LEN)
}

fn mask(value: &str, head: usize, tail: usize, min: usize) -> String {
    if !value.is_ascii() || value.len() < min {
        return "*".repeat(value.chars().count());
    }
    let len = value.len();
    format!(
        "{}{}{}",
        &value[..head],
        "*".repeat(len - head - tail),
        &value[len - tail..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_formance_v1_does() {
        // Formance: IBAN[:4] + "*"*(len-8) + IBAN[len-4:]; number[:2] + "*"*(len-5) + number[len-3:].
        assert_eq!(
            obfuscate_iban("FR7630006000011234567890189"),
            "FR76*******************0189"
        );
        assert_eq!(obfuscate_iban("GB29NWBK"), "GB29NWBK");
        assert_eq!(obfuscate_account_number("12345678"), "12***678");
        assert_eq!(obfuscate_account_number("12345"), "12345");
        assert_eq!(
            obfuscate_iban("DE89 3704 0044 0532 0130 00"),
            "DE89*******************0 00"
        );
    }

    #[test]
    fn values_formance_could_not_mask_are_refused_and_never_shown() {
        assert!(check_iban("FR7630006000011234567890189").is_ok());
        let e = check_iban("FR76123").unwrap_err();
        assert_eq!(e.field, "iban");
        assert!(check_account_number("1234").is_err());
        assert!(check_account_number("12345").is_ok());
        assert!(check_iban("FR76300060000112345é").is_err());
        assert!(check_iban("FR7630006000\n011234").is_err());
        assert!(check_iban(&"1".repeat(65)).is_err());
        assert_eq!(obfuscate_iban("short"), "*****");
        assert_eq!(obfuscate_account_number("1é345"), "*****");
    }
}
