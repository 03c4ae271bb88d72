package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"feedline/connectors/elasticsearch"
)

// searchNode is the Elasticsearch-API node the catalog bench (--es-url)
// measures the index stage against, under an alias of its own.
type searchNode struct {
	urls      []string
	name      string   // "Elasticsearch 8.19.7", "OpenSearch 2.19.6"
	alias     string   // prefix of the aliases of the runs
	used      []string // one alias per run, so no run finds another's products
	transport http.RoundTripper
}

// probeSearchNode asks the node what it runs; an OpenSearch node gets the
// product header added.
func probeSearchNode(ctx context.Context, list string) (*searchNode, error) {
	n := &searchNode{alias: fmt.Sprintf("feedline-bench-%08x", rand.Uint32())}
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			n.urls = append(n.urls, strings.TrimRight(u, "/"))
		}
	}
	if len(n.urls) == 0 {
		return nil, fmt.Errorf("--es-url %q names no node", list)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	n.transport = base
	var info struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if _, err := n.call(ctx, "GET", "/", &info); err != nil {
		return nil, fmt.Errorf("search node %s: %w", n.urls[0], err)
	}
	n.name = "Elasticsearch " + info.Version.Number
	if info.Version.Distribution == "opensearch" {
		n.name = "OpenSearch " + info.Version.Number
		n.transport = elasticsearch.OpenSearchTransport{Base: base}
	}
	return n, nil
}

func (n *searchNode) call(ctx context.Context, method, path string, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.urls[0]+path, nil)
	if err != nil {
		return 0, err
	}
	res, err := (&http.Client{Transport: n.transport}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return res.StatusCode, fmt.Errorf("%s %s: status %d", method, path, res.StatusCode)
	}
	if out != nil {
		return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode, nil
}

// use points a run at the node under an alias of its own.
func (n *searchNode) use(c *Run) {
	alias := fmt.Sprintf("%s-%d", n.alias, len(n.used)+1)
	n.used = append(n.used, alias)
	c.ESURLs, c.ESAlias, c.ESTransport = n.urls, alias, n.transport
}

// drop deletes the indexes and the templates the runs made.
func (n *searchNode) drop(ctx context.Context) error {
	for _, alias := range n.used {
		var indexes map[string]json.RawMessage
		if _, err := n.call(ctx, "GET", "/"+alias+"-v*", &indexes); err != nil {
			return err
		}
		for name := range indexes {
			if _, err := n.call(ctx, "DELETE", "/"+name, nil); err != nil {
				return err
			}
		}
		if _, err := n.call(ctx, "DELETE", "/_index_template/feedline-"+alias, nil); err != nil {
			return err
		}
	}
	return nil
}
