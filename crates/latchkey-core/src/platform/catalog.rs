//! The permission catalog: every scope an app may request, with the words the consent screen
//! uses for it, the group it is listed under and its sensitivity.

use latchkey_types::Scope;

use super::model::Role;
use crate::config::{CatalogConfig, ScopeConfig, Sensitivity};

/// The scope that lets a token manage apps through the self-service API.
pub const APPS_WRITE: &str = "apps.write";

const MAX_TITLE_LEN: usize = 80;
const MAX_DESCRIPTION_LEN: usize = 300;
const MAX_GROUP_LEN: usize = 40;
const MAX_SCOPES: usize = 500;

fn builtin(name: &str, title: &str, description: &str, group: &str, s: Sensitivity) -> ScopeConfig {
    ScopeConfig {
        name: name.into(),
        title: title.into(),
        description: description.into(),
        group: group.into(),
        sensitivity: s,
        min_role: Role::Member,
    }
}

/// `scope`, held only by `role` and above.
fn held_by(role: Role, scope: ScopeConfig) -> ScopeConfig {
    ScopeConfig {
        min_role: role,
        ..scope
    }
}

/// The scopes every deployment has.
pub fn builtin_scopes() -> Vec<ScopeConfig> {
    vec![
        builtin(
            "openid",
            "Know who you are",
            "Sign you in with your account and learn your user id.",
            "Your identity",
            Sensitivity::Normal,
        ),
        builtin(
            "profile",
            "See your name",
            "Read the name on your profile.",
            "Your identity",
            Sensitivity::Normal,
        ),
        builtin(
            "email",
            "See your email address",
            "Read the email address you sign in with.",
            "Your identity",
            Sensitivity::Normal,
        ),
        builtin(
            "offline_access",
            "Stay connected",
            "Keep access while you are not using the app, until you revoke it.",
            "Your identity",
            Sensitivity::Normal,
        ),
        held_by(
            Role::Developer,
            builtin(
                APPS_WRITE,
                "Manage your OAuth apps",
                "Create, change and delete apps of your accounts in the developer console.",
                "Platform",
                Sensitivity::Sensitive,
            ),
        ),
    ]
}

/// A realistic catalog for `serve --demo` when the configuration declares none.
pub fn demo_scopes() -> Vec<ScopeConfig> {
    let n = Sensitivity::Normal;
    let s = Sensitivity::Sensitive;
    let r = Sensitivity::Restricted;
    vec![
        builtin(
            "account.read",
            "See your account settings",
            "Read account names, members and settings.",
            "Account",
            n,
        ),
        builtin(
            "dns.read",
            "See your DNS records",
            "List the DNS zones and records of your accounts.",
            "DNS",
            n,
        ),
        held_by(
            Role::Developer,
            builtin(
                "dns.write",
                "Change your DNS records",
                "Create, edit and delete DNS records. This can take your sites offline.",
                "DNS",
                s,
            ),
        ),
        builtin(
            "workers.read",
            "See your Workers",
            "List your Workers scripts, routes and their logs.",
            "Workers",
            n,
        ),
        held_by(
            Role::Developer,
            builtin(
                "workers.write",
                "Deploy Workers",
                "Upload, change and delete Workers scripts and routes.",
                "Workers",
                s,
            ),
        ),
        held_by(
            Role::Admin,
            builtin(
                "billing.read",
                "See your invoices",
                "Read invoices and the payment method on file.",
                "Billing",
                s,
            ),
        ),
        held_by(
            Role::Admin,
            builtin(
                "members.write",
                "Manage account members",
                "Invite and remove members and change their roles.",
                "Account",
                r,
            ),
        ),
    ]
}

/// One scope of the catalog.
pub type CatalogScope = ScopeConfig;

/// The catalog: the built-in scopes, then the configured ones.
#[derive(Debug, Clone)]
pub struct Catalog {
    scopes: Vec<CatalogScope>,
}

impl Catalog {
    /// Validates the configured scopes and adds the built-in ones.
    pub fn from_config(config: &CatalogConfig) -> Result<Self, String> {
        Self::with_scopes(&config.scopes)
    }

