package sync

import (
	"strings"
	"testing"
)

func TestExecuteTemplate(t *testing.T) {
	files := map[string]string{
		"db-username": "app",
		"db-password": `p@ss:w/rd\x`,
		"multi":       "line\n",
	}
	tests := []struct {
		name    string
		text    string
		want    string
		wantErr string
	}{
		{name: "one file, no newline added", text: `{{ file "db-password" }}`, want: `p@ss:w/rd\x`},
		{name: "newline only when written", text: "{{ file \"db-username\" }}\n", want: "app\n"},
		{name: "postgresql URI escapes user info",
			text: `postgresql://{{ file "db-username" | pathEscape }}:{{ file "db-password" | pathEscape }}@db:5432/app?sslmode=require`,
			want: `postgresql://app:p@ss:w%2Frd%5Cx@db:5432/app?sslmode=require`},
		{name: "pgpass escapes colon and backslash", text: `db:5432:app:{{ file "db-username" | pgpass }}:{{ file "db-password" | pgpass }}`,
			want: `db:5432:app:app:p@ss\:w/rd\\x`},
		{name: "json string", text: `{"password":{{ file "db-password" | json }}}`, want: `{"password":"p@ss:w/rd\\x"}`},
		{name: "files map", text: `{{ .Files.multi | trimNewline }}`, want: "line"},
		{name: "base64", text: `{{ file "db-username" | base64 }}`, want: "YXBw"},
		{name: "query escape", text: `{{ file "db-password" | queryEscape }}`, want: `p%40ss%3Aw%2Frd%5Cx`},
		{name: "missing file is an error", text: `{{ file "nope" }}`, wantErr: `no file "nope"`},
		{name: "missing map key is an error", text: `{{ .Files.nope }}`, wantErr: `nope`},
		{name: "parse error", text: `{{ file "x" `, wantErr: "unclosed action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := executeTemplate("spec.secretObject.data[0].template", tt.text, files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				for _, v := range files {
					if strings.Contains(err.Error(), strings.TrimSpace(v)) {
						t.Fatalf("error %q contains a file's content", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
