package providerclass

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the names of files written into a mount. A component is capped at the
// common NAME_MAX; the whole relative path is capped well below PATH_MAX so that the
// kubelet's target path (itself long) still fits in front of it.
const (
	MaxFileNameComponent = 255
	MaxFilePathLength    = 1024
)

// ValidateFileName checks a file name that lands inside a mount folder: relative, not
// empty, no NUL, within the length limits, and unable to leave the folder. With
// allowSlash false the name must be a single component; with it true, "/" separates
// sub-folders, and empty, "." and ".." components are refused.
//
// Names must be valid UTF-8 without control or invisible formatting characters
// (newlines, right-to-left overrides, zero-width spaces): such a name shows as another
// name in a listing, a log line or a review, which is how a swapped file hides.
//
// Any component starting with ".." is refused as well: the atomic writer keeps its
// own entries ("..data" and the timestamped folders) under such names beside the
// files, and a provider-chosen name must never collide with them.
//
// The error describes the problem and never repeats the name, so callers can put
// the name (or the field it came from) in front of it as they see fit.
func ValidateFileName(name string, allowSlash bool) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return errors.New("must not contain a NUL byte")
	}
	if !utf8.ValidString(name) {
		return errors.New("must be valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("must not contain control or invisible formatting characters (found %U)", r)
		}
	}
	if len(name) > MaxFilePathLength {
		return fmt.Errorf("must be at most %d bytes long", MaxFilePathLength)
	}
	if strings.HasPrefix(name, "/") {
		return errors.New("must be a relative path, not an absolute one")
	}
	if !allowSlash {
		if strings.IndexByte(name, '/') >= 0 {
			return errors.New("must not contain a path separator '/'")
		}
		return validateComponent(name)
	}
	for _, c := range strings.Split(name, "/") {
		if err := validateComponent(c); err != nil {
			return err
		}
	}
	return nil
}

func validateComponent(c string) error {
	switch {
	case c == "":
		return errors.New("must not contain an empty path component")
	case c == ".":
		return errors.New("must not contain a '.' path component")
	case c == "..":
		return errors.New("must not contain a '..' path component")
	case strings.HasPrefix(c, ".."):
		return errors.New("must not have a path component starting with '..' (reserved for the atomic writer)")
	case len(c) > MaxFileNameComponent:
		return fmt.Errorf("must not have a path component longer than %d bytes", MaxFileNameComponent)
	}
	return nil
}
