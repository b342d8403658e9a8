//! Who is calling, and what they may do. The gateway maps bearer tokens
//! (`authorization: Bearer <token>`) to a name and a role; callers without a
//! token are anonymous viewers when the gateway allows anonymous reads.
//! Secrets never appear in logs, errors or `Debug` output.

use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::domain::priority::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    /// false: no token was presented.
    pub authenticated: bool,
}

impl Identity {
    fn anonymous() -> Self {
        Identity {
            name: "anonymous".into(),
            role: Role::Viewer,
            authenticated: false,
        }
    }
}

pub struct Access {
    tokens: Vec<(Vec<u8>, Identity)>,
    anonymous_read: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.tokens.iter().map(|(_, i)| &i.name).collect();
        f.debug_struct("Access")
            .field("identities", &names)
            .field("anonymous_read", &self.anonymous_read)
            .finish()
    }
}

/// Compares without stopping at the first difference, so the time a wrong
/// token takes does not tell how much of it was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Access {
    /// `tokens`: (secret, name, role). Two identities with one secret would
    /// make the audit lie about who acted: refused.
    pub fn new(tokens: Vec<(String, String, Role)>, anonymous_read: bool) -> Result<Self, String> {
        let mut out: Vec<(Vec<u8>, Identity)> = Vec::with_capacity(tokens.len());
        for (secret, name, role) in tokens {
            if let Some((_, other)) = out.iter().find(|(s, _)| same(s, secret.as_bytes())) {
                return Err(format!(
                    "tokens of {:?} and {name:?} are the same secret; every identity needs its own",
                    other.name
                ));
            }
            out.push((
                secret.into_bytes(),
                Identity {
                    name,
                    role,
                    authenticated: true,
                },
            ));
        }
        Ok(Access {
            tokens: out,
            anonymous_read,
        })
    }

    /// Anyone may read, nobody may change anything: a gateway with no
    /// tokens configured.
    pub fn open_read_only() -> Self {
        Access {
            tokens: Vec::new(),
            anonymous_read: true,
        }
    }

    /// A token this gateway accepts, for a follower to present to its
    /// leader (replicas share their tokens): a viewer's if there is one.
    pub fn relay_token(&self) -> Option<String> {
        let mut ids: Vec<_> = self.tokens.iter().collect();
        ids.sort_by_key(|(_, id)| !matches!(id.role, Role::Viewer));
        ids.first()
            .and_then(|(s, _)| String::from_utf8(s.clone()).ok())
    }

    /// The caller's identity: its token's, or anonymous when it sent none.
    /// A token that is present but unknown is refused even for reads (a
    /// typo should not silently demote an operator to an anonymous viewer).
    pub fn identify(&self, meta: &MetadataMap) -> Result<Identity, Status> {
        let Some(value) = meta.get("authorization") else {
            return Ok(Identity::anonymous());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header must be `Bearer <token>`")
            })?;
        self.tokens
            .iter()
            .find(|(s, _)| same(s, token.as_bytes()))
            .map(|(_, id)| id.clone())
            .ok_or_else(|| Status::unauthenticated("this gateway does not know that token"))
    }

    /// The caller, if it may read.
    pub fn reader(&self, meta: &MetadataMap) -> Result<Identity, Status> {
        let id = self.identify(meta)?;
        if !id.authenticated && !self.anonymous_read {
            return Err(Status::unauthenticated(
                "this gateway needs a token to read (set WARROOM_TOKEN or token_file in the console's config)",
            ));
        }
        Ok(id)
    }

    /// The caller, if it is authenticated and its role passes `allowed`.
    /// `what` names the action in the error ("setting priorities").
    pub fn require(
        &self,
        meta: &MetadataMap,
        allowed: fn(Role) -> bool,
        what: &str,
    ) -> Result<Identity, Status> {
        let id = self.identify(meta)?;
        if !id.authenticated {
            return Err(Status::unauthenticated(format!(
                "{what} needs a token: anonymous callers may only read"
            )));
        }
        if !allowed(id.role) {
            let needed = Role::ALL
                .into_iter()
                .find(|r| allowed(*r))
                .map_or("no role", Role::as_str);
            return Err(Status::permission_denied(format!(
                "{} is {}; {what} needs the {needed} role or above",
                id.name,
                id.role.with_article()
            )));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(auth: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(a) = auth {
            m.insert("authorization", a.parse().unwrap());
        }
        m
    }

    fn access(anonymous_read: bool) -> Access {
        Access::new(
            vec![
                (
                    "viewer-secret-0123456789".into(),
                    "vic".into(),
                    Role::Viewer,
                ),
                (
                    "operator-secret-0123456789".into(),
                    "ana".into(),
                    Role::Operator,
                ),
            ],
            anonymous_read,
        )
        .unwrap()
    }

    #[test]
    fn tokens_map_to_names_and_roles() {
        let a = access(true);
        let id = a
            .identify(&meta(Some("Bearer operator-secret-0123456789")))
            .unwrap();
        assert_eq!((id.name.as_str(), id.role), ("ana", Role::Operator));
        assert!(!a.identify(&meta(None)).unwrap().authenticated);
        let e = a.identify(&meta(Some("Bearer nope"))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(!e.message().contains("nope"));
    }

    #[test]
    fn mutating_needs_a_token_and_the_role() {
        let a = access(true);
        let none = a.require(&meta(None), Role::can_prioritize, "setting priorities");
        assert_eq!(none.unwrap_err().code(), tonic::Code::Unauthenticated);
        let viewer = a
            .require(
                &meta(Some("Bearer viewer-secret-0123456789")),
                Role::can_prioritize,
                "setting priorities",
            )
            .unwrap_err();
        assert_eq!(viewer.code(), tonic::Code::PermissionDenied);
        assert!(
            viewer.message().contains("vic is a viewer") && viewer.message().contains("operator"),
            "{}",
            viewer.message()
        );
    }

    #[test]
    fn anonymous_reads_follow_the_switch() {
        assert!(access(true).reader(&meta(None)).is_ok());
        let e = access(false).reader(&meta(None)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn debug_output_has_no_secret() {
        let text = format!("{:?}", access(true));
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("ana"));
    }

    #[test]
    fn one_secret_for_two_names_is_refused() {
        let e = Access::new(
            vec![
                ("same-secret-0123456789".into(), "a".into(), Role::Admin),
                ("same-secret-0123456789".into(), "b".into(), Role::Viewer),
            ],
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("same secret") && !e.contains("0123456789"),
            "{e}"
        );
    }
}
