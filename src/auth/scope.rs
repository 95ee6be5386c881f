//! What a credential may do. Scopes narrow a credential; roles (admin/member) and ownership
//! are checked separately by the domain, so a member's key with `admin` scope is still a
//! member's key.

use super::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Publish,
    Deploy,
    /// Call deployments through the MCP gateway (implied by `deploy`).
    Use,
    Secrets,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Read,
        Scope::Publish,
        Scope::Deploy,
        Scope::Use,
        Scope::Secrets,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Publish => "publish",
            Scope::Deploy => "deploy",
            Scope::Use => "use",
            Scope::Secrets => "secrets",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, as a bitset so the per-request check is one AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    /// `deploy` implies `use`: whoever may run a server may call it.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0 || (scope == Scope::Use && self.0 & Scope::Deploy.bit() != 0)
    }

    /// Exactly this scope was granted (no implication).
    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn contains_all(self, other: Scopes) -> bool {
        Scope::ALL
            .into_iter()
            .filter(|s| other.0 & s.bit() != 0)
            .all(|s| self.allows(s))
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .map(Scope::as_str)
            .collect()
    }

    /// From stored or requested names; an unknown name is an error naming the valid ones.
    pub fn parse(names: &[String]) -> Result<Scopes, AuthError> {
        let mut out = Scopes::default();
        for n in names {
            let s = Scope::parse(n).ok_or_else(|| {
                AuthError::Invalid(format!(
                    "unknown scope {n:?}; scopes are read, publish, deploy, use, secrets, admin"
                ))
            })?;
            out.0 |= s.bit();
        }
        Ok(out)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_implies_use_only() {
        let s = Scopes::of(&[Scope::Deploy]);
        assert!(s.allows(Scope::Use));
        assert!(s.allows(Scope::Deploy));
        assert!(!s.allows(Scope::Read));
        assert!(!Scopes::of(&[Scope::Use]).allows(Scope::Deploy));
        assert!(s.contains_all(Scopes::of(&[Scope::Use])));
        assert!(!s.contains_all(Scopes::of(&[Scope::Admin])));
        assert_eq!(Scopes::all().names().len(), 6);
        assert!(Scopes::parse(&["nope".into()]).is_err());
    }
}
