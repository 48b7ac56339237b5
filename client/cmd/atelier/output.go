package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/atelier-vision/atelier/internal/termtext"
)

// heldRows is how many rows a table holds to align their columns, about a
// screenful: a small table is aligned as a whole, a long run's later rows print as
// they arrive.
const heldRows = 20

// maxWidth is the widest a column grows to once its width is set, and the most that
// fit reserves: a longer cell pushes only its own row's later cells.
const maxWidth = 40

// out writes a command's records as a table, one JSON document or CSV.
//
// JSON is an array of records (or a single object for describe and health); CSV has
// a header row and one row per prediction, detection or tensor; a table is for people.
// Every format writes each record as it comes, except that a table holds its first
// heldRows rows to set its columns' widths from them.
type out struct {
	format string
	w      io.Writer
	header []string   // the table's header row, until written
	held   [][]string // table rows waiting for the columns' widths
	widths []int      // table column widths (at least these while rows are held)
	fixed  bool       // the widths are set: each table row is written at once
	cw     *csv.Writer
	n      int   // JSON records written
	err    error // a table's first failed write, which record and close return
}

// newOut starts an output with the table's and the CSV's header rows.
func newOut(format string, w io.Writer, tableHeader, csvHeader []string) *out {
	o := &out{format: format, w: w}
	switch format {
	case "table":
		o.header = tableHeader
	case "csv":
		o.cw = csv.NewWriter(w)
		o.cw.Write(csvHeader)
	}
	return o
}

// fit widens table column col to the longest of cells, up to maxWidth: what a command
// knows before any row (its input names) keeps the rows after the first screenful
// aligned.
func (o *out) fit(col int, cells []string) {
	for len(o.widths) <= col {
		o.widths = append(o.widths, 0)
	}
	for _, c := range cells {
		o.widths[col] = max(o.widths[col], min(utf8.RuneCountInString(cleanCell(c)), maxWidth))
	}
}

// fixWidths sets the table's column widths up front, so that every row is written as
// it comes, the first one too: a stream's rows come over minutes.
func (o *out) fixWidths(widths ...int) { o.widths, o.fixed = widths, true }

// record writes one record: item as a JSON array element, or its table rows, or its
// CSV rows.
func (o *out) record(item any, table, csvRows [][]string) error {
	switch o.format {
	case "json":
		b, err := json.MarshalIndent(item, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if o.n == 0 {
			sep = "[\n  "
		}
		o.n++
		_, err = fmt.Fprint(o.w, sep, string(b))
		return err
	case "csv":
		for _, r := range csvRows {
			o.cw.Write(r)
		}
		o.cw.Flush()
		return o.cw.Error()
	}
	for _, r := range table {
		r = cleanRow(r)
		if !o.fixed {
			if o.held = append(o.held, r); len(o.held) >= heldRows {
				o.fix()
			}
			continue
		}
		if o.header != nil {
			h := o.header
			o.header = nil
			o.row(h)
		}
		o.row(r)
	}
	return o.err
}

// fix sets each column's width to its widest cell in the header and the held rows,
// and writes them.
func (o *out) fix() {
	rows := o.held
	if o.header != nil {
		rows = append([][]string{o.header}, rows...)
	}
	for _, r := range rows {
		for i := range len(r) - 1 { // a row's last cell is not padded
			if i == len(o.widths) {
				o.widths = append(o.widths, 0)
			}
			o.widths[i] = max(o.widths[i], utf8.RuneCountInString(r[i]))
		}
	}
	o.header, o.held, o.fixed = nil, nil, true
	for _, r := range rows {
		o.row(r)
	}
}

// row writes one row at the columns' widths, widening a column (up to maxWidth) for a
// wider cell; the last cell is not padded.
func (o *out) row(r []string) {
	var b strings.Builder
	for i, cell := range r {
		if i < len(r)-1 && i < len(o.widths) {
			if n := utf8.RuneCountInString(cell); n > o.widths[i] && n <= maxWidth {
				o.widths[i] = n
			}
			fmt.Fprintf(&b, "%-*s  ", o.widths[i], cell)
		} else {
			b.WriteString(cell + "  ")
		}
	}
	if _, err := fmt.Fprintln(o.w, strings.TrimRight(b.String(), " ")); err != nil && o.err == nil {
		o.err = err // a full disk: the run must not end as if the table were written
	}
}

// close ends the document; a table writes the rows it still holds (or its header
// alone).
func (o *out) close() error {
	switch o.format {
	case "json":
		end := "\n]\n"
		if o.n == 0 {
			end = "[]\n"
		}
		_, err := fmt.Fprint(o.w, end)
		return err
	case "csv":
		o.cw.Flush()
		return o.cw.Error()
	}
	if !o.fixed {
		o.fix()
	}
	return o.err
}

// cleanRow returns r with every cell made safe for a terminal (cleanCell).
func cleanRow(r []string) []string {
	c := make([]string, len(r))
	for i, cell := range r {
		c[i] = cleanCell(cell)
	}
	return c
}

// cleanCell makes text from a file name or the server safe to print on a terminal, on
// one line (termtext.Clean). JSON and CSV carry text unchanged, escaped by their own
// rules.
func cleanCell(s string) string { return termtext.Clean(s) }

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// f32 formats a score or coordinate for tables and CSV.
func f32(v float32) string { return fmt.Sprintf("%.6g", v) }
