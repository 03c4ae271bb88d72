package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// dataDiskCollector reports the filesystem holding the data directory (the
// embedded JetStream, the index, the analytics files), read at each scrape,
// so an alert sees it filling before a write fails.
type dataDiskCollector struct {
	dir         string
	avail, size *prometheus.Desc
}

func newDataDiskCollector(dir string) prometheus.Collector {
	return dataDiskCollector{
		dir:   dir,
		avail: prometheus.NewDesc("feedline_data_filesystem_avail_bytes", "Bytes available to feedline on the filesystem of its data directory.", nil, nil),
		size:  prometheus.NewDesc("feedline_data_filesystem_size_bytes", "Size of the filesystem of the data directory.", nil, nil),
	}
}

func (c dataDiskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.avail; ch <- c.size }

func (c dataDiskCollector) Collect(ch chan<- prometheus.Metric) {
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir, &st); err != nil {
		return // a data directory that cannot be read shows as absent series
	}
	bsize := float64(st.Bsize)
	ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, float64(st.Bavail)*bsize)
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(st.Blocks)*bsize)
}
