// Command secretmount is the CSI driver, provider and sync controller for secrets from
// AWS Secrets Manager, AWS SSM Parameter Store and HashiCorp Vault.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/secretmount/secretmount/cmd/secretmount/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.NewCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "secretmount:", err)
		os.Exit(1)
	}
}
