package sync

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sync's Prometheus metrics. Labels are only fixed vocabularies (source,
// result, reason, provider): never a name or value taken from a Secret.
type Metrics struct {
	syncs    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	fetches  *prometheus.CounterVec
}

// Sources of a sync, the "source" label.
const (
	sourceSecretSync = "secretsync"
	sourceMount      = "mount"
)

// NewMetrics registers the sync metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Subsystem: "sync", Name: "total",
			Help: "Secret synchronisations by source (secretsync, mount) and result (created, updated, unchanged, error).",
		}, []string{"source", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Subsystem: "sync", Name: "errors_total",
			Help: "Failed Secret synchronisations by source and reason.",
		}, []string{"source", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "secretmount", Subsystem: "sync", Name: "duration_seconds",
			Help:    "Duration of one Secret synchronisation, fetch included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"source"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Subsystem: "sync", Name: "backend_fetches_total",
			Help: "Backend fetches made by the SecretSync controller, after sharing within a rotation tick.",
		}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.syncs, m.errors, m.duration, m.fetches} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(source string, result writeResult, reason string, seconds float64) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(source).Observe(seconds)
	if reason != "" {
		m.syncs.WithLabelValues(source, "error").Inc()
		m.errors.WithLabelValues(source, reason).Inc()
		return
	}
	m.syncs.WithLabelValues(source, string(result)).Inc()
}

func (m *Metrics) fetched(provider string) {
	if m != nil {
		m.fetches.WithLabelValues(provider).Inc()
	}
}
