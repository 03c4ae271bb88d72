package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"feedline/bench"
	"feedline/pipeline"
	"feedline/schemas"
	"feedline/topology"
)

// topCmd shows each stage's rate, lag, pause and dead letters from the
// running processes' /metrics, refreshed every interval; --once prints one
// frame and exits.
func topCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("url", "http://"+env("FEEDLINE_HTTP", "127.0.0.1:8080"), "base URLs of the feedline processes to read /metrics from, comma-separated (their series are summed)")
	every := fs.Duration("every", time.Second, "refresh interval, and the window rates are measured over")
	once := fs.Bool("once", false, "print one frame and exit (for scripts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *every < 10*time.Millisecond {
		return fmt.Errorf("--every %s: want at least 10ms", *every)
	}
	var bases []string
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			bases = append(bases, u)
		}
	}
	prev, err := scrapeStages(ctx, bases)
	if err != nil {
		return err
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := scrapeStages(ctx, bases)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !*once {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home and clear: a live screen
		}
		printTop(stdout, prev, cur)
		if *once {
			return nil
		}
		prev = cur
	}
}

// stageSample is one stage's series at one moment, summed over processes.
type stageSample struct {
	processed, in, deadLetters, retries float64
	pending, paused                     float64
}

type stagesAt struct {
	at     time.Time
	stages map[string]*stageSample
}

func scrapeStages(ctx context.Context, bases []string) (stagesAt, error) {
	out := stagesAt{at: time.Now(), stages: map[string]*stageSample{}}
	for _, base := range bases {
		fams, err := bench.ScrapeMetrics(ctx, base)
		if err != nil {
			return out, fmt.Errorf("is feedline serve running? %w", err)
		}
		each := func(name string, fn func(s *stageSample, m *dto.Metric)) {
			for _, m := range fams[name].GetMetric() {
				stage := labelOf(m, "stage")
				if stage == "" {
					continue
				}
				s := out.stages[stage]
				if s == nil {
					s = &stageSample{}
					out.stages[stage] = s
				}
				fn(s, m)
			}
		}
		each("feedline_stage_messages_processed_total", func(s *stageSample, m *dto.Metric) { s.processed += m.GetCounter().GetValue() })
		each("feedline_stage_messages_in_total", func(s *stageSample, m *dto.Metric) { s.in += m.GetCounter().GetValue() })
		each("feedline_stage_messages_failed_total", func(s *stageSample, m *dto.Metric) {
			switch labelOf(m, "outcome") {
			case "dead_letter":
				s.deadLetters += m.GetCounter().GetValue()
			case "retry":
				s.retries += m.GetCounter().GetValue()
			}
		})
		each("feedline_stage_consumer_pending", func(s *stageSample, m *dto.Metric) { s.pending += m.GetGauge().GetValue() })
		each("feedline_stage_paused", func(s *stageSample, m *dto.Metric) { s.paused = max(s.paused, m.GetGauge().GetValue()) })
	}
	return out, nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func printTop(w io.Writer, prev, cur stagesAt) {
	secs := cur.at.Sub(prev.at).Seconds()
	names := make([]string, 0, len(cur.stages))
	for n := range cur.stages {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "feedline top  %s  (rates over %.1fs)\n", cur.at.Format(time.TimeOnly), secs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STAGE\tMSGS/S\tPROCESSED\tLAG\tPAUSED\tRETRIES\tDEAD LETTERS\t")
	for _, n := range names {
		c := cur.stages[n]
		rate := 0.0
		if p := prev.stages[n]; p != nil && secs > 0 {
			rate = max(c.processed-p.processed, 0) / secs
		}
		paused := "no"
		if c.paused > 0 {
			paused = "PAUSED"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t\n", n, rate, c.processed, c.pending, paused, c.retries, c.deadLetters)
	}
	_ = tw.Flush()
}

// tapCmd follows the messages on a subject as they pass, through an
// ordered ephemeral consumer: nothing is acknowledged or taken from a stage.
func tapCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	limit := fs.Int("limit", 0, "stop after this many messages (0: follow until interrupted)")
	fromStart := fs.Bool("all", false, "start with every message the stream still holds, not only new ones")
	show := fs.Int("payload", 160, "bytes of each payload to print (0: none)")
	var subject string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subject, args = args[0], args[1:]
	}
	cfg, err := parseSettings(fs, args, stderr)
	if err != nil {
		return err
	}
	if subject == "" && fs.NArg() > 0 {
		subject = fs.Arg(0)
	}
	if subject == "" {
		return errors.New("name the subject to follow, such as catalog.product.> or social.post.> (the README lists the streams' subjects)")
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	js := bus.JetStream()
	stream, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return fmt.Errorf("no stream holds %s: %w", subject, err)
	}
	policy := jetstream.DeliverNewPolicy
	if *fromStart {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: policy})
	if err != nil {
		return fmt.Errorf("follow %s on %s: %w", subject, stream, err)
	}
	fmt.Fprintf(stderr, "following %s on stream %s\n", subject, stream)
	for n := 0; *limit == 0 || n < *limit; {
		batch, err := cons.Fetch(min(max(*limit-n, 1), 256), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s: %w", subject, err)
		}
		for m := range batch.Messages() {
			printTapped(stdout, m, *show)
			n++
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			return fmt.Errorf("follow %s: %w", subject, err)
		}
	}
	return nil
}

