package elasticsearch

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	json "github.com/goccy/go-json"

	"feedline/schemas"
)

// A reindex (feedline reindex) builds the next concrete index beside the
// live one and swaps the alias to it:
//
//	next, err := ix.NewVersion(ctx) // "products-v3", empty, from the template
//	… next.Apply(ctx, changes) while replaying the log …
//	err = ix.Promote(ctx, next)     // searches now read products-v3
//	err = ix.DropIndex(ctx, "products-v2")

// errNoAlias is returned by Current when the alias does not exist.
var errNoAlias = errors.New("alias does not exist")

// Alias is the name searches go through.
func (ix *Index) Alias() string { return ix.alias }

// Target is what ix reads and writes: the alias, or for an Index made by
// NewVersion, its concrete index.
func (ix *Index) Target() string { return ix.target }

// Current names the concrete index behind the alias.
func (ix *Index) Current(ctx context.Context) (string, error) {
	var aliases map[string]json.RawMessage
	err := ix.conn.call(ctx, esapi.IndicesGetAliasRequest{Name: []string{ix.alias}}, &aliases)
	if isStatus(err, http.StatusNotFound) {
		return "", fmt.Errorf("elasticsearch: alias %s: %w", ix.alias, errNoAlias)
	}
	if err != nil {
		return "", fmt.Errorf("elasticsearch: alias %s: %w", ix.alias, err)
	}
	var names []string
	for name := range aliases {
		names = append(names, name)
	}
	if len(names) != 1 {
		return "", fmt.Errorf("elasticsearch: alias %s points to %d indexes %v, want one", ix.alias, len(names), names)
	}
	return names[0], nil
}

// Versions lists the concrete indexes of the alias, oldest first.
func (ix *Index) Versions(ctx context.Context) ([]string, error) {
	var indexes map[string]json.RawMessage
	req := esapi.IndicesGetAliasRequest{Index: []string{IndexPattern(ix.alias)}}
	if err := ix.conn.call(ctx, req, &indexes); err != nil {
		return nil, fmt.Errorf("elasticsearch: list %s: %w", IndexPattern(ix.alias), err)
	}
	var names []string
	for name := range indexes {
		if _, ok := versionOf(ix.alias, name); ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		va, _ := versionOf(ix.alias, a)
		vb, _ := versionOf(ix.alias, b)
		return cmp.Compare(va, vb)
	})
	return names, nil
}

func versionName(alias string, n int) string { return alias + "-v" + strconv.Itoa(n) }

// versionOf parses the N of "<alias>-vN".
func versionOf(alias, name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, alias+"-v")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n > 0
}

// ensureAlias creates "<alias>-v1" with the alias on it unless the alias
// exists. The index and its alias are created in one request, so a worker
// that loses the race finds the alias in place.
func (ix *Index) ensureAlias(ctx context.Context) error {
	cur, err := ix.Current(ctx)
	if err == nil {
		ix.log.Info("elasticsearch alias ready", "alias", ix.alias, "index", cur)
		ix.checkMappingVersion(ctx, cur)
		return nil
	}
	if !errors.Is(err, errNoAlias) {
		return err
	}
	first := versionName(ix.alias, 1)
	body, err := json.Marshal(map[string]any{"aliases": map[string]any{ix.alias: map[string]any{}}})
	if err != nil {
		return fmt.Errorf("elasticsearch: create %s: %w", first, err)
	}
	err = ix.conn.call(ctx, esapi.IndicesCreateRequest{Index: first, Body: bytes.NewReader(body)}, nil)
	switch {
	case err == nil:
		ix.log.Info("elasticsearch index created", "alias", ix.alias, "index", first)
		return nil
	case isType(err, "resource_already_exists_exception"):
		if _, cerr := ix.Current(ctx); cerr != nil {
			return fmt.Errorf("elasticsearch: %s exists but alias %s is missing; add it or delete the index: %w", first, ix.alias, cerr)
		}
		return nil
	default:
		return fmt.Errorf("elasticsearch: create %s: %w", first, err)
	}
}

