package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/errgroup"

	"github.com/secretmount/secretmount/provider"
)

// parameterBatch is the most names one GetParameters takes.
const parameterBatch = 10

// fetchParameters fills the results of the SSM objects idx, ten per GetParameters.
// Every batch runs to its end, so the error names every object that failed.
func (b *Backend) fetchParameters(ctx context.Context, f *fetch, idx []int) error {
	batches := f.parameterBatches(idx)
	errs := make([]error, len(batches))
	var g errgroup.Group
	g.SetLimit(b.opts.Concurrency)
	for n, batch := range batches {
		g.Go(func() error {
			errs[n] = b.fetchParameterBatch(ctx, f, batch)
			return nil
		})
	}
	_ = g.Wait() // errors are in errs
	return errors.Join(errs...)
}

// parameterBatches splits idx into batches of at most ten in which no parameter name
// repeats (in either region), so each returned parameter matches exactly one object:
// GetParameters answers `name:3` with the name alone.
func (f *fetch) parameterBatches(idx []int) [][]int {
	var batches [][]int
	var used []map[string]bool
	for _, i := range idx {
		names := make([]string, len(f.regions))
		for r := range f.regions {
			names[r] = f.target(i, r).name
		}
		placed := false
		for n := range batches {
			if len(batches[n]) == parameterBatch || slices.ContainsFunc(names, func(s string) bool { return used[n][s] }) {
				continue
			}
			batches[n] = append(batches[n], i)
			for _, s := range names {
				used[n][s] = true
			}
			placed = true
			break
		}
		if !placed {
			batches = append(batches, []int{i})
			u := map[string]bool{}
			for _, s := range names {
				u[s] = true
			}
			used = append(used, u)
		}
	}
	return batches
}

// selector is the GetParameters name of t: name, name:version or name:label.
func (t target) selector() string {
	switch {
	case t.version != "":
		return t.name + ":" + t.version
	case t.label != "":
		return t.name + ":" + t.label
	}
	return t.name
}

type parameterValue struct {
	name, arn string
	version   int64
	value     []byte
}

type parametersResult struct {
	params  []parameterValue
	invalid map[string]bool
}

// fetchParameterBatch reads one batch in the primary region, and in the failover
// region when the primary one is unavailable.
func (b *Backend) fetchParameterBatch(ctx context.Context, f *fetch, batch []int) error {
	var lastErr error
	for r := range f.regions {
		region := f.regions[r]
		selectors := make([]string, len(batch))
		for n, i := range batch {
			selectors[n] = f.target(i, r).selector()
		}
		res, err := b.getParameters(ctx, f, region, selectors)
		if err == nil {
			return b.applyParameters(f, batch, r, res)
		}
		lastErr = b.failed(f, fmt.Sprintf("%s: %s in %s", f.class(), f.objectNames(batch), region), err)
		if !retryable(lastErr) || ctx.Err() != nil {
			break
		}
		if r+1 < len(f.regions) {
			b.log.Info("region unavailable; trying the failover region", "class", f.plan.Class, "objects", len(batch),
				"region", region, "failoverRegion", f.regions[r+1], "error", lastErr.Error())
		}
	}
	return lastErr
}

func (b *Backend) getParameters(ctx context.Context, f *fetch, region string, selectors []string) (parametersResult, error) {
	key := f.keyOf(append([]string{"parameters", region}, selectors...)...)
	v, err := b.calls.Do(ctx, key, func(ctx context.Context) (any, error) {
		out, err := b.parameterStore(region, f.sess).GetParameters(ctx, &ssm.GetParametersInput{
			Names:          selectors,
			WithDecryption: sdkaws.Bool(true),
		})
		if err != nil {
			return nil, err
		}
		res := parametersResult{invalid: map[string]bool{}}
		for _, p := range out.Parameters {
			if p.Value == nil {
				return nil, errNoParameterValue
			}
			res.params = append(res.params, parameterValue{
				name: sdkaws.ToString(p.Name), arn: sdkaws.ToString(p.ARN),
				version: p.Version, value: []byte(sdkaws.ToString(p.Value)),
			})
		}
		for _, name := range out.InvalidParameters {
			res.invalid[name] = true
		}
		return res, nil
	})
	if err != nil {
		return parametersResult{}, err
	}
	return v.(parametersResult), nil
}

// errNoParameterValue: a successful answer lists a parameter without its Value. SSM
// never stores an empty value, so this is a broken answer, an outage (retried, tried in
// the failover region), never an empty file.
var errNoParameterValue = errors.New("the answer lists a parameter without a Value")

// applyParameters matches the returned parameters to the batch's objects by name or
// ARN; an object asked for but not returned is not found.
func (b *Backend) applyParameters(f *fetch, batch []int, region int, res parametersResult) error {
	var missing []int
	for _, i := range batch {
		t := f.target(i, region)
		idx := slices.IndexFunc(res.params, func(p parameterValue) bool { return p.name == t.name || p.arn == t.name })
		if idx < 0 || res.invalid[t.selector()] {
			missing = append(missing, i)
			continue
		}
		p := res.params[idx]
		f.set(i, strconv.FormatInt(p.version, 10), p.value)
		f.served(b, i, region)
	}
	if len(missing) > 0 {
		var what []string
		for _, i := range missing {
			t := f.target(i, region)
			what = append(what, fmt.Sprintf("%s as %q", f.objectName(i), t.selector()))
		}
		return fmt.Errorf("%s: %s in %s: parameter not found (or version/label not found): %w",
			f.class(), strings.Join(what, ", "), f.regions[region], provider.ErrNotFound)
	}
	return nil
}

func (f *fetch) objectNames(batch []int) string {
	names := make([]string, len(batch))
	for n, i := range batch {
		names[n] = f.objectName(i)
	}
	return strings.Join(names, ", ")
}
