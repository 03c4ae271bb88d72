package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"
)

// Disk is how a data directory's bytes divide between its parts.
type Disk struct {
	Total   int64 // every file under the data directory
	Streams []StreamDisk
	// Search is the embedded index's directory, Checkpoints the
	// checkpoints'; the rest of Total beyond them and the streams' is
	// Other.
	Search, Checkpoints int64
}

// StreamDisk is one JetStream stream: the bytes its messages take as
// stream info counts them (uncompressed), and its files on disk.
type StreamDisk struct {
	Name  string
	Bytes uint64
	Files int64
}

// Other is what no named part holds: analytics files, temporary files,
// the NATS server's own.
func (d Disk) Other() int64 {
	rest := d.Total - d.Search - d.Checkpoints
	for _, s := range d.Streams {
		rest -= s.Files
	}
	return rest
}

// DirSize adds up the sizes of the files under dir; a missing dir is 0.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if e == nil {
				return nil // dir itself is missing
			}
			return err
		}
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				return nil // removed while walking
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// diskPoint is the data directory at one moment of the catalog bench.
type diskPoint struct {
	moment string
	disk   Disk
}

// measureDisk reads sys's data directory once what the upload wrote has
// settled: a moment for the stream blocks just filled to be compressed.
func measureDisk(ctx context.Context, sys System, moment string) (diskPoint, error) {
	select {
	case <-ctx.Done():
		return diskPoint{}, ctx.Err()
	case <-time.After(5 * time.Second):
	}
	d, err := sys.Disk(ctx)
	if err != nil {
		return diskPoint{}, fmt.Errorf("data directory %s: %w", moment, err)
	}
	return diskPoint{moment, d}, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// printDisk writes the data directory at each moment, by part, in MiB:
// files on disk, and for a stream the bytes its messages count in
// parentheses where they differ (compressed, or space not yet reclaimed).
func printDisk(w io.Writer, input int64, points []diskPoint) {
	if len(points) == 0 {
		return
	}
	fmt.Fprintf(w, "\ndata directory of the full pipeline, MiB on disk (stream info bytes in parentheses), input file %s MiB:\n\n", mib(input))
	fmt.Fprint(w, "| part |")
	for _, p := range points {
		fmt.Fprintf(w, " %s |", p.moment)
	}
	fmt.Fprint(w, "\n|---|")
	for range points {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for i, s := range points[0].disk.Streams {
		fmt.Fprintf(w, "| stream %s |", s.Name)
		for _, p := range points {
			st := p.disk.Streams[i]
			if mib(int64(st.Bytes)) != mib(st.Files) {
				fmt.Fprintf(w, " %s (%s) |", mib(st.Files), mib(int64(st.Bytes)))
			} else {
				fmt.Fprintf(w, " %s |", mib(st.Files))
			}
		}
		fmt.Fprintln(w)
	}
	row := func(name string, v func(Disk) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, p := range points {
			fmt.Fprintf(w, " %s |", v(p.disk))
		}
		fmt.Fprintln(w)
	}
	row("search index", func(d Disk) string { return mib(d.Search) })
	row("checkpoints", func(d Disk) string { return mib(d.Checkpoints) })
	row("other", func(d Disk) string { return mib(d.Other()) })
	row("**total**", func(d Disk) string { return "**" + mib(d.Total) + "**" })
	row("total ÷ input file", func(d Disk) string { return fmt.Sprintf("%.2f", float64(d.Total)/float64(input)) })
	first := float64(points[0].disk.Total)
	fmt.Fprint(w, "| total change from the column before ÷ first upload's total | |")
	for i := 1; i < len(points); i++ {
		fmt.Fprintf(w, " %+.1f%% |", float64(points[i].disk.Total-points[i-1].disk.Total)*100/first)
	}
	fmt.Fprintln(w)
}
