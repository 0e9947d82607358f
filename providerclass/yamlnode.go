package providerclass

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The objects parameters are walked as YAML nodes rather than decoded into structs so
// that every complaint can name the exact field path, and so that a filePermission
// keeps the digits as written (a YAML decoder would read 0600 as 384 and 600 as
// decimal).

// fieldError is a rejection before the class name is known to the walker.
type fieldError struct {
	field  string
	reason string
}

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func errorf(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

// objects plans every entry of the objects parameter, which both dialects require, with
// the dialect's planObject; an entry's field path is objects[i].
func (b *builder) objects(planObject func(field string, n *yaml.Node) (Object, error)) error {
	nodes, err := parseList("parameters.objects", b.plan.Parameters["objects"])
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return errorf("parameters.objects", "is required: list at least one object")
	}
	b.plan.Objects = make([]Object, 0, len(nodes))
	for i, n := range nodes {
		obj, err := planObject(fmt.Sprintf("objects[%d]", i), n)
		if err != nil {
			return err
		}
		b.plan.Objects = append(b.plan.Objects, obj)
	}
	return nil
}

// parseList reads a parameter holding a YAML sequence of mappings. A missing, empty
// or null document is an empty list. The nodes may be shared with other callers: read
// them, never change them.
func parseList(param, doc string) ([]*yaml.Node, error) {
	r := parsedLists.get(param+"\x00"+doc, func() parsedList {
		nodes, err := parseListOnce(param, doc)
		return parsedList{nodes, err}
	})
	return r.nodes, r.err
}

func parseListOnce(param, doc string) ([]*yaml.Node, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		return nil, errorf(param, "not valid YAML: %s", yamlReason(err))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, nil
	}
	seq := resolveAlias(root.Content[0])
	if isNull(seq) {
		return nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, errorf(param, "must be a YAML list of objects, found %s", kindName(seq))
	}
	return seq.Content, nil
}

// yamlReason keeps the parser's message (line and what went wrong) without the
// "yaml: " prefix. The parser reports positions and token kinds, not values.
func yamlReason(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// mapping is one YAML mapping with its keys checked for duplicates.
type mapping struct {
	field  string
	values map[string]*yaml.Node
}

func asMapping(field string, n *yaml.Node) (*mapping, error) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		return nil, errorf(field, "must be a mapping, found %s", kindName(n))
	}
	m := &mapping{field: field, values: make(map[string]*yaml.Node, len(n.Content)/2)}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolveAlias(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			return nil, errorf(field, "keys must be strings, found %s", kindName(k))
		}
		if k.Tag == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if _, dup := m.values[k.Value]; dup {
			return nil, errorf(field+"."+k.Value, "is set more than once")
		}
		m.values[k.Value] = n.Content[i+1]
	}
	for _, src := range merges {
		if err := m.merge(src); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// merge applies a YAML merge key ("<<: *base", or a list of such): keys written in
// the mapping itself win, then the earlier sources. The decoders the upstream
// providers use honour merge keys, so classes written with them must plan the same.
func (m *mapping) merge(src *yaml.Node) error {
	src = resolveAlias(src)
	var sources []*yaml.Node
	switch src.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{src}
	case yaml.SequenceNode:
		sources = src.Content
	default:
		return errorf(m.field+".<<", "must merge a mapping, found %s", kindName(src))
	}
	for _, s := range sources {
		s = resolveAlias(s)
		if s.Kind != yaml.MappingNode {
			return errorf(m.field+".<<", "must merge a mapping, found %s", kindName(s))
		}
		for i := 0; i+1 < len(s.Content); i += 2 {
			k := resolveAlias(s.Content[i])
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				continue
			}
			if _, set := m.values[k.Value]; !set {
				m.values[k.Value] = s.Content[i+1]
			}
		}
	}
	return nil
}

// str returns the scalar at key as written ("" when absent or null). Numbers and
// booleans are taken as their literal text, so objectVersion: 3 means "3".
func (m *mapping) str(key string) (string, error) {
	n, ok := m.values[key]
	if !ok {
		return "", nil
	}
	n = resolveAlias(n)
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", errorf(m.field+"."+key, "must be a string, found %s", kindName(n))
	}
	return n.Value, nil
}

// strField names a string key of a mapping and where its value goes.
type strField struct {
	key string
	dst *string
}

// strs reads several string keys in the order given, so the first bad one reported
// is always the same.
func (m *mapping) strs(fields ...strField) error {
	for _, f := range fields {
		v, err := m.str(f.key)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	return nil
}

// list returns the sequence at key (nil when absent or null).
func (m *mapping) list(key string) ([]*yaml.Node, error) {
	n, ok := m.values[key]
	if !ok {
		return nil, nil
	}
	n = resolveAlias(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errorf(m.field+"."+key, "must be a list, found %s", kindName(n))
	}
	return n.Content, nil
}

func (m *mapping) node(key string) (*yaml.Node, bool) {
	n, ok := m.values[key]
	if !ok {
		return nil, false
	}
	n = resolveAlias(n)
	if isNull(n) {
		return nil, false
	}
	return n, true
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// resolveAlias follows a bounded chain of aliases; the parser already refuses cycles.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	case isNull(n):
		return "null"
	case n.Kind == yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	case n.Kind == yaml.DocumentNode:
		return "a document"
	}
	return "an unknown node"
}
