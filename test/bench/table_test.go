//go:build bench

package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// table is the side-by-side result: one row per figure, both systems and the ratio.
type table struct {
	notes []string
	rows  [][3]any
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

func (t *table) row(label string, ours, upstream float64) {
	t.rows = append(t.rows, [3]any{label, ours, upstream})
}

func (t *table) print(w io.Writer) {
	fmt.Fprintln(w, "secretmount vs upstream Secrets Store CSI Driver")
	for _, n := range t.notes {
		fmt.Fprintln(w, "  "+n)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tours\tupstream\tours/upstream\t")
	for _, r := range t.rows {
		o, u := r[1].(float64), r[2].(float64)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r[0], num(o), num(u), ratio(o, u))
	}
	_ = tw.Flush()
}

func num(v float64) string {
	switch {
	case v < 0:
		return "n/a"
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(o, u float64) string {
	if o < 0 || u <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", o/u)
}
