package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// valuesDir is the subfolder test/harness.RecordSecretValue writes each value to, one
// file per value; every other file under the leak folder is scanned.
const valuesDir = "values"

// minLeaf is the shortest string leaf of a JSON value scanned on its own: a JSON secret
// carries user names and hosts ("postgres") beside its secrets, which logs rightly name.
const minLeaf = 10

// minLen is the shortest value scanned: shorter ones cannot be told apart from ordinary
// words, and the scan's window is this wide.
const minLen = 8

// Hit is one place a value was found.
type Hit struct {
	File  string // relative to the leak folder
	Line  int
	Value string // the record's file name under values/, never the value
	Form  string // raw, json, quoted, base64, base64url, hex, ...
}

// Report is what a scan found and how much it read.
type Report struct {
	Values  int // values recorded
	Short   int // of those, too short to scan
	Needles int // distinct byte strings searched for
	Files   int
	Lines   int
	Bytes   int64
	Hits    []Hit
}

type needle struct {
	text  []byte
	value string
	form  string
}

// Scan reads the values under dir/values and looks for each in every other file under dir.
func Scan(dir string) (*Report, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("leak folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("leak folder %s is not a folder", dir)
	}
	r := &Report{}
	needles, err := loadNeedles(filepath.Join(dir, valuesDir), r)
	if err != nil {
		return nil, err
	}
	r.Needles = len(needles)
	m := newMatcher(needles)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == valuesDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		r.Files++
		r.Bytes += int64(len(data))
		r.Lines += bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			r.Lines++
		}
		r.Hits = append(r.Hits, m.search(data, rel)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return r, nil
}

// loadNeedles reads every recorded value and expands it into the forms searched for.
func loadNeedles(dir string, r *Report) ([]needle, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	seen := map[string]bool{}
	var out []needle
	add := func(text []byte, value, form string) {
		if len(text) < minLen || seen[string(text)] {
			return
		}
		seen[string(text)] = true
		out = append(out, needle{text: text, value: value, form: form})
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		v, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("value %s: %w", e.Name(), err)
		}
		r.Values++
		if len(v) < minLen {
			r.Short++
			continue
		}
		for _, f := range forms(v) {
			add(f.text, e.Name(), f.form)
		}
		for _, leaf := range jsonLeaves(v) {
			if len(leaf) < minLeaf {
				continue
			}
			for _, f := range forms([]byte(leaf)) {
				add(f.text, e.Name(), "json leaf, "+f.form)
			}
		}
	}
	return out, nil
}

type form struct {
	text []byte
	form string
}

// forms are the ways v could be written into a log line, an event or an error.
func forms(v []byte) []form {
	out := []form{{v, "raw"}}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if enc.Encode(string(v)) == nil {
		out = append(out, form{unquote(bytes.TrimSpace(js.Bytes())), "json"})
	}
	if b, err := json.Marshal(string(v)); err == nil {
		out = append(out, form{unquote(b), "json html-escaped"})
	}
	out = append(out,
		form{unquote([]byte(strconv.Quote(string(v)))), "quoted"},
		form{unquote([]byte(strconv.QuoteToASCII(string(v)))), "ascii-quoted"},
		form{[]byte(base64.StdEncoding.EncodeToString(v)), "base64"},
		form{[]byte(base64.RawStdEncoding.EncodeToString(v)), "base64"},
		form{[]byte(base64.URLEncoding.EncodeToString(v)), "base64url"},
		form{[]byte(base64.RawURLEncoding.EncodeToString(v)), "base64url"},
		form{[]byte(hex.EncodeToString(v)), "hex"},
		form{[]byte(strings.ToUpper(hex.EncodeToString(v))), "hex"},
	)
	return out
}

func unquote(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

// jsonLeaves lists the string leaves of v when v is a JSON object or array, so a value
// stored as a JSON document (a Secrets Manager secret) is also found by its fields.
func jsonLeaves(v []byte) []string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return nil
	}
	var doc any
	if json.Unmarshal(t, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	sort.Strings(out)
	return out
}

// matcher keys each needle by its first minLen bytes, so a file is read once whatever
// the number of needles.
type matcher struct {
	needles []needle
	byStart map[uint64][]int
}

func newMatcher(needles []needle) *matcher {
	m := &matcher{needles: needles, byStart: map[uint64][]int{}}
	for i, n := range needles {
		k := binary.LittleEndian.Uint64(n.text[:minLen])
		m.byStart[k] = append(m.byStart[k], i)
	}
	return m
}

// search reports each value found in data, once per line it is on.
func (m *matcher) search(data []byte, file string) []Hit {
	if len(m.needles) == 0 {
		return nil
	}
	// One hit per value and line: a padded base64 form also matches its unpadded prefix.
	type at struct {
		line  int
		value string
	}
	var hits []Hit
	seen := map[at]bool{}
	line, counted := 1, 0
	for i := 0; i+minLen <= len(data); i++ {
		cands, ok := m.byStart[binary.LittleEndian.Uint64(data[i:i+minLen])]
		if !ok {
			continue
		}
		for _, c := range cands {
			n := m.needles[c]
			if !bytes.HasPrefix(data[i:], n.text) {
				continue
			}
			line += bytes.Count(data[counted:i], []byte{'\n'})
			counted = i
			if seen[at{line, n.value}] {
				continue
			}
			seen[at{line, n.value}] = true
			hits = append(hits, Hit{File: file, Line: line, Value: n.value, Form: n.form})
		}
	}
	return hits
}
