package registration

import (
	"fmt"
	gosync "sync"

	"github.com/prometheus/client_golang/prometheus"
)

// State is where registration with kubelet stands.
type State int

const (
	// Pending: the socket is served and kubelet has not reported on it yet.
	Pending State = iota
	// Registered: kubelet reported the driver registered.
	Registered
	// Failed: kubelet reported an error; the socket will be re-created after a back-off.
	Failed
)

func (s State) String() string {
	switch s {
	case Registered:
		return "registered"
	case Failed:
		return "failed"
	default:
		return "pending"
	}
}

// Status is the last outcome kubelet reported for the current socket.
type Status struct {
	State State
	// Error is kubelet's message when State is Failed. It names the plugin, its
	// endpoint and versions; it carries no secret.
	Error string
}

// status holds the Status and mirrors it into the metrics.
type status struct {
	mu      gosync.Mutex
	cur     Status
	metrics *metrics
}

func (s *status) get() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *status) set(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = st
	s.metrics.set(st.State)
}

// ready is nil once kubelet has reported the driver registered.
func (s Status) ready(driverName string) error {
	switch s.State {
	case Registered:
		return nil
	case Failed:
		return fmt.Errorf("kubelet refused to register CSI driver %s: %s", driverName, s.Error)
	default:
		return fmt.Errorf("kubelet has not registered CSI driver %s yet", driverName)
	}
}

// metrics: the gauge a readiness alert watches, and how often kubelet reported what.
// The driver name is a constant label: one process serves one driver.
type metrics struct {
	registered prometheus.Gauge
	reports    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, driverName string) (*metrics, error) {
	labels := prometheus.Labels{"driver": driverName}
	m := &metrics{
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "secretmount", Name: "kubelet_registered", ConstLabels: labels,
			Help: "1 while kubelet reports the CSI driver registered through the built-in registration socket, else 0.",
		}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "secretmount", Name: "kubelet_registration_reports_total", ConstLabels: labels,
			Help: "Registration outcomes kubelet reported, by result (registered, failed).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.registered, m.reports} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register kubelet registration metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) set(st State) {
	if st == Registered {
		m.registered.Set(1)
	} else {
		m.registered.Set(0)
	}
}

func (m *metrics) report(st State) { m.reports.WithLabelValues(st.String()).Inc() }