// printTapped writes one line per message: when, subject, sequence, what
// its metadata says of its origin, and the start of its payload.
func printTapped(w io.Writer, m jetstream.Msg, show int) {
	var seq uint64
	at := time.Now()
	if md, err := m.Metadata(); err == nil {
		seq, at = md.Sequence.Stream, md.Timestamp
	}
	h := m.Headers()
	var parts []string
	for _, k := range []string{schemas.HeaderPartner, schemas.HeaderUpload, schemas.HeaderBatch, pipeline.HeaderReplayFor} {
		if v := h.Get(k); v != "" {
			parts = append(parts, strings.ToLower(strings.TrimPrefix(k, "Feedline-"))+"="+v)
		}
	}
	if tp := h.Get(pipeline.HeaderTraceparent); len(tp) >= 35 {
		parts = append(parts, "trace="+tp[3:35])
	}
	if acc := h.Get(pipeline.HeaderAccepted); acc != "" {
		if t, err := time.Parse(time.RFC3339Nano, acc); err == nil {
			parts = append(parts, "age="+at.Sub(t).Round(time.Millisecond).String())
		}
	}
	data := m.Data()
	line := fmt.Sprintf("%s %s #%d %dB %s", at.UTC().Format("15:04:05.000"), m.Subject(), seq, len(data), strings.Join(parts, " "))
	if show > 0 && len(data) > 0 {
		p := data[:min(show, len(data))]
		line += " " + strings.ToValidUTF8(strings.ReplaceAll(string(p), "\n", " "), "?")
	}
	fmt.Fprintln(w, line)
}

// dlqReplayCmd sends a stage's dead letters back to its input after a fix.
func dlqReplayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	stage := fs.String("stage", "", "the stage whose dead letters go back to it (feedline dlq lists them by stage)")
	cfg, err := parseSettings(fs, args, stderr)
	if err != nil {
		return err
	}
	if *stage == "" {
		return errors.New("--stage is required: the stage that gave up on the messages, as feedline dlq lists it")
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bus, err := connectTool(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	res, err := bus.ReplayDeadLetters(ctx, topology.StreamDLQ, *stage)
	fmt.Fprintf(stdout, "replayed %d dead letters of %s to its input\n", res.Replayed, *stage)
	if res.Kept > 0 {
		fmt.Fprintf(stdout, "kept %d entries of single items a backend refused within a handled batch: fix them at the source and upload again\n", res.Kept)
	}
	return err
}
