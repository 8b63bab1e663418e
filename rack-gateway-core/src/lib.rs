//! The domain of rack-gateway: who may do what to a Convox rack, and where that is stored.
//!
//! This crate has no HTTP server. It holds the access model ([`rbac`]), the Convox route
//! allow-list ([`routes`]), identities and API tokens ([`identity`]), the audit chain
//! ([`audit`]), redaction ([`redact`]), settings ([`settings`]) and the async store traits with
//! their PostgreSQL and embedded implementations ([`store`]).
//!
//! The two implementations are behind the `postgres` and `sqlite` features (both on by
//! default). Without them the rest stays: a service with storage of its own implements
//! [`identity::IdentitySource`] for the identity resolver and [`audit::AuditSink`] for the audit
//! writer.
//!
//! ```
//! use rack_gateway_core::rbac::{explain, Access, Policy, Role};
//!
//! let roles = [Role::Viewer];
//! let verdict = explain(&Access::Roles(&roles), &Policy::default(), "GET", false, "/apps");
//! assert!(verdict.is_allowed());
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod identity;
pub mod rbac;
pub mod redact;
pub mod routes;
pub mod settings;
pub mod store;
