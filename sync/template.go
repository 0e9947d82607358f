package sync

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/template"
)

// templateData is the dot of a templated key.
type templateData struct {
	// Files maps every fetched file path to its content.
	Files map[string]string
}

// templateFuncs are the helpers of templated keys; they escape for the formats
// CloudNativePG and libpq read (URIs, .pgpass, JSON).
func templateFuncs(files map[string]string) template.FuncMap {
	return template.FuncMap{
		"file": func(path string) (string, error) {
			v, ok := files[path]
			if !ok {
				return "", fmt.Errorf("no file %q among the fetched files", path)
			}
			return v, nil
		},
		"pathEscape":  url.PathEscape,
		"queryEscape": url.QueryEscape,
		"pgpass":      pgpassEscape,
		"json": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
		"base64":      func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"trimSpace":   strings.TrimSpace,
		"trimNewline": func(s string) string { return strings.TrimRight(s, "\r\n") },
	}
}

// pgpassEscape escapes a .pgpass field: libpq reads \: as : and \\ as \.
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// parseTemplate checks a template without running it, so a bad template is refused before
// anything is fetched.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(templateFuncs(nil)).Parse(text)
}

// executeTemplate renders text over files. The error names the template position, never
// a file's content.
func executeTemplate(name, text string, files map[string]string) ([]byte, error) {
	t, err := parseTemplate(name, text)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Funcs(templateFuncs(files)).Execute(&out, templateData{Files: files}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
