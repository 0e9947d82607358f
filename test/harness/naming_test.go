package harness

import (
	"regexp"
	"strings"
	"testing"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestNamespaceName(t *testing.T) {
	tests := []struct {
		testName string
		want     string
	}{
		{testName: "TestSync", want: "testsync-abc123"},
		{testName: "TestSync/by_ARN", want: "testsync-by-arn-abc123"},
		{testName: "Test/__/", want: "test-abc123"},
		{testName: "///", want: "test-abc123"},
		{testName: strings.Repeat("TestVeryLong", 10), want: strings.Repeat("testverylong", 10)[:56] + "-abc123"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := namespaceName(tt.testName, "abc123")
			if got != tt.want {
				t.Errorf("namespaceName(%q) = %q, want %q", tt.testName, got, tt.want)
			}
			if len(got) > 63 || !dnsLabel.MatchString(got) {
				t.Errorf("%q is not a DNS label", got)
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	tests := map[string]string{
		"plain":      "'plain'",
		"it's":       "'it''s'",
		"''":         "''''''",
		`back\slash`: `'back\slash'`,
		"":           "''",
	}
	for in, want := range tests {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDSNFor(t *testing.T) {
	p := &Postgres{Host: "127.0.0.1", Port: 5433}
	tests := []struct {
		user, password, db, want string
	}{
		{"app", "pw", "", "postgres://app:pw@127.0.0.1:5433/postgres?sslmode=disable"},
		{"app", "p@ss:w/rd", "appdb", "postgres://app:p%40ss%3Aw%2Frd@127.0.0.1:5433/appdb?sslmode=disable"},
	}
	for _, tt := range tests {
		if got := p.DSNFor(tt.user, tt.password, tt.db); got != tt.want {
			t.Errorf("DSNFor(%q, %q, %q) = %s, want %s", tt.user, tt.password, tt.db, got, tt.want)
		}
	}
}
