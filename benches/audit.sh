#!/usr/bin/env bash
# Audit trail throughput on PostgreSQL, in one run: durable appends/s through the group-commit
# AuditWriter, plain single-row INSERTs/s of audit-shaped rows as the baseline, and records
# verified/s by verify_chain over >= 200k rows, with PASS/FAIL against the targets
# (>= 10,000 durable appends/s, >= 200,000 verified records/s). See benches/audit.rs.
#
# Runs against DATABASE_URL when set (a fresh database is created on that server and dropped),
# else a throwaway local cluster (scripts/with-postgres). Not part of scripts/test.
# Settings (environment): AUDIT_BENCH_CLIENTS (64), AUDIT_BENCH_SECONDS (10),
# AUDIT_BENCH_VERIFY_ROWS (200000). Exit 1 when a target is missed, 2 on error.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p rack-gateway-benches --example audit-bench
exec scripts/with-postgres cargo run --quiet --release --locked -p rack-gateway-benches --example audit-bench
