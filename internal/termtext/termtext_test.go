package termtext

import "testing"

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"Dress":                          "Dress",
		"Chemisier à fleurs":             "Chemisier à fleurs",
		"Dress\nFORGED ROW":              `Dress\nFORGED ROW`,
		"Coat\x1b[31m red\x1b]0;PWNED\a": `Coat\x1b[31m red\x1b]0;PWNED\a`,
		"a\u202eevil":                    `a\u202eevil`,
		"bad\xff\xfe":                    `bad\xff\xfe`,
		"tab\there":                      `tab\there`,
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}
