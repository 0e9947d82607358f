package providerclass

import (
	"encoding/json"
	"fmt"

	"github.com/jmespath/go-jmespath"
)

// Render turns fetched contents (one per p.Objects entry, same order) into the files of
// the mount: each object's own file and one per extraction. It fails, writing nothing,
// if any extraction fails.
func (p *Plan) Render(contents []ObjectContent) ([]File, error) {
	if len(contents) != len(p.Objects) {
		return nil, fmt.Errorf("render %s: got %d contents for %d objects", p.Class, len(contents), len(p.Objects))
	}
	n := 0
	for _, o := range p.Objects {
		n += 1 + len(o.Extractions)
	}
	files := make([]File, 0, n)
	for i := range p.Objects {
		o := &p.Objects[i]
		if o.File != "" {
			files = append(files, File{Path: o.File, Mode: o.Mode, Bytes: contents[i].Bytes})
		}
		if len(o.Extractions) == 0 {
			continue
		}
		doc := contents[i].Document
		if doc == nil {
			doc = contents[i].Bytes
		}
		var data any
		if err := json.Unmarshal(doc, &data); err != nil {
			return nil, p.renderError(o.Field+".jmesPath", "object %q is not a JSON document, so its jmesPath entries cannot be evaluated", o.Name)
		}
		for j := range o.Extractions {
			e := &o.Extractions[j]
			b, err := p.extract(o, e, data)
			if err != nil {
				return nil, err
			}
			files = append(files, File{Path: e.File, Mode: e.Mode, Bytes: b})
		}
	}
	return files, nil
}

// extract evaluates one extraction. Strings are written as they are; numbers and
// booleans in their JSON form; anything else is refused, naming the object and the
// alias but never the value found.
func (p *Plan) extract(o *Object, e *Extraction, data any) ([]byte, error) {
	expr := e.compiled
	if expr == nil {
		c, err := compileJMESPath(e.Path)
		if err != nil {
			return nil, p.renderError(e.Field+".path", "is not a valid JMESPath expression")
		}
		expr = c
	}
	v, err := searchJMESPath(expr, data)
	if err != nil {
		return nil, p.renderError(e.Field+".path", "evaluating %q on object %q failed", e.Path, o.Name)
	}
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case float64, bool:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, p.renderError(e.Field+".path", "%q on object %q yields a number JSON cannot express", e.Path, o.Name)
		}
		return b, nil
	case nil:
		return nil, p.renderError(e.Field+".path", "%q matches nothing in object %q (alias %q)", e.Path, o.Name, e.File)
	default:
		return nil, p.renderError(e.Field+".path", "%q yields %s in object %q (alias %q); only a string, number or boolean can be written", e.Path, jsonKind(v), o.Name, e.File)
	}
}

func (p *Plan) renderError(field, format string, args ...any) *Error {
	return &Error{Class: p.Class, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "a value of another kind"
}

// compileJMESPath compiles each distinct expression once (see memo.go).
func compileJMESPath(expr string) (*jmespath.JMESPath, error) {
	r := compiled.get(expr, func() compiledJMESPath {
		c, err := compileJMESPathOnce(expr)
		return compiledJMESPath{c, err}
	})
	return r.expr, r.err
}

// compileJMESPathOnce and searchJMESPath turn a panic inside the JMESPath library
// into an error: a hostile expression or document must not take the driver down.
func compileJMESPathOnce(expr string) (c *jmespath.JMESPath, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("jmespath compiler failed on the expression")
		}
	}()
	return jmespath.Compile(expr)
}

func searchJMESPath(c *jmespath.JMESPath, data any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("jmespath evaluation failed")
		}
	}()
	return c.Search(data)
}
