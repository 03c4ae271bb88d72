package schemas

import (
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ClickHouse schema: versioned migrations in clickhouse/NNN_name.sql, applied
// in order by connectors/clickhouse.Migrate. Every statement is idempotent
// (IF NOT EXISTS), so several workers may apply the same version at once.
// The DDL runs on ClickHouse 18.16 and on current releases alike.

//go:embed clickhouse/*.sql
var clickHouseFiles embed.FS

// ClickHouseDatabasePlaceholder stands for the quoted database name in the
// migration statements; the migrator substitutes it before running them.
const ClickHouseDatabasePlaceholder = "{database}"

// ClickHouseMigration is one version of the ClickHouse schema.
type ClickHouseMigration struct {
	Version    uint32
	Name       string   // from the file name, e.g. "tables" for 001_tables.sql
	Statements []string // one SQL statement each, comments removed
}

// ClickHouseMigrations returns the embedded migrations in version order.
func ClickHouseMigrations() ([]ClickHouseMigration, error) {
	names, err := fs.Glob(clickHouseFiles, "clickhouse/*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]ClickHouseMigration, 0, len(names))
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 || label == "" {
			return nil, fmt.Errorf("clickhouse migration %s: name must be NNN_name.sql", name)
		}
		text, err := clickHouseFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		stmts, err := splitSQL(string(text))
		if err != nil {
			return nil, fmt.Errorf("clickhouse migration %s: %w", name, err)
		}
		out = append(out, ClickHouseMigration{Version: uint32(v), Name: label, Statements: stmts})
	}
	slices.SortFunc(out, func(a, b ClickHouseMigration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("clickhouse migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// splitSQL splits a script into statements at semicolons outside quotes and
// removes "--" comments; the native protocol runs one statement per query.
func splitSQL(script string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
		quote byte // ', " or ` while inside a quoted token
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(script) {
				i++
				cur.WriteByte(script[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			cur.WriteByte(c)
		case c == '-' && i+1 < len(script) && script[i+1] == '-':
			for i < len(script) && script[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	flush()
	return stmts, nil
}
