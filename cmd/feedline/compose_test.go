package main

// The deployment's checks live beside what they check, in deploy/deploytest.
// They run from here because they read each feedline container's
// configuration through parseServeConfig, which only this package can call.

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"feedline/deploy/deploytest"
)

func TestComposeDeployment(t *testing.T) { deploytest.CheckDeployment(t, feedlineBinary()) }

func TestComposeChecksCatchMistakes(t *testing.T) {
	deploytest.CheckCatchesMistakes(t, feedlineBinary())
}

// feedlineBinary is this binary as the deployment checks see it.
func feedlineBinary() deploytest.Binary {
	envs := make([]string, len(settings))
	for i, st := range settings {
		envs[i] = st.Env
	}
	return deploytest.Binary{
		Settings: envs,
		Stages:   allStages,
		Configure: func(t *testing.T, env map[string]string, args []string) (deploytest.Config, error) {
			cfg, err := configFor(t, env, args)
			return deploytest.Config{
				Stages: cfg.Stages, HTTP: cfg.HTTP,
				NATS: cfg.NATS, NATSReplicas: cfg.NATSReplicas, NATSUser: cfg.NATSAuth.User, NATSPassword: cfg.NATSAuth.Password,
				NATSInbox: cfg.NATSInbox, NATSNoDeclare: cfg.NATSNoDeclare,
				ESURLs: cfg.ESURLs, ESUsername: cfg.ESUsername, ESPassword: cfg.ESPassword, ClickHouseURL: cfg.ClickHouseURL,
			}, err
		},
		Metrics: func() *prometheus.Registry {
			m, _ := processMetrics(os.TempDir())
			return m.Registry
		},
	}
}

// loadDeployment is compose.yaml as this binary configures its services.
func loadDeployment(t *testing.T) *deploytest.Deployment {
	t.Helper()
	return deploytest.Load(t, feedlineBinary(), nil)
}

// configFor is the configuration a feedline container would run with.
func configFor(t *testing.T, env map[string]string, args []string) (serveConfig, error) {
	for _, st := range settings {
		t.Setenv(st.Env, env[st.Env])
	}
	if len(args) >= 2 && args[0] == "nats" && args[1] == "declare" {
		return parseServeConfig(args[2:], io.Discard)
	}
	if len(args) == 0 || (args[0] != "serve" && args[0] != "worker") {
		return serveConfig{}, fmt.Errorf("command %q: want serve, worker or nats declare", args)
	}
	return parseServeConfig(args[1:], io.Discard)
}
