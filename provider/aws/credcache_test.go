package aws

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
)

func TestCredentialCache(t *testing.T) {
	clk := newClock()
	cache := newCredentialCache(5*time.Minute, clk.Now)
	var mints atomic.Int32
	mint := func(lifetime time.Duration) func(context.Context) (sdkaws.Credentials, error) {
		return func(context.Context) (sdkaws.Credentials, error) {
			n := mints.Add(1)
			return sdkaws.Credentials{AccessKeyID: string(rune('A' + n)), CanExpire: true, Expires: clk.Now().Add(lifetime)}, nil
		}
	}
	ctx := context.Background()

	// Concurrent misses make one mint.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cache.get(ctx, "role|sub", mint(time.Hour)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := mints.Load(); n != 1 {
		t.Fatalf("mints = %d, want 1", n)
	}

	clk.Advance(54 * time.Minute)
	if _, _ = cache.get(ctx, "role|sub", mint(time.Hour)); mints.Load() != 1 {
		t.Errorf("renewed 6 minutes before expiry; the margin is 5")
	}
	clk.Advance(2 * time.Minute)
	if _, _ = cache.get(ctx, "role|sub", mint(time.Hour)); mints.Load() != 2 {
		t.Errorf("not renewed 4 minutes before expiry")
	}

	// Short-lived credentials are reused for half their life, not minted every time.
	if _, _ = cache.get(ctx, "short", mint(4*time.Minute)); mints.Load() != 3 {
		t.Fatal("short-lived credentials not minted")
	}
	clk.Advance(time.Minute)
	if _, _ = cache.get(ctx, "short", mint(4*time.Minute)); mints.Load() != 3 {
		t.Errorf("short-lived credentials minted again after a quarter of their life")
	}
	clk.Advance(90 * time.Second)
	if _, _ = cache.get(ctx, "short", mint(4*time.Minute)); mints.Load() != 4 {
		t.Errorf("short-lived credentials not renewed after half their life")
	}

	// Failures are not kept.
	boom := errors.New("boom")
	if _, err := cache.get(ctx, "failing", func(context.Context) (sdkaws.Credentials, error) { return sdkaws.Credentials{}, boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	if _, err := cache.get(ctx, "failing", mint(time.Hour)); err != nil {
		t.Errorf("failure was kept: %v", err)
	}
}
