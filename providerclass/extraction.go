package providerclass

import (
	"fmt"
	"os"

	yaml "go.yaml.in/yaml/v3"
)

// extractions reads an object's jmesPath list. Each entry's objectAlias becomes a
// file name after name(alias) (the AWS dialect translates slashes there), and its
// expression is compiled now, so a plan that renders never fails on syntax.
func (b *builder) extractions(field string, nodes []*yaml.Node, objMode os.FileMode, name func(string) string, allowSlash bool) ([]Extraction, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	out := make([]Extraction, 0, len(nodes))
	for j, n := range nodes {
		ef := fmt.Sprintf("%s.jmesPath[%d]", field, j)
		m, err := asMapping(ef, n)
		if err != nil {
			return nil, err
		}
		path, err := m.str("path")
		if err != nil {
			return nil, err
		}
		alias, err := m.str("objectAlias")
		if err != nil {
			return nil, err
		}
		perm, err := m.str("filePermission")
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, errorf(ef+".path", "is required")
		}
		compiled, err := compileJMESPath(path)
		if err != nil {
			return nil, errorf(ef+".path", "is not a valid JMESPath expression")
		}
		if alias == "" {
			return nil, errorf(ef+".objectAlias", "is required")
		}
		file := name(alias)
		if err := b.claim(ef+".objectAlias", file, allowSlash); err != nil {
			return nil, err
		}
		mode, err := fileMode(ef+".filePermission", perm, objMode)
		if err != nil {
			return nil, err
		}
		out = append(out, Extraction{Field: ef, Path: path, File: file, Mode: mode, compiled: compiled})
	}
	return out, nil
}
