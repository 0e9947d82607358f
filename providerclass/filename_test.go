package providerclass

import (
	"strings"
	"testing"
)

func TestValidateFileName(t *testing.T) {
	long := strings.Repeat("a", MaxFileNameComponent)
	for _, tc := range []struct {
		name       string
		allowSlash bool
		reason     string // "" means valid
	}{
		{"db-password", false, ""},
		{"prod_cnpg_postgres-credentials", false, ""},
		{"arn:aws:secretsmanager:us-east-1:1:secret:x", false, ""},
		{".hidden", false, ""},
		{"a..b", false, ""},
		{"tls/cert.pem", true, ""},
		{"a/b/c", true, ""},
		{long, false, ""},
		{long + "/" + long, true, ""},
		{"", false, "empty"},
		{"", true, "empty"},
		{"a/b", false, "separator"},
		{"/abs", true, "relative"},
		{"/abs", false, "relative"},
		{"..", false, "'..'"},
		{"../x", true, "'..'"},
		{"x/..", true, "'..'"},
		{"x/../y", true, "'..'"},
		{".", false, "'.'"},
		{"./x", true, "'.'"},
		{"x//y", true, "empty path component"},
		{"x/", true, "empty path component"},
		{"..data", false, "reserved"},
		{"..2026_11_30_03_00_00.123", false, "reserved"},
		{"x/..data", true, "reserved"},
		{"a\x00b", false, "NUL"},
		{"a\x00/b", true, "NUL"},
		{long + "a", false, "longer than"},
		{"x/" + long + "a", true, "longer than"},
		{strings.Repeat("abcdefg/", 128) + "x", true, "at most"},
		{"café/naïve", true, ""},    // letters with accents, precomposed or combining
		{"cafe\u0301", false, ""},   // combining acute accent
		{"ｐａｓｓｗｏｒｄ．ｔｘｔ", false, ""}, // fullwidth letters are letters, not separators
		{"a\nb", false, "control"},
		{"a\tb", false, "control"},
		{"\x7f", false, "control"},
		{"pass\u202Etxt.exe", false, "U+202E"}, // right-to-left override
		{"db\u200Bpassword", false, "U+200B"},  // zero-width space
		{"\ufeffname", false, "U+FEFF"},        // byte order mark
		{"x/\u2066y", true, "invisible"},       // left-to-right isolate
		{"\xff\xfe", false, "UTF-8"},
	} {
		err := ValidateFileName(tc.name, tc.allowSlash)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("ValidateFileName(%.40q, %v) = %v, want nil", tc.name, tc.allowSlash, err)
		case tc.reason != "" && err == nil:
			t.Errorf("ValidateFileName(%.40q, %v) = nil, want an error containing %q", tc.name, tc.allowSlash, tc.reason)
		case tc.reason != "" && !strings.Contains(err.Error(), tc.reason):
			t.Errorf("ValidateFileName(%.40q, %v) = %v, want it to contain %q", tc.name, tc.allowSlash, err, tc.reason)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"0600", 0o600, true}, {"600", 0o600, true}, {"0o400", 0o400, true}, {"0777", 0o777, true}, {"0", 0, true},
		{"0000", 0, true}, {"1777", 0, false}, {"0800", 0, false}, {"", 0, false}, {"0o", 0, false},
		{"-600", 0, false}, {"+600", 0, false}, {"0x1ff", 0, false}, {"6_00", 0, false}, {" 600", 0, false},
	} {
		got, err := parseMode(tc.in)
		if (err == nil) != tc.ok || (tc.ok && uint32(got) != tc.want) {
			t.Errorf("parseMode(%q) = %o, %v; want %o ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
