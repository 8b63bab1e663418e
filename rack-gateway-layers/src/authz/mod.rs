//! authz (in progress).