// NewVersion creates the next concrete index "<alias>-v(N+1)" from the
// template, without the alias, and returns an Index writing and reading it.
// It shares ix's connection; close it before or after ix, either way.
func (ix *Index) NewVersion(ctx context.Context) (*Index, error) {
	names, err := ix.Versions(ctx)
	if err != nil {
		return nil, err
	}
	last := 0
	if len(names) > 0 {
		last, _ = versionOf(ix.alias, names[len(names)-1])
	}
	name := versionName(ix.alias, last+1)
	if err := ix.conn.call(ctx, esapi.IndicesCreateRequest{Index: name}, nil); err != nil {
		return nil, fmt.Errorf("elasticsearch: create %s: %w", name, err)
	}
	next, err := newIndex(ix.conn, ix.cfg, name)
	if err != nil {
		return nil, err
	}
	ix.log.Info("elasticsearch index version created", "alias", ix.alias, "index", name)
	return next, nil
}

// Promote refreshes next and moves the alias to it in one atomic alias
// update, so searches switch from the old index to next at once. The old
// index stays; DropIndex deletes it.
func (ix *Index) Promote(ctx context.Context, next *Index) error {
	if next.alias != ix.alias || next.target == next.alias {
		return fmt.Errorf("elasticsearch: promote: %s is not a version of alias %s", next.target, ix.alias)
	}
	cur, err := ix.Current(ctx)
	if err != nil {
		return fmt.Errorf("elasticsearch: promote: %w", err)
	}
	if cur == next.target {
		return nil
	}
	if err := next.Flush(ctx); err != nil {
		return fmt.Errorf("elasticsearch: promote: %w", err)
	}
	body, err := json.Marshal(map[string]any{"actions": []any{
		map[string]any{"remove": map[string]any{"index": cur, "alias": ix.alias}},
		map[string]any{"add": map[string]any{"index": next.target, "alias": ix.alias}},
	}})
	if err != nil {
		return fmt.Errorf("elasticsearch: promote: %w", err)
	}
	if err := ix.conn.call(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(body)}, nil); err != nil {
		return fmt.Errorf("elasticsearch: promote %s over %s: %w", next.target, cur, err)
	}
	ix.log.Info("elasticsearch alias moved", "alias", ix.alias, "from", cur, "to", next.target)
	return nil
}

// DropIndex deletes a concrete index of the alias that the alias does not
// point to.
func (ix *Index) DropIndex(ctx context.Context, name string) error {
	if _, ok := versionOf(ix.alias, name); !ok {
		return fmt.Errorf("elasticsearch: drop %s: not an index of alias %s", name, ix.alias)
	}
	cur, err := ix.Current(ctx)
	if err != nil && !errors.Is(err, errNoAlias) {
		return fmt.Errorf("elasticsearch: drop %s: %w", name, err)
	}
	if cur == name {
		return fmt.Errorf("elasticsearch: drop %s: alias %s points to it", name, ix.alias)
	}
	err = ix.conn.call(ctx, esapi.IndicesDeleteRequest{Index: []string{name}}, nil)
	if isType(err, "index_not_found_exception") {
		return fmt.Errorf("elasticsearch: drop %s: %w", name, schemas.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("elasticsearch: drop %s: %w", name, err)
	}
	return nil
}

// checkMappingVersion warns when the index behind the alias was created
// with another layout than schemas describes: the template only shapes new
// indexes, so such an index keeps its layout until a reindex replaces it.
func (ix *Index) checkMappingVersion(ctx context.Context, index string) {
	var mappings map[string]struct {
		Mappings struct {
			Meta map[string]any `json:"_meta"`
		} `json:"mappings"`
	}
	if err := ix.conn.call(ctx, esapi.IndicesGetMappingRequest{Index: []string{index}}, &mappings); err != nil {
		ix.log.Warn("elasticsearch mapping not readable", "index", index, "err", err)
		return
	}
	v := mappings[index].Mappings.Meta[MetaMappingVersion]
	if n, ok := v.(float64); !ok || int(n) != MappingVersion {
		ix.log.Warn("elasticsearch index has another mapping version; run feedline reindex",
			"index", index, "has", v, "want", MappingVersion)
	}
}
