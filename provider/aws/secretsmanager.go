package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/errgroup"

	"github.com/secretmount/secretmount/provider"
)

const (
	// currentStage is the version stage GetSecretValue reads when none is asked for.
	currentStage = "AWSCURRENT"
	// batchLimit is the most secrets one BatchGetSecretValue takes.
	batchLimit = 20
	// maxBatchPages bounds the NextToken loop of one BatchGetSecretValue.
	maxBatchPages = 10
)

type secretValue struct {
	version string
	value   []byte
}

// fetchSecrets fills the results of the Secrets Manager objects idx: content whose
// version is unchanged is reused, current versions are read in one batch when there
// are several, the rest one by one (with failover).
//
// The batch always asks for every current-version object of the plan, even when some
// are answered from memory: one call either way, and concurrent fetches of one plan
// then share the call whatever each found in memory.
func (b *Backend) fetchSecrets(ctx context.Context, f *fetch, idx []int) error {
	var batchable []int
	for _, i := range idx {
		if t := f.target(i, 0); t.version == "" && (t.label == "" || t.label == currentStage) {
			batchable = append(batchable, i)
		}
	}
	pending := b.reuseUnchanged(ctx, f, idx)
	if len(pending) == 0 {
		return nil
	}
	if len(batchable) >= 2 && !b.opts.DisableBatchGet && !b.denied.denied(f.keyOf("batch-denied", f.regions[0])) {
		answered := b.batchSecrets(ctx, f, batchable)
		pending = slices.DeleteFunc(pending, func(i int) bool { return answered[i] })
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for _, i := range pending {
		g.Go(func() error { return b.fetchSecret(gctx, f, i) })
	}
	return g.Wait()
}

func (f *fetch) memoryKey(t target) string {
	return f.keyOf("secret", t.region, t.name, t.version, t.label)
}

// reuseUnchanged answers objects from memory when their version is still the one asked
// for: a pinned version always is; otherwise DescribeSecret tells whether the
// remembered version still carries the stage. It returns the objects left to fetch.
// A failed DescribeSecret only means the object is fetched (a role may lack the
// permission; the fetch then gives the real answer).
func (b *Backend) reuseUnchanged(ctx context.Context, f *fetch, idx []int) []int {
	reused := make([]bool, len(f.plan.Objects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for _, i := range idx {
		t := f.target(i, 0)
		r, ok := b.content.get(f.memoryKey(t))
		switch {
		case !ok:
			continue
		case t.version != "" && r.version == t.version, b.opts.Now().Sub(r.verified) < b.opts.CoalesceWindow:
			f.set(i, r.version, r.value)
			reused[i] = true
			continue
		}
		g.Go(func() error {
			stages, err := b.describeSecret(gctx, f, t)
			if err != nil {
				b.log.V(1).Info("describe failed; fetching the value", "class", f.plan.Class, "object", t.name, "region", t.region, "error", classify(t.name, err).Error())
				return nil
			}
			label := t.label
			if label == "" {
				label = currentStage
			}
			if slices.Contains(stages[r.version], label) {
				b.content.touch(f.memoryKey(t))
				f.set(i, r.version, r.value)
				reused[i] = true
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines never fail
	var pending []int
	for _, i := range idx {
		if !reused[i] {
			pending = append(pending, i)
		}
	}
	return pending
}

func (b *Backend) describeSecret(ctx context.Context, f *fetch, t target) (map[string][]string, error) {
	v, err := b.calls.Do(ctx, f.keyOf("describe", t.region, t.name), func(ctx context.Context) (any, error) {
		out, err := b.secretsManager(t.region, f.sess).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: sdkaws.String(t.name)})
		if err != nil {
			return nil, err
		}
		return out.VersionIdsToStages, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string][]string), nil
}

// fetchSecret reads object i with GetSecretValue in the primary region, and in the
// failover region when the primary one is unavailable.
func (b *Backend) fetchSecret(ctx context.Context, f *fetch, i int) error {
	var lastErr error
	for r := range f.regions {
		t := f.target(i, r)
		v, err := b.getSecretValue(ctx, f, t)
		if err == nil {
			f.set(i, v.version, v.value)
			b.content.put(f.memoryKey(t), v.version, v.value)
			f.served(b, i, r)
			return nil
		}
		lastErr = b.failed(f, fmt.Sprintf("%s: %s in %s", f.class(), f.objectName(i), t.region), err)
		if !retryable(lastErr) || ctx.Err() != nil {
			break
		}
		if r+1 < len(f.regions) {
			b.log.Info("region unavailable; trying the failover region", "class", f.plan.Class, "object", f.plan.Objects[i].Name,
				"region", t.region, "failoverRegion", f.regions[r+1], "error", lastErr.Error())
		}
	}
	return lastErr
}

func (b *Backend) getSecretValue(ctx context.Context, f *fetch, t target) (secretValue, error) {
	v, err := b.calls.Do(ctx, f.keyOf("get", t.region, t.name, t.version, t.label), func(ctx context.Context) (any, error) {
		in := &secretsmanager.GetSecretValueInput{SecretId: sdkaws.String(t.name)}
		if t.version != "" {
			in.VersionId = sdkaws.String(t.version)
		}
		if t.label != "" {
			in.VersionStage = sdkaws.String(t.label)
		}
		out, err := b.secretsManager(t.region, f.sess).GetSecretValue(ctx, in)
		if err != nil {
			return nil, err
		}
		if out.SecretString == nil && out.SecretBinary == nil {
			return nil, errNoSecretValue
		}
		return secretValue{version: sdkaws.ToString(out.VersionId), value: secretBytes(out.SecretString, out.SecretBinary)}, nil
	})
	if err != nil {
		return secretValue{}, err
	}
	return v.(secretValue), nil
}

// errNoSecretValue: a successful answer carries neither SecretString nor SecretBinary.
// An empty body (a 204, or one a proxy cut to nothing) decodes without error into such
// an answer; writing it would replace good content with an empty file, so it is an
// outage (retried, tried in the failover region), never a value.
var errNoSecretValue = errors.New("the answer carries neither SecretString nor SecretBinary")

// secretBytes is SecretString as is, or else SecretBinary raw.
func secretBytes(s *string, bin []byte) []byte {
	if s != nil {
		return []byte(*s)
	}
	return bin
}

// batchResult is one BatchGetSecretValue answer, by the name and by the ARN of each
// secret it returned.
type batchResult struct {
	values map[string]secretValue
}

// batchSecrets reads the current versions of idx with BatchGetSecretValue, 20 at a
// time, and reports which objects it answered. The others (denied batch, per-secret
// errors, partial ARNs it cannot match) are then fetched one by one, which also gives
// each its own error.
func (b *Backend) batchSecrets(ctx context.Context, f *fetch, idx []int) map[int]bool {
	answered := map[int]bool{}
	region := f.regions[0]
	for chunk := range slices.Chunk(idx, batchLimit) {
		names := make([]string, len(chunk))
		for n, i := range chunk {
			names[n] = f.target(i, 0).name
		}
		res, err := b.batchGet(ctx, f, region, names)
		if err != nil {
			err = classify(fmt.Sprintf("%s: batch of %d secretsmanager objects in %s", f.class(), len(names), region), err)
			if errors.Is(err, provider.ErrPermissionDenied) {
				b.denied.deny(f.keyOf("batch-denied", region))
			}
			b.log.V(1).Info("batch read failed; reading one by one", "class", f.plan.Class, "region", region, "error", err.Error())
			continue
		}
		for _, i := range chunk {
			t := f.target(i, 0)
			v, ok := res.values[t.name]
			if !ok {
				continue
			}
			f.set(i, v.version, v.value)
			b.content.put(f.memoryKey(t), v.version, v.value)
			f.served(b, i, 0)
			answered[i] = true
		}
	}
	return answered
}

func (b *Backend) batchGet(ctx context.Context, f *fetch, region string, names []string) (batchResult, error) {
	key := f.keyOf(append([]string{"batch", region}, names...)...)
	v, err := b.calls.Do(ctx, key, func(ctx context.Context) (any, error) {
		client := b.secretsManager(region, f.sess)
		res := batchResult{values: map[string]secretValue{}}
		in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: names}
		for range maxBatchPages {
			out, err := client.BatchGetSecretValue(ctx, in)
			if err != nil {
				return nil, err
			}
			for _, e := range out.SecretValues {
				if e.SecretString == nil && e.SecretBinary == nil {
					continue // not answered: read on its own, where it fails with errNoSecretValue
				}
				v := secretValue{version: sdkaws.ToString(e.VersionId), value: secretBytes(e.SecretString, e.SecretBinary)}
				if e.Name != nil {
					res.values[*e.Name] = v
				}
				if e.ARN != nil {
					res.values[*e.ARN] = v
				}
			}
			if out.NextToken == nil || *out.NextToken == "" {
				break
			}
			in.NextToken = out.NextToken
		}
		return res, nil
	})
	if err != nil {
		return batchResult{}, err
	}
	return v.(batchResult), nil
}

// served logs which region served object i (never its value).
func (f *fetch) served(b *Backend, i, region int) {
	o := f.plan.Objects[i]
	if region > 0 {
		b.log.Info("object served from the failover region", "class", f.plan.Class, "object", o.Name, "field", o.Field, "region", f.regions[region])
		return
	}
	b.log.V(1).Info("object fetched", "class", f.plan.Class, "object", o.Name, "field", o.Field, "region", f.regions[region])
}
