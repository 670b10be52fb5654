//! Schema migrations: the numbered files in `sql/`, embedded in the binary,
//! applied in order inside one transaction and recorded in `schema_migrations`.

use postgres::Client;

use super::StoreError;

/// Every migration, in order. Add a file to `sql/` and a line here.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../sql/0001_init.sql")),
    (
        "0002_traffic_totals.sql",
        include_str!("../../sql/0002_traffic_totals.sql"),
    ),
    (
        "0003_packet_context.sql",
        include_str!("../../sql/0003_packet_context.sql"),
    ),
    (
        "0004_client_index.sql",
        include_str!("../../sql/0004_client_index.sql"),
    ),
    (
        "0005_sender_tokens.sql",
        include_str!("../../sql/0005_sender_tokens.sql"),
    ),
    (
        "0006_incidents.sql",
        include_str!("../../sql/0006_incidents.sql"),
    ),
    (
        "0007_alert_cursors.sql",
        include_str!("../../sql/0007_alert_cursors.sql"),
    ),
    (
        "0008_suppression_rules.sql",
        include_str!("../../sql/0008_suppression_rules.sql"),
    ),
    (
        "0009_packet_search.sql",
        include_str!("../../sql/0009_packet_search.sql"),
    ),
    (
        "0010_minute_first_id.sql",
        include_str!("../../sql/0010_minute_first_id.sql"),
    ),
    (
        "0011_sender_server.sql",
        include_str!("../../sql/0011_sender_server.sql"),
    ),
    (
        "0012_packet_partitions.sql",
        include_str!("../../sql/0012_packet_partitions.sql"),
    ),
];

/// Arbitrary key for the advisory lock that keeps two servers from migrating at once.
const MIGRATION_LOCK: i64 = 0x4E53_4D49_4752; // "NSMIGR"

/// Applies the migrations not yet recorded. All or nothing.
pub fn apply(client: &mut Client) -> Result<(), StoreError> {
    apply_until(client, MIGRATIONS.len())
}

/// Applies the first `count` migrations not yet recorded: an installation
/// of an older version, for the upgrade's tests and benchmarks.
pub fn apply_until(client: &mut Client, count: usize) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    TEXT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let applied: Vec<String> = tx
        .query("SELECT version FROM schema_migrations", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (name, sql) in MIGRATIONS.iter().take(count) {
        if applied.iter().any(|v| v == name) {
            continue;
        }
        tx.batch_execute(sql)
            .map_err(|source| StoreError::Migrate { name, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[name],
        )?;
        log::info!("applied migration {name}");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: 0002_traffic_totals.sql once sat in sql/ without a line
    /// here, so it never ran and every batch failed on the missing table.
    #[test]
    fn every_file_in_sql_is_a_migration_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
    }
}
