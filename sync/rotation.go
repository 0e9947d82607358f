package sync

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

// rotation queues every SecretSync once per poll interval, after starting a new fetch
// tick, so that all SecretSyncs of one identity and class share one backend call.
type rotation struct {
	reader    client.Reader
	fetcher   *tickFetcher
	interval  time.Duration
	namespace string // "" for all
	out       chan<- event.GenericEvent
}

// Start runs until ctx ends; it is a controller-runtime Runnable.
func (r *rotation) Start(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.tick(ctx)
		}
	}
}

func (r *rotation) tick(ctx context.Context) {
	r.fetcher.tick()
	var list v1alpha1.SecretSyncList
	var opts []client.ListOption
	if r.namespace != "" {
		opts = append(opts, client.InNamespace(r.namespace))
	}
	if err := r.reader.List(ctx, &list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "rotation: failed to list SecretSyncs; trying again next tick")
		return
	}
	for i := range list.Items {
		select {
		case r.out <- event.GenericEvent{Object: &list.Items[i]}:
		case <-ctx.Done():
			return
		}
	}
}

// NeedLeaderElection: only the leader rotates.
func (r *rotation) NeedLeaderElection() bool { return true }
