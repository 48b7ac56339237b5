package auth

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, file, err string
		n               int
	}{
		{"two tokens", "# comment\n\naaaaaaaaaaaaaaaa infer cam\nbbbbbbbbbbbbbbbb admin\n", "", 2},
		{"short token", "short infer\n", "line 1: a token must be 16", 0},
		{"unknown role", "aaaaaaaaaaaaaaaa root\n", `unknown role "root"`, 0},
		{"too many fields", "aaaaaaaaaaaaaaaa infer a b\n", "want TOKEN ROLE [NAME]", 0},
		{"one field", "aaaaaaaaaaaaaaaa\n", "want TOKEN ROLE [NAME]", 0},
		{"duplicate", "aaaaaaaaaaaaaaaa infer\naaaaaaaaaaaaaaaa admin\n", "line 2: the same token as line 1", 0},
		{"control character", "aaaaaaaaaaaaaaa\x01 infer\n", "printable ASCII", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Parse([]byte(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "aaaaaaaaaaaaaaaa") {
					t.Fatalf("the error %q shows a token", err)
				}
				return
			}
			if err != nil || table.Len() != tc.n {
				t.Fatalf("got %v tokens, %v; want %d", table.Len(), err, tc.n)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	table, err := Parse([]byte("aaaaaaaaaaaaaaaa infer cam\nbbbbbbbbbbbbbbbb admin\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		ok    bool
		role  Role
		name  string
	}{
		{"aaaaaaaaaaaaaaaa", true, RoleInfer, "cam"},
		{"bbbbbbbbbbbbbbbb", true, RoleAdmin, Fingerprint("bbbbbbbbbbbbbbbb")},
		{"aaaaaaaaaaaaaaab", false, RoleNone, ""},
		{"", false, RoleNone, ""},
		{strings.Repeat("a", 4096), false, RoleNone, ""},
	} {
		id, ok := table.Lookup(tc.token)
		if ok != tc.ok || id.Role != tc.role || id.Name != tc.name {
			t.Errorf("Lookup(%.20q) = %+v, %v; want role %v, name %q, %v", tc.token, id, ok, tc.role, tc.name, tc.ok)
		}
	}
	if fp := Fingerprint("aaaaaaaaaaaaaaaa"); len(fp) != 12 || strings.Contains("aaaaaaaaaaaaaaaa", fp) {
		t.Fatalf("fingerprint %q", fp)
	}
}
