package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// migrationsTable records the applied schema versions. Workers starting at
// once may each record a version; the engine folds the copies.
const migrationsTable = "schema_migrations"

// Migrate applies the schema migrations (Migrations) that
// database has not recorded yet, in version order. The database must exist.
// Every statement is idempotent, so concurrent calls from several workers,
// or a call after one that failed part way, succeed.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	db := quoteIdent(database)
	table := db + "." + migrationsTable
	err = execIdempotent(ctx, conn, "CREATE TABLE IF NOT EXISTS "+table+` (
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
ORDER BY version`)
	if err != nil {
		return fmt.Errorf("clickhouse: create %s: %w", migrationsTable, err)
	}
	applied, err := AppliedVersions(ctx, conn, database)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if slices.Contains(applied, m.Version) {
			continue
		}
		for _, stmt := range m.Statements {
			stmt = strings.ReplaceAll(stmt, databasePlaceholder, db)
			if err := execIdempotent(ctx, conn, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %03d_%s: %w", m.Version, m.Name, err)
			}
		}
		if err := record(ctx, conn, table, m); err != nil {
			return fmt.Errorf("clickhouse: record migration %03d_%s: %w", m.Version, m.Name, classify(ctx, err))
		}
	}
	return nil
}

// AppliedVersions lists the schema versions recorded in database, ascending.
func AppliedVersions(ctx context.Context, conn driver.Conn, database string) ([]uint32, error) {
	table := quoteIdent(database) + "." + migrationsTable
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+table+" ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read %s: %w", migrationsTable, classify(ctx, err))
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("clickhouse: read %s: %w", migrationsTable, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: read %s: %w", migrationsTable, classify(ctx, err))
	}
	return out, nil
}

// record notes an applied migration. It uses a native batch: an INSERT with
// inline VALUES never completes on ClickHouse 18.16 over this driver.
func record(ctx context.Context, conn driver.Conn, table string, m Migration) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (version, name)")
	if err != nil {
		return err
	}
	defer batch.Close()
	if err := batch.Append(m.Version, m.Name); err != nil {
		return err
	}
	return batch.Send()
}

// execIdempotent runs one "IF NOT EXISTS" statement, treating "already
// exists" from a concurrent creator as success.
func execIdempotent(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	switch exceptionCode(err) {
	case codeTableAlreadyExists, codeDatabaseAlreadyExists:
		return nil
	}
	return classify(ctx, err)
}
