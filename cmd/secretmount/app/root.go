package app

import (
	"github.com/spf13/cobra"
)

// NewCommand returns the secretmount command with every subcommand.
//
// Settings take precedence in this order, lowest first: built-in defaults, SECRETMOUNT_*
// environment variables, command-line flags, SecretProviderClass parameters.
func NewCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "secretmount",
		Short:         "Mount secrets from AWS and Vault into pods, and sync them to Kubernetes Secrets",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand())
	for _, add := range subcommands {
		cmd := add()
		for _, hook := range commandHooks {
			hook(cmd)
		}
		root.AddCommand(cmd)
	}
	return root
}

// commandHooks run on every subcommand once it is built: backends use them to add their
// flags to the commands that fetch, whatever order the package's files initialize in.
var commandHooks []func(*cobra.Command)

// subcommands are registered by the files that define them, so each role stays in its
// own file.
var subcommands []func() *cobra.Command

// bindRunningCommand points *dst at cmd when cmd is the one that runs. Backend options
// are shared by every command they add flags to, and the last command built is not the
// one that runs: without this, a backend would read another command's --kubeconfig.
func bindRunningCommand(cmd *cobra.Command, dst **cobra.Command) {
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		*dst = c
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}
