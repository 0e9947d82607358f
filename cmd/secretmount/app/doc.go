// Package app holds the secretmount subcommands: each parses its flags into one typed
// options struct, builds the component and calls its Run(ctx). Nothing below this
// package exits the process.
package app
