package driver

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics count publishes and refreshes by outcome. Labels are gRPC codes and fixed
// words, never names of secrets or anything taken from their content.
type metrics struct {
	publishes       *prometheus.CounterVec
	publishDuration prometheus.Histogram
	refreshes       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Subsystem: "driver", Name: "node_publish_total",
			Help: "NodePublishVolume calls by gRPC code.",
		}, []string{"code"}),
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "secretmount", Subsystem: "driver", Name: "node_publish_duration_seconds",
			Help:    "Duration of NodePublishVolume calls.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Subsystem: "driver", Name: "rotation_refresh_total",
			Help: "Rotation refreshes of published volumes by result (changed, unchanged, skipped, or a gRPC code of the failure).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.publishes, m.publishDuration, m.refreshes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register driver metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observePublish(code codes.Code, d time.Duration) {
	m.publishes.WithLabelValues(code.String()).Inc()
	m.publishDuration.Observe(d.Seconds())
}

func (m *metrics) observeRefresh(result string) {
	m.refreshes.WithLabelValues(result).Inc()
}