    pub fn with_scopes(extra: &[ScopeConfig]) -> Result<Self, String> {
        let mut scopes = builtin_scopes();
        if extra.len() > MAX_SCOPES {
            return Err(format!("at most {MAX_SCOPES} scopes"));
        }
        for s in extra {
            if Scope::parse(&s.name).map_or(true, |p| p.len() != 1) {
                return Err(format!("{:?} is not a valid scope name", s.name));
            }
            if scopes.iter().any(|b| b.name == s.name) {
                return Err(format!("{:?} is declared twice (or is built in)", s.name));
            }
            if s.title.trim().is_empty() || s.title.len() > MAX_TITLE_LEN {
                return Err(format!(
                    "{}: title must be 1 to {MAX_TITLE_LEN} characters",
                    s.name
                ));
            }
            if s.description.len() > MAX_DESCRIPTION_LEN {
                return Err(format!(
                    "{}: description must be at most {MAX_DESCRIPTION_LEN} characters",
                    s.name
                ));
            }
            if s.group.trim().is_empty() || s.group.len() > MAX_GROUP_LEN {
                return Err(format!(
                    "{}: group must be 1 to {MAX_GROUP_LEN} characters",
                    s.name
                ));
            }
            scopes.push(s.clone());
        }
        Ok(Self { scopes })
    }

    /// The built-in scopes only.
    pub fn builtin() -> Self {
        Self {
            scopes: builtin_scopes(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&CatalogScope> {
        self.scopes.iter().find(|s| s.name == name)
    }

    pub fn all(&self) -> &[CatalogScope] {
        &self.scopes
    }

    /// The group names, in catalog order.
    pub fn groups(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.scopes {
            if !out.contains(&s.group.as_str()) {
                out.push(&s.group);
            }
        }
        out
    }

    /// The least account role that holds `scope` (an unknown scope: the highest).
    pub fn min_role(&self, scope: &str) -> Role {
        self.get(scope).map_or(Role::Owner, |s| s.min_role)
    }

    /// Why an app may not ask for `scope`, if it may not. `verified`: the app's domain is
    /// verified; `approved`: the restricted scopes the operator approved for it.
    pub fn refusal(&self, scope: &str, verified: bool, approved: &[String]) -> Option<String> {
        match self.get(scope) {
            None => Some(format!(
                "{scope} is not in the permission catalog; pick scopes the platform offers"
            )),
            Some(s) => match s.sensitivity {
                Sensitivity::Normal => None,
                Sensitivity::Sensitive if verified => None,
                Sensitivity::Sensitive => Some(format!(
                    "{scope} is a sensitive scope: only apps with a verified domain may request it"
                )),
                Sensitivity::Restricted if approved.iter().any(|a| a == scope) => None,
                Sensitivity::Restricted => Some(format!(
                    "{scope} is a restricted scope: it needs the operator's approval; request it from the app's page"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_come_first_and_duplicates_are_refused() {
        let c = Catalog::with_scopes(&demo_scopes()).expect("demo catalog");
        assert_eq!(c.all()[0].name, "openid");
        assert!(c.get("dns.read").is_some());
        let mut dup = demo_scopes();
        dup.push(dup[0].clone());
        assert!(Catalog::with_scopes(&dup).is_err());
        let mut bad = demo_scopes();
        bad[0].name = "two words".into();
        assert!(Catalog::with_scopes(&bad).is_err());
    }

    #[test]
    fn sensitivity_rules() {
        let c = Catalog::with_scopes(&demo_scopes()).expect("demo catalog");
        assert!(c.refusal("dns.read", false, &[]).is_none());
        assert!(c.refusal("nope.read", true, &[]).is_some());
        assert!(c.refusal("dns.write", false, &[]).is_some());
        assert!(c.refusal("dns.write", true, &[]).is_none());
        assert!(c.refusal("members.write", true, &[]).is_some());
        assert!(
            c.refusal("members.write", false, &["members.write".into()])
                .is_none()
        );
    }
}
