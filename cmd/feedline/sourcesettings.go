package main

import (
	"fmt"
	"strconv"
)

// parseSourceSettings reads the settings of the upload lifecycle and of
// scheduled fetches.
func parseSourceSettings(cfg *serveConfig, get func(string) string) error {
	n, err := strconv.Atoi(get("FEEDLINE_MAX_UPLOADS_IN_FLIGHT"))
	if err != nil || n < 0 {
		return fmt.Errorf("FEEDLINE_MAX_UPLOADS_IN_FLIGHT %q: want a whole number, 0 for no limit", get("FEEDLINE_MAX_UPLOADS_IN_FLIGHT"))
	}
	cfg.MaxInFlight = n
	return nil
}
