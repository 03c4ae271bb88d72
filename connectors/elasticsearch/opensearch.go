package elasticsearch

import "net/http"

// OpenSearchTransport adds the X-Elastic-Product header to every answer
// without it: go-elasticsearch refuses a server that does not send it, and
// OpenSearch does not. The bench and the tests reach OpenSearch nodes
// through it; an Elasticsearch node sends the header itself.
type OpenSearchTransport struct{ Base http.RoundTripper }

// RoundTrip sends req through Base and marks the answer as Elasticsearch's.
func (t OpenSearchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.Base.RoundTrip(req)
	if err == nil && res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, err
}
