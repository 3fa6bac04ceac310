//! Static bearer tokens from the settings (`[[auth.tokens]]`), known by their SHA-256 only.
//!
//! A presented token is hashed and its digest looked up in a map. That lookup is not constant
//! time, and need not be: what it compares is SHA-256(guess), which the caller cannot steer
//! byte by byte without inverting SHA-256, so timing tells them nothing about a stored digest
//! they could use. The token itself is never kept, logged or compared.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::scope::Scopes;
use crate::settings::StaticTokenSettings;

/// The static tokens, by digest.
#[derive(Debug, Default)]
pub struct StaticTokens {
    by_digest: HashMap<[u8; 32], (String, Scopes)>,
}

/// Parses a hex SHA-256 digest (64 hex digits, any case).
pub fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut digest).ok()?;
    Some(digest)
}

impl StaticTokens {
    /// Builds the map from validated settings (`validate_settings` has checked every digest
    /// and scope; an entry that does not parse is skipped rather than trusted).
    pub fn new(settings: &[StaticTokenSettings]) -> StaticTokens {
        let by_digest = settings
            .iter()
            .filter_map(|t| {
                let digest = parse_digest(&t.sha256)?;
                let scopes = Scopes::from_names(t.scopes.iter().map(String::as_str));
                Some((digest, (t.name.clone(), scopes)))
            })
            .collect();
        StaticTokens { by_digest }
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The name and scopes of the token, if it is one of ours.
    pub fn find(&self, token: &str) -> Option<(&str, Scopes)> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_digest
            .get(&digest)
            .map(|(name, scopes)| (name.as_str(), *scopes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::scope::Scope;

    #[test]
    fn a_token_is_found_by_its_digest_only() {
        let digest = hex::encode(Sha256::digest(b"s3cret"));
        let tokens = StaticTokens::new(&[StaticTokenSettings {
            name: "ops".into(),
            sha256: digest.to_uppercase(),
            scopes: vec!["payments:read".into()],
        }]);
        let (name, scopes) = tokens.find("s3cret").expect("found");
        assert_eq!(name, "ops");
        assert!(scopes.allow(Scope::Read) && !scopes.allow(Scope::Write));
        assert!(tokens.find("s3cret ").is_none());
        assert!(tokens.find(&digest).is_none());
    }
}
