//! Scopes: Formance Payments' two, and which one a request needs.
//!
//! Formance's own router (formancehq/payments, its scope-checking versions) guards reads with
//! `NeedOneOfScopes(payments:read, payments:write)` and writes with `payments:write` alone: a
//! write scope also grants reads. Tributary does the same.

use actix_web::http::Method;

/// A permission a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Reads (GET).
    Read,
    /// Everything that changes state (POST, PATCH, DELETE); implies [`Scope::Read`].
    Write,
}

impl Scope {
    /// Every scope, for messages listing the known ones.
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Write];

    /// The name on the wire (token claims, settings, OpenAPI).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "payments:read",
            Scope::Write => "payments:write",
        }
    }

    /// Parses a scope name; `None` for one Tributary does not know.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scope a request of this method needs: reads need `payments:read`, anything else
    /// `payments:write`.
    pub fn required_for(method: &Method) -> Scope {
        if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
            Scope::Read
        } else {
            Scope::Write
        }
    }
}

/// The scopes a principal holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    read: bool,
    write: bool,
}

impl Scopes {
    /// Both scopes (used when authentication is off).
    pub const ALL: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// Collects the known scopes among `names`; unknown names are ignored (a JWT carries the
    /// scopes of every service it is meant for).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Scopes {
        names
            .into_iter()
            .filter_map(Scope::parse)
            .fold(Scopes::default(), |s, scope| s.with(scope))
    }

    /// These scopes plus `scope`.
    pub fn with(mut self, scope: Scope) -> Scopes {
        match scope {
            Scope::Read => self.read = true,
            Scope::Write => self.write = true,
        }
        self
    }

    /// Whether a request needing `scope` is allowed: write implies read, as in Formance.
    pub fn allow(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read || self.write,
            Scope::Write => self.write,
        }
    }

    /// The scope names held, for logs.
    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| match s {
                Scope::Read => self.read,
                Scope::Write => self.write,
            })
            .map(Scope::name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_read_does_not_imply_write() {
        let read = Scopes::from_names(["payments:read"]);
        let write = Scopes::from_names(["payments:write"]);
        assert!(read.allow(Scope::Read) && !read.allow(Scope::Write));
        assert!(write.allow(Scope::Read) && write.allow(Scope::Write));
        assert!(!Scopes::from_names(["connectors:read", "openid"]).allow(Scope::Read));
    }

    #[test]
    fn gets_need_read_everything_else_write() {
        assert_eq!(Scope::required_for(&Method::GET), Scope::Read);
        for m in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            assert_eq!(Scope::required_for(&m), Scope::Write);
        }
    }
}
