package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// out writes a command's records as a table, one JSON document or CSV.
//
// JSON is an array of records (or a single object for describe and health); CSV has
// a header row and one row per prediction, detection or tensor; a table is for people.
type out struct {
	format string
	w      io.Writer
	tw     *tabwriter.Writer
	header []string
	cw     *csv.Writer
	n      int   // JSON records written
	live   []int // streams: fixed column widths, each table row written at once
}

// newOut starts an output with the table's and the CSV's header rows.
func newOut(format string, w io.Writer, tableHeader, csvHeader []string) *out {
	o := &out{format: format, w: w}
	switch format {
	case "table":
		o.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		o.header = tableHeader
	case "csv":
		o.cw = csv.NewWriter(w)
		o.cw.Write(csvHeader)
	}
	return o
}

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
	if o.live != nil {
		for _, r := range table {
			o.liveRow(r)
		}
		return nil
	}
	if o.header != nil {
		fmt.Fprintln(o.tw, strings.Join(o.header, "\t"))
		o.header = nil
	}
	for _, r := range table {
		fmt.Fprintln(o.tw, strings.Join(r, "\t"))
	}
	return nil
}

// liveRow writes one row at once with fixed widths, the header first; a table that
// waited for its last row to align its columns would show nothing of a live stream.
func (o *out) liveRow(r []string) {
	if o.header != nil {
		h := o.header
		o.header = nil
		o.liveRow(h)
	}
	var b strings.Builder
	for i, cell := range r {
		if i < len(o.live) && i < len(r)-1 {
			fmt.Fprintf(&b, "%-*s  ", o.live[i], cell)
		} else {
			b.WriteString(cell + "  ")
		}
	}
	fmt.Fprintln(o.w, strings.TrimRight(b.String(), " "))
}

// close ends the document.
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
	if o.header != nil && o.live == nil {
		fmt.Fprintln(o.tw, strings.Join(o.header, "\t"))
	}
	return o.tw.Flush()
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// f32 formats a score or coordinate for tables and CSV.
func f32(v float32) string { return fmt.Sprintf("%.6g", v) }
