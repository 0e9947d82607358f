package plugin

import (
	"regexp"

	"github.com/secretmount/secretmount/providerclass"
)

// providerNameRe is the upstream driver's rule for provider names, which become socket
// file names: nothing that could leave the providers folder.
var providerNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,30}$`)

// ValidProviderName reports whether name can be served or called over a socket.
func ValidProviderName(name string) bool { return providerNameRe.MatchString(name) }

// checkFilePath rejects a path a provider returned that could land outside the target
// folder or collide with the atomic writer's own entries. Sub-folders are allowed, as
// upstream.
func checkFilePath(p string) error { return providerclass.ValidateFileName(p, true) }
