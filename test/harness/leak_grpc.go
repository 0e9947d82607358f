package harness

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
)

// RecordGRPCErrors is a client interceptor that hands every error a secretmount gRPC
// server answers (CSI Node, provider Mount) to the leak scan; it records nothing when the
// scan is off. Probe is left out: its errors are the dial failures of readiness polling,
// not the server's words. Dial with grpc.WithChainUnaryInterceptor(harness.RecordGRPCErrors).
func RecordGRPCErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil && !strings.HasSuffix(method, "/Probe") {
		if recErr := RecordLeak(LeakErrors, "grpc"+strings.ReplaceAll(method, "/", "-"), err.Error()+"\n"); recErr != nil {
			// The call's own error stays as the server sent it; the gap in the record is
			// for the suite's output to show.
			fmt.Fprintf(os.Stderr, "harness: %v\n", recErr)
		}
	}
	return err
}
