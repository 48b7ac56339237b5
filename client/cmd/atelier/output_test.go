package main

import (
	"bytes"
	"strconv"
	"testing"
)

func TestOut(t *testing.T) {
	type rec struct {
		A string `json:"a"`
		N int    `json:"n"`
	}
	rows := []rec{{"x", 1}, {"longer", 22}}
	cases := []struct {
		name   string
		format string
		live   []int
		rows   []rec
		want   string
	}{
		{"table aligns", "table", nil, rows, "A       N\nx       1\nlonger  22\n"},
		{"table without rows keeps the header", "table", nil, nil, "A  N\n"},
		{"live rows at fixed widths", "table", []int{4}, rows, "A     N\nx     1\nlonger  22\n"},
		{"live without rows prints nothing", "table", []int{4}, nil, ""},
		{"json array", "json", nil, rows, "[\n  {\n    \"a\": \"x\",\n    \"n\": 1\n  },\n  {\n    \"a\": \"longer\",\n    \"n\": 22\n  }\n]\n"},
		{"json empty array", "json", nil, nil, "[]\n"},
		{"csv", "csv", nil, rows, "a,n\nx,1\nlonger,22\n"},
		{"csv header only", "csv", nil, nil, "a,n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			o := newOut(tc.format, &buf, []string{"A", "N"}, []string{"a", "n"})
			o.live = tc.live
			for _, r := range tc.rows {
				cells := []string{r.A, strconv.Itoa(r.N)}
				if err := o.record(r, [][]string{cells}, [][]string{cells}); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Fatalf("got\n%q, want\n%q", buf.String(), tc.want)
			}
		})
	}
}
