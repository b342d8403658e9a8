//! War-room decisions and who may make them: tenant priorities for the
//! reindex, the audit trail they leave, and the roles of the people in the
//! room.

use chrono::{DateTime, Utc};

use super::Priority;

/// Longest reason accepted for a decision, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Largest explicit rank within a priority.
pub const MAX_RANK: u32 = 10_000;

/// A tenant's priority as someone in the war room set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityDecision {
    pub tenant_id: String,
    pub priority: Priority,
    /// Position within the priority (1 = first); 0 = the fair round-robin.
    pub rank: u32,
    /// 1 for the first decision on a tenant, +1 for each later one. A tenant
    /// nobody has prioritized is at version 0.
    pub version: u64,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
    pub reason: String,
}

impl PriorityDecision {
    /// "P0", or "P0 #2" with an explicit rank.
    pub fn label(&self) -> String {
        label(self.priority, self.rank)
    }
}

/// Where a tenant stands in the reindex order: by priority, then tenants
/// with an explicit rank one after the other (#1 first), then the rest
/// (rank 0) in the fair round-robin.
pub fn order_key(priority: Priority, rank: u32) -> (Priority, u32) {
    (priority, if rank == 0 { u32::MAX } else { rank })
}

pub fn label(priority: Priority, rank: u32) -> String {
    match rank {
        0 => priority.as_str().to_string(),
        r => format!("{} #{r}", priority.as_str()),
    }
}

/// Checks what a person typed for a decision; the message names the field.
pub fn check_request(tenant_id: &str, rank: u32, reason: &str) -> Result<(), String> {
    if tenant_id.trim().is_empty() {
        return Err("tenant is required".into());
    }
    if rank > MAX_RANK {
        return Err(format!(
            "rank {rank} is out of range (1..={MAX_RANK}, or 0 for fair order)"
        ));
    }
    let chars = reason.chars().count();
    if reason.trim().is_empty() {
        return Err("reason is required: say why, it goes on the record".into());
    }
    if chars > MAX_REASON_CHARS {
        return Err(format!(
            "reason is {chars} characters; the limit is {MAX_REASON_CHARS}"
        ));
    }
    super::sanitize::refuse_controls("reason", reason, super::sanitize::LINE_BREAKS)
}

/// One line of the war room's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// "set_priority", "publish", ...
    pub action: String,
    pub target: String,
    pub reason: String,
    pub detail: String,
}

/// What a person in the war room may do. Each role may do everything the
/// roles before it may: viewer reads and looks up; operator also sets
/// priorities; comms also publishes status updates; admin does everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Comms,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Comms, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Comms => "comms",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// "a viewer", "an operator", "an admin".
    pub fn with_article(self) -> String {
        let r = self.as_str();
        if r.starts_with(['a', 'e', 'i', 'o', 'u']) {
            format!("an {r}")
        } else {
            format!("a {r}")
        }
    }

    pub fn can_prioritize(self) -> bool {
        self >= Role::Operator
    }

    pub fn can_publish(self) -> bool {
        self >= Role::Comms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_field_by_field() {
        assert!(check_request("t00001", 0, "title company closing sales").is_ok());
        assert!(check_request("", 0, "x").unwrap_err().contains("tenant"));
        assert!(
            check_request("t1", 0, "  ")
                .unwrap_err()
                .contains("reason is required")
        );
        let long = "é".repeat(MAX_REASON_CHARS + 1);
        let e = check_request("t1", 0, &long).unwrap_err();
        assert!(e.contains("501 characters") && e.contains("500"), "{e}");
        assert!(check_request("t1", 0, &"é".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(
            check_request("t1", MAX_RANK + 1, "x")
                .unwrap_err()
                .contains("rank")
        );
        assert!(
            check_request("t1", 0, "a\x1b[2Jb")
                .unwrap_err()
                .contains("control")
        );
    }

    #[test]
    fn roles_include_the_ones_before() {
        assert!(!Role::Viewer.can_prioritize());
        assert!(Role::Operator.can_prioritize() && !Role::Operator.can_publish());
        assert!(Role::Comms.can_prioritize() && Role::Comms.can_publish());
        assert!(Role::Admin.can_publish());
        assert_eq!(Role::parse(" Operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn labels_show_an_explicit_rank() {
        assert_eq!(label(Priority::P0, 0), "P0");
        assert_eq!(label(Priority::P1, 3), "P1 #3");
    }
}
