//! rescue (in progress).
