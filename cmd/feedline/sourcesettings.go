package main

import (
	"fmt"
	"strconv"
	"time"
)

// parseSourceSettings reads the settings of the upload lifecycle and of
// scheduled fetches; Validate judges their values.
func parseSourceSettings(cfg *serveConfig, get func(string) string) error {
	n, err := strconv.Atoi(get("FEEDLINE_MAX_UPLOADS_IN_FLIGHT"))
	if err != nil {
		return fmt.Errorf("FEEDLINE_MAX_UPLOADS_IN_FLIGHT %q: want a whole number, 0 for no limit", get("FEEDLINE_MAX_UPLOADS_IN_FLIGHT"))
	}
	cfg.MaxInFlight = n
	if cfg.Fetch.AllowPrivate, err = strconv.ParseBool(get("FEEDLINE_FETCH_ALLOW_PRIVATE")); err != nil {
		return fmt.Errorf("FEEDLINE_FETCH_ALLOW_PRIVATE %q: want true or false", get("FEEDLINE_FETCH_ALLOW_PRIVATE"))
	}
	if cfg.Fetch.Timeout, err = time.ParseDuration(get("FEEDLINE_FETCH_TIMEOUT")); err != nil {
		return fmt.Errorf("FEEDLINE_FETCH_TIMEOUT %q: want a duration of at least 1s, such as 10m", get("FEEDLINE_FETCH_TIMEOUT"))
	}
	if cfg.Fetch.Concurrency, err = strconv.Atoi(get("FEEDLINE_FETCH_CONCURRENCY")); err != nil {
		return fmt.Errorf("FEEDLINE_FETCH_CONCURRENCY %q: want a whole number above 0", get("FEEDLINE_FETCH_CONCURRENCY"))
	}
	return nil
}
