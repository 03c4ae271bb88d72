package clickhouse

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

// The analytics schema: versioned migrations in migrations/NNN_name.sql,
// applied in order by Migrate. Every statement is idempotent (IF NOT EXISTS),
// so several workers may apply the same version at once. The DDL runs on
// ClickHouse 18.16 and on current releases alike.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// databasePlaceholder stands for the quoted database name in the migration
// statements; Migrate substitutes it before running them.
const databasePlaceholder = "{database}"

// Migration is one version of the ClickHouse schema.
type Migration struct {
	Version    uint32
	Name       string   // from the file name, e.g. "tables" for 001_tables.sql
	Statements []string // one SQL statement each, comments removed
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 || label == "" {
			return nil, fmt.Errorf("clickhouse migration %s: name must be NNN_name.sql", name)
		}
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		stmts, err := splitSQL(string(text))
		if err != nil {
			return nil, fmt.Errorf("clickhouse migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: uint32(v), Name: label, Statements: stmts})
	}
	slices.SortFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
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
