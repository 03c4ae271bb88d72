package parquetsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/parquet-go/parquet-go"

	"feedline/schemas"
)

var _ schemas.PriceHistory = (*Sink)(nil)

// productIDColumn is the column whose statistics and bloom filter let a
// price history read skip row groups of other products.
const productIDColumn = "product_id"

// Prices scans the product_changes files of the days since since, one row
// group at a time, skipping the row groups whose bloom filter or page
// statistics rule the product out.
func (s *Sink) Prices(ctx context.Context, productID string, since time.Time) ([]schemas.PricePoint, error) {
	paths, err := tableFiles(s.dir, schemas.TableProductChanges)
	if err != nil {
		return nil, err
	}
	first := partitionPrefix + since.UTC().Format(dayLayout)
	var trail schemas.PriceTrail
	for _, p := range paths {
		if filepath.Base(filepath.Dir(p)) < first {
			continue // a whole day before the window
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := pricesOfFile(ctx, p, productID, since, &trail); err != nil {
			return nil, fmt.Errorf("parquetsink: prices of %s in %s: %w", productID, p, err)
		}
	}
	return trail.Points(), nil
}

func pricesOfFile(ctx context.Context, path, productID string, since time.Time, trail *schemas.PriceTrail) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	file, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		return err
	}
	col, ok := file.Schema().Lookup(productIDColumn)
	if !ok {
		return fmt.Errorf("no %s column", productIDColumn)
	}
	// The generic reader panics when the row type does not fit the file's schema.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("schema does not match row type: %v", p)
		}
	}()
	id := parquet.ValueOf(productID)
	buf := make([]schemas.ProductChangeRow, readChunk)
	for _, rg := range file.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !mayHold(rg.ColumnChunks()[col.ColumnIndex], productID, id) {
			continue
		}
		if err := pricesOfRowGroup(rg, buf, productID, since, trail); err != nil {
			return err
		}
	}
	return nil
}

// mayHold reports whether a row group's product_id chunk may hold id: its
// bloom filter and page min/max say so, or are missing.
func mayHold(chunk parquet.ColumnChunk, productID string, id parquet.Value) bool {
	if bf := chunk.BloomFilter(); bf != nil {
		if ok, err := bf.Check(id); err == nil && !ok {
			return false
		}
	}
	ci, err := chunk.ColumnIndex()
	if err != nil {
		return true
	}
	want := []byte(productID)
	for i := range ci.NumPages() {
		if ci.NullPage(i) {
			continue
		}
		if bytes.Compare(ci.MinValue(i).ByteArray(), want) <= 0 && bytes.Compare(want, ci.MaxValue(i).ByteArray()) <= 0 {
			return true
		}
	}
	return false
}

func pricesOfRowGroup(rg parquet.RowGroup, buf []schemas.ProductChangeRow, productID string, since time.Time, trail *schemas.PriceTrail) error {
	r := parquet.NewGenericRowGroupReader[schemas.ProductChangeRow](rg)
	defer r.Close()
	for {
		n, err := r.Read(buf)
		for i := range buf[:n] {
			c := &buf[i]
			if c.ProductID != productID || c.Kind != string(schemas.ChangeUpsert) || c.ChangedAt.Before(since) {
				continue
			}
			price := c.Price
			if c.SalePrice > 0 {
				price = c.SalePrice
			}
			trail.Add(c.ChangedAt, c.Version, price, c.Currency)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
