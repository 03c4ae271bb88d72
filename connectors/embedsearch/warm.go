package embedsearch

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"

	"feedline/schemas"
)

// warm reads the index files of dir once and runs a few searches, in the
// background, so the first shopper after a start does not pay for pages
// the operating system has not read yet nor for doc values not loaded.
// Searches run meanwhile are answered as usual; Close stops it.
func (ix *Index) warm(dir string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ix.stopWarming, ix.warmed = cancel, done
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return ctx.Err()
			}
			f, err := os.Open(path)
			if err != nil {
				return ctx.Err()
			}
			defer f.Close()
			for ctx.Err() == nil {
				if _, err := f.Read(buf); err != nil {
					break // io.EOF, or a file merging removed: nothing more to warm
				}
			}
			return ctx.Err()
		})
		// Sorts and facets read doc values; a text search reads the text
		// fields' dictionaries.
		for _, r := range []schemas.SearchRequest{
			{Sort: schemas.SortNewest}, {Sort: schemas.SortPriceAsc}, {Text: "a 1", Sort: schemas.SortRelevance},
		} {
			if ctx.Err() != nil {
				return
			}
			p, err := ix.plan(r)
			if err != nil {
				return
			}
			_, _ = ix.search(ctx, p, r, nil)
		}
	}()
}
