//! The deploy-time policy: block when a report has findings at or above a severity, unless
//! the owner accepts the risk explicitly, which is audited (who, why, what). The deploy
//! path calls [`Policy::decide`] with the report of the installed package and, when it
//! goes ahead on an acceptance, writes the returned audit row in its own transaction with
//! [`record_acceptance`].

use serde::{Deserialize, Serialize};

use super::report::{Finding, Report, Severity};
use crate::ambient::Ambient;
use crate::error::{Coded, ErrorCode};
use crate::store::{AuditAction, AuditRecord, StoreError, WriteTx, audit_key};

/// Per-install policy (`[scan] block_at` in sigil.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Block deploys with a finding at or above this; `None` only reports.
    pub block_at: Option<Severity>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            block_at: Some(Severity::High),
        }
    }
}

/// The owner's explicit "deploy anyway".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptRisk {
    /// The username accepting.
    pub actor: String,
    /// Why; required, recorded verbatim (bounded).
    pub reason: String,
}

/// What the deploy is about, for the audit row.
#[derive(Debug, Clone)]
pub struct DeployContext {
    /// Owner id of the deployment (user or team id).
    pub owner: String,
    pub deployment: String,
}

#[derive(Debug, Clone)]
pub enum Decision {
    /// Nothing at or above the threshold.
    Allow,
    /// Blocking findings and no acceptance: the deploy must stop and show these.
    Block { blocking: Vec<Finding> },
    /// Blocking findings, accepted: go ahead and write `audit` with the deploy.
    Accepted {
        accepted: Vec<Finding>,
        audit: AuditRecord,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("accepting risk needs a reason (1 to {MAX_REASON} characters)")]
    Reason,
}

impl Coded for PolicyError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidRequest
    }
    fn hint(&self) -> Option<String> {
        Some("say why the findings are acceptable; the reason is kept in the audit log".into())
    }
}

pub const MAX_REASON: usize = 1000;
/// Findings named in one audit row (the report itself is stored with the deployment).
const MAX_AUDITED: usize = 50;

impl Policy {
    pub fn blocking<'a>(&self, report: &'a Report) -> Vec<&'a Finding> {
        match self.block_at {
            Some(t) => report.at_or_above(t).collect(),
            None => Vec::new(),
        }
    }

    pub fn decide(
        &self,
        report: &Report,
        accept: Option<&AcceptRisk>,
        ctx: &DeployContext,
        ambient: &Ambient,
    ) -> Result<Decision, PolicyError> {
        if let Some(a) = accept {
            let n = a.reason.trim().chars().count();
            if n == 0 || n > MAX_REASON {
                return Err(PolicyError::Reason);
            }
        }
        let blocking: Vec<Finding> = self.blocking(report).into_iter().cloned().collect();
        if blocking.is_empty() {
            return Ok(Decision::Allow);
        }
        let Some(a) = accept else {
            return Ok(Decision::Block { blocking });
        };
        let at = ambient.now_ms();
        let audit = AuditRecord {
            id: ambient.id("aud"),
            at,
            action: AuditAction::AcceptRisk,
            actor: a.actor.clone(),
            owner: ctx.owner.clone(),
            names: blocking
                .iter()
                .take(MAX_AUDITED)
                .map(|f| format!("{} {} ({})", f.severity, f.rule, f.location))
                .collect(),
            purpose: Some(a.reason.trim().to_string()),
            deployment: Some(ctx.deployment.clone()),
            error: None,
        };
        Ok(Decision::Accepted {
            accepted: blocking,
            audit,
        })
    }
}

/// Write an acceptance's audit row inside the deploy's transaction.
pub fn record_acceptance(w: &mut WriteTx, audit: &AuditRecord) -> Result<(), StoreError> {
    w.put(&audit_key(audit.at, &audit.id), audit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::report::Location;

    fn report(sevs: &[Severity]) -> Report {
        let f = sevs
            .iter()
            .map(|s| Finding::new("secret.generic", "x", Location::file("a", Some(1))).severity(*s))
            .collect();
        Report::new("pkg", 0, f)
    }

    fn ctx() -> DeployContext {
        DeployContext {
            owner: "usr_1".into(),
            deployment: "dep_1".into(),
        }
    }

    #[test]
    fn below_threshold_allows() {
        let d = Policy::default()
            .decide(
                &report(&[Severity::Medium]),
                None,
                &ctx(),
                &Ambient::default(),
            )
            .unwrap();
        assert!(matches!(d, Decision::Allow));
    }

    #[test]
    fn at_threshold_blocks_and_acceptance_is_audited() {
        let r = report(&[Severity::High, Severity::Low]);
        let amb = Ambient::default();
        match Policy::default().decide(&r, None, &ctx(), &amb).unwrap() {
            Decision::Block { blocking } => assert_eq!(blocking.len(), 1),
            other => panic!("{other:?}"),
        }
        let accept = AcceptRisk {
            actor: "alice".into(),
            reason: "  vendor test key, revoked  ".into(),
        };
        match Policy::default()
            .decide(&r, Some(&accept), &ctx(), &amb)
            .unwrap()
        {
            Decision::Accepted { accepted, audit } => {
                assert_eq!(accepted.len(), 1);
                assert_eq!(audit.action, AuditAction::AcceptRisk);
                assert_eq!(audit.actor, "alice");
                assert_eq!(audit.purpose.as_deref(), Some("vendor test key, revoked"));
                assert_eq!(audit.deployment.as_deref(), Some("dep_1"));
                assert_eq!(audit.names, ["high secret.generic (a:1)"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reasons_are_required_and_report_only_never_blocks() {
        let r = report(&[Severity::Critical]);
        let empty = AcceptRisk {
            actor: "a".into(),
            reason: " ".into(),
        };
        assert!(
            Policy::default()
                .decide(&r, Some(&empty), &ctx(), &Ambient::default())
                .is_err()
        );
        let off = Policy { block_at: None };
        assert!(matches!(
            off.decide(&r, None, &ctx(), &Ambient::default()).unwrap(),
            Decision::Allow
        ));
    }
}
