//! The access model: permission strings, roles, and the decision for one request.
//!
//! [`explain`] is the single decision function: the AuthorizeLayer calls it for every
//! proxied request, `rack-gateway rbac explain` prints it, and its reason goes into the audit
//! record.
//!
//! ```
//! use rack_gateway_core::rbac::{explain, Access, Outcome, Policy, Role};
//!
//! let verdict = explain(&Access::Roles(&[Role::Viewer]), &Policy::default(), "POST", false, "/apps/web/restart");
//! assert_eq!(verdict.outcome, Outcome::Deny);
//! assert_eq!(verdict.status, 403);
//! ```

mod access;
mod explain;
mod permission;
mod role;
mod role_set;

pub use access::{authorize, Access, Denial, Grant};
pub use explain::{explain, explain_in, Outcome, Policy, Verdict, DEPLOY_WITH_APPROVAL};
pub use permission::{Permission, PermissionError};
pub use role::{Role, UnknownRole};
pub use role_set::{RoleSet, RoleSetBuilder, RoleSetError};
