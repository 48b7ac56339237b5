package main

import (
	"bytes"
	"strconv"
	"strings"
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
			if tc.live != nil {
				o.fixWidths(tc.live...)
			}
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

// TestOutTableHoldsAScreenful: a table holds its first heldRows rows to align them,
// then writes each row as it comes; a later, wider cell widens its column from then
// on, up to maxWidth, and a longer one pushes only its own row.
func TestOutTableHoldsAScreenful(t *testing.T) {
	var buf bytes.Buffer
	o := newOut("table", &buf, []string{"FILE", "LABEL", "MORE"}, nil)
	for i := range heldRows {
		if buf.Len() != 0 {
			t.Fatalf("wrote %q before a screenful of rows", buf.String())
		}
		o.record(nil, [][]string{{"f" + strconv.Itoa(i), "Dress", ""}}, nil)
	}
	if got := strings.Count(buf.String(), "\n"); got != 1+heldRows {
		t.Fatalf("got %d lines after %d rows, want the header and every row", got, heldRows)
	}
	if !strings.HasPrefix(buf.String(), "FILE  LABEL  MORE\nf0    Dress\n") {
		t.Fatalf("the held rows are not aligned:\n%s", buf.String())
	}
	buf.Reset()
	long := strings.Repeat("x", maxWidth+10)
	rows := [][]string{{"f20", "T-shirt/top", "a"}, {"f21", "Dress", "b"}, {long, "Dress", "c"}, {"f22", "Bag", "d"}}
	for i, r := range rows {
		o.record(nil, [][]string{r}, nil)
		if got := strings.Count(buf.String(), "\n"); got != i+1 {
			t.Fatalf("got %d lines after %d more rows, want each written as it comes", got, i+1)
		}
	}
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	want := "f20   T-shirt/top  a\nf21   Dress        b\n" + long + "  Dress        c\nf22   Bag          d\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
