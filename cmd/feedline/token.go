package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"feedline/api"
)

// tokenCmd prints a shopper token for development, alone on standard
// output so scripts can capture it.
func tokenCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id the token is for")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("--user is required")
	}
	key := os.Getenv("FEEDLINE_TOKEN_KEY")
	if key == "" {
		return errors.New("FEEDLINE_TOKEN_KEY is not set; it must be the key the server verifies tokens with")
	}
	// The server refuses a token valid for longer than its maximum.
	maxLifetime := api.DefaultTokenMaxLifetime
	if v := os.Getenv("FEEDLINE_TOKEN_MAX_LIFETIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("FEEDLINE_TOKEN_MAX_LIFETIME %q: want a duration such as 720h", v)
		}
		maxLifetime = d
	}
	if *ttl > maxLifetime {
		return fmt.Errorf("--ttl %s is longer than %s, the longest a server takes (FEEDLINE_TOKEN_MAX_LIFETIME)", *ttl, maxLifetime)
	}
	tok, err := api.SignToken([]byte(key), *user, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
