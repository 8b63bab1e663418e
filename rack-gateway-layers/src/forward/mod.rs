//! forward (in progress).
