//! The authority graph (who holds which approval level) and approval rules
//! (how many approvers, separation of duties, deadlines), and the approval
//! state of a mission or a held step.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::mission::AuthorityLevel;
use crate::time::{Millis, Timestamp};

/// Per namespace: the approval level of users and of directory groups. A
/// user's level is the highest of their own and their groups'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorityGraph {
    #[serde(default)]
    pub users: BTreeMap<UserId, AuthorityLevel>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, AuthorityLevel>))]
    pub groups: BTreeMap<String, AuthorityLevel>,
}

impl AuthorityGraph {
    pub fn level_of(&self, user: &UserId, groups: &BTreeSet<String>) -> Option<AuthorityLevel> {
        let own = self.users.get(user).copied();
        let via_groups = groups
            .iter()
            .filter_map(|g| self.groups.get(g).copied())
            .max();
        own.max(via_groups)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.users.len() + self.groups.len() > 10_000 {
            return Err("an authority graph holds at most 10000 users and groups".into());
        }
        if let Some(g) = self.groups.keys().find(|g| g.is_empty() || g.len() > 256) {
            return Err(format!("group name `{g}` must be 1 to 256 characters"));
        }
        Ok(())
    }
}

/// What happens when an approval's deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AtDeadline {
    /// Ask the next level up (past L4: reject).
    EscalateToNextLevel,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRules {
    /// Escalations never ask for less than this level.
    pub min_level: AuthorityLevel,
    /// Distinct approvers needed.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub quorum: u8,
    /// The mission's requester and its agent's owner may not approve it.
    pub separation_of_duties: bool,
    /// How long approvers have.
    #[cfg_attr(feature = "openapi", schema(value_type = u64, minimum = 60_000, maximum = 2_592_000_000u64))]
    pub deadline: Millis,
    pub at_deadline: AtDeadline,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        ApprovalRules {
            min_level: AuthorityLevel::L1,
            quorum: 1,
            separation_of_duties: true,
            deadline: Millis::from_secs(24 * 3600),
            at_deadline: AtDeadline::EscalateToNextLevel,
        }
    }
}

impl ApprovalRules {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.quorum) {
            return Err("quorum must be 1 to 10 approvers".into());
        }
        if self.deadline < Millis::from_secs(60)
            || self.deadline > Millis::from_secs(30 * 24 * 3600)
        {
            return Err("approval deadline must be between 1 minute and 30 days".into());
        }
        Ok(())
    }
}

/// The namespace's authority configuration, frozen into each mission's
/// boundary at launch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorityConfig {
    pub graph: AuthorityGraph,
    pub rules: ApprovalRules,
}

impl AuthorityConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.graph.validate()?;
        self.rules.validate()
    }
}

pub fn next_level(l: AuthorityLevel) -> Option<AuthorityLevel> {
    match l {
        AuthorityLevel::L1 => Some(AuthorityLevel::L2),
        AuthorityLevel::L2 => Some(AuthorityLevel::L3),
        AuthorityLevel::L3 => Some(AuthorityLevel::L4),
        AuthorityLevel::L4 => None,
    }
}

/// One approver's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vote {
    pub approver: UserId,
    pub groups: BTreeSet<String>,
    pub level: AuthorityLevel,
    pub approve: bool,
    pub reason: String,
    pub at: Timestamp,
}

/// A pending (or decided) approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalState {
    pub required_level: AuthorityLevel,
    pub quorum: u8,
    pub deadline: Timestamp,
    pub votes: Vec<Vote>,
    pub status: ApprovalStatus,
    /// Deadline escalations so far.
    pub escalations: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
}

/// Why an approver's vote was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum VoteRefusal {
    #[error("`{approver}` holds no approval level in this namespace")]
    NoAuthority { approver: UserId },
    #[error("`{approver}` holds {held}, but this approval needs {required}")]
    InsufficientLevel {
        approver: UserId,
        held: AuthorityLevel,
        required: AuthorityLevel,
    },
    #[error("separation of duties: `{approver}` requested this mission or owns its agent")]
    SeparationOfDuties { approver: UserId },
    #[error("`{approver}` has already decided")]
    AlreadyDecided { approver: UserId },
    #[error("the approval is already {0:?}")]
    NotPending(ApprovalStatus),
    #[error("the approval deadline {deadline} has passed")]
    PastDeadline { deadline: Timestamp },
}

impl ApprovalState {
    pub fn open(required_level: AuthorityLevel, rules: &ApprovalRules, now: Timestamp) -> Self {
        ApprovalState {
            required_level,
            quorum: rules.quorum,
            deadline: now.plus(rules.deadline),
            votes: Vec::new(),
            status: ApprovalStatus::Pending,
            escalations: 0,
        }
    }

    /// Distinct approvers at or above the required level.
    pub fn approvals(&self) -> usize {
        self.votes
            .iter()
            .filter(|v| v.approve && v.level >= self.required_level)
            .count()
    }

    /// Checks a vote against the frozen authority configuration and the
    /// people it must exclude. Returns the approver's level.
    pub fn check_vote(
        &self,
        config: &AuthorityConfig,
        approver: &UserId,
        groups: &BTreeSet<String>,
        excluded: &[&UserId],
        now: Timestamp,
    ) -> Result<AuthorityLevel, VoteRefusal> {
        if self.status != ApprovalStatus::Pending {
            return Err(VoteRefusal::NotPending(self.status));
        }
        if now >= self.deadline {
            return Err(VoteRefusal::PastDeadline {
                deadline: self.deadline,
            });
        }
        if config.rules.separation_of_duties && excluded.contains(&approver) {
            return Err(VoteRefusal::SeparationOfDuties {
                approver: approver.clone(),
            });
        }
        let held =
            config
                .graph
                .level_of(approver, groups)
                .ok_or_else(|| VoteRefusal::NoAuthority {
                    approver: approver.clone(),
                })?;
        if held < self.required_level {
            return Err(VoteRefusal::InsufficientLevel {
                approver: approver.clone(),
                held,
                required: self.required_level,
            });
        }
        if self
            .votes
            .iter()
            .any(|v| &v.approver == approver && v.level >= self.required_level)
        {
            return Err(VoteRefusal::AlreadyDecided {
                approver: approver.clone(),
            });
        }
        Ok(held)
    }

    /// Records a checked vote and settles the status.
    pub fn record(&mut self, vote: Vote) {
        let approve = vote.approve;
        self.votes.push(vote);
        if !approve {
            self.status = ApprovalStatus::Rejected;
        } else if self.approvals() >= usize::from(self.quorum) {
            self.status = ApprovalStatus::Approved;
        }
    }

    /// Applies the deadline rule. Returns the new status.
    pub fn expire(&mut self, rules: &ApprovalRules, now: Timestamp) -> ApprovalStatus {
        match (rules.at_deadline, next_level(self.required_level)) {
            (AtDeadline::EscalateToNextLevel, Some(next)) => {
                self.required_level = next;
                self.deadline = now.plus(rules.deadline);
                self.escalations += 1;
            }
            _ => self.status = ApprovalStatus::Rejected,
        }
        self.status
    }
}
