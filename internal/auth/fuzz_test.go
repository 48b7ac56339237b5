package auth

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary token files to the parser: it must refuse them or return
// a table whose every token is found with its role, and its errors never echo a token.
func FuzzParse(f *testing.F) {
	f.Add([]byte("# tokens\naaaaaaaaaaaaaaaa infer cam\nbbbbbbbbbbbbbbbb admin\n"))
	f.Add([]byte("aaaaaaaaaaaaaaaa infer\naaaaaaaaaaaaaaaa admin\n"))
	f.Add([]byte("short root\n\n\t\n"))
	f.Add([]byte(strings.Repeat("x", 70000) + " infer\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := Parse(data)
		if err != nil {
			for _, f := range strings.Fields(string(data)) {
				if len(f) >= MinTokenBytes && strings.Contains(err.Error(), f) {
					t.Fatalf("error %q echoes the file's text %q", err, f)
				}
			}
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			id, ok := table.Lookup(fields[0])
			if !ok || id.Role.String() != fields[1] {
				t.Fatalf("token of line %q: %+v, %v", line, id, ok)
			}
		}
	})
}
