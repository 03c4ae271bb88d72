package parquetsink

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// readChunk is how many rows ReadTable decodes at a time.
const readChunk = 1024

// ReadTable reads every row of one table back, all days, in file order: days
// ascending, then files in the order they were written. It is meant for
// tests and tools; analysts query the files with DuckDB or ClickHouse.
func ReadTable[T any](dir, table string) ([]T, error) {
	paths, err := tableFiles(dir, table)
	if err != nil {
		return nil, err
	}
	var rows []T
	for _, p := range paths {
		if rows, err = appendFile(rows, p); err != nil {
			return nil, fmt.Errorf("parquetsink: read %s: %w", p, err)
		}
	}
	return rows, nil
}

// tableFiles lists the complete files of one table, in file order.
func tableFiles(dir, table string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, table, partitionPrefix+"*", filePrefix+"*"+fileSuffix))
	if err != nil {
		return nil, fmt.Errorf("parquetsink: list %s: %w", table, err)
	}
	// Day directories sort by date and ULID names by creation time.
	slices.Sort(paths)
	return paths, nil
}

func appendFile[T any](rows []T, path string) (_ []T, err error) {
	f, err := os.Open(path)
	if err != nil {
		return rows, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return rows, err
	}
	file, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		return rows, err
	}
	// The generic reader panics when T does not fit the file's schema.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("schema does not match row type: %v", p)
		}
	}()
	r := parquet.NewGenericReader[T](file)
	defer r.Close()
	buf := make([]T, readChunk)
	for {
		n, err := r.Read(buf)
		rows = append(rows, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
	}
}
