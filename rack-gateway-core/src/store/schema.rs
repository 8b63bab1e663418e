//! Schema migrations embedded in the binary, with the bookkeeping both backends share.
//!
//! Each backend has an ordered list of SQL scripts (`migrations/<backend>/NNNN_name.sql`).
//! Applied versions are recorded in `schema_migrations` (version, name, checksum, applied_at)
//! inside the same transaction as the script, so a script is applied exactly once. A script whose
//! text changed after it was applied is refused as [`StoreError::Corrupt`] instead of being
//! skipped. Each backend serialises concurrent runs itself (an advisory lock in PostgreSQL, a
//! `BEGIN IMMEDIATE` write lock in SQLite).

use super::StoreError;

/// One schema change.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Position in the sequence, starting at 1.
    pub(crate) version: i64,
    /// Short name, for people.
    pub(crate) name: &'static str,
    /// The script.
    pub(crate) sql: &'static str,
}

impl Migration {
    /// SHA-256 of the script, lower-case hex.
    pub(crate) fn checksum(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.sql.as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// PostgreSQL migrations, in order.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "identity",
        sql: include_str!("migrations/postgres/0001_identity.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "settings",
        sql: include_str!("migrations/postgres/0003_settings.sql"),
    },
    Migration {
        version: 4,
        name: "sessions",
        sql: include_str!("migrations/postgres/0004_sessions.sql"),
    },
];

/// Embedded (SQLite) migrations, in order.
#[cfg(feature = "sqlite")]
pub(crate) const EMBEDDED: &[Migration] = &[
    Migration {
        version: 1,
        name: "identity",
        sql: include_str!("migrations/embedded/0001_identity.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("migrations/embedded/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "settings",
        sql: include_str!("migrations/embedded/0003_settings.sql"),
    },
    Migration {
        version: 4,
        name: "sessions",
        sql: include_str!("migrations/embedded/0004_sessions.sql"),
    },
];

/// The migrations of `all` not yet in `applied` (version, checksum), after checking that the
/// applied ones are unchanged.
pub(crate) fn pending<'a>(
    all: &'a [Migration],
    applied: &[(i64, String)],
) -> Result<Vec<&'a Migration>, StoreError> {
    let mut todo = Vec::new();
    for migration in all {
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, checksum)) if *checksum != migration.checksum() => {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) changed after it was applied",
                    migration.version, migration.name
                )));
            }
            Some(_) => {}
            None => todo.push(migration),
        }
    }
    if let Some((newest, _)) = applied.iter().max_by_key(|(version, _)| *version) {
        if all.iter().all(|m| m.version < *newest) {
            tracing::warn!(
                version = newest,
                "database schema is newer than this binary knows"
            );
        }
    }
    Ok(todo)
}

#[cfg(all(test, feature = "postgres", feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for list in [POSTGRES, EMBEDDED] {
            for (i, migration) in list.iter().enumerate() {
                assert_eq!(migration.version, i as i64 + 1, "{}", migration.name);
            }
        }
    }

    #[test]
    fn pending_skips_applied_and_refuses_edited_scripts() {
        let first = &POSTGRES[0];
        assert_eq!(pending(POSTGRES, &[]).unwrap().len(), POSTGRES.len());
        let applied = [(first.version, first.checksum())];
        assert!(pending(POSTGRES, &applied)
            .unwrap()
            .iter()
            .all(|m| m.version != first.version));
        let edited = [(first.version, "0".repeat(64))];
        assert!(matches!(
            pending(POSTGRES, &edited),
            Err(StoreError::Corrupt(_))
        ));
    }
}
