package projections

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TableFingerprint is what a view's table holds, in a form two states of
// it can be compared by: its row count and a digest of its rows in order.
type TableFingerprint struct {
	View   string `json:"view"`
	Table  string `json:"table"`
	Rows   int64  `json:"rows"`
	Digest string `json:"digest"` // SHA-256 of the rows, ordered by every column
}

// Fingerprints reads every table of the named views (every view when names
// is empty) and digests it, so that a view can be compared with itself
// rebuilt: the views are functions of the log, so the same log must give
// the same rows. The read streams the rows, so it holds none of them.
func (r *Runner) Fingerprints(ctx context.Context, names []string) ([]TableFingerprint, error) {
	var out []TableFingerprint
	for _, v := range r.views {
		if len(names) > 0 && !slices.Contains(names, v.p.Name()) {
			continue
		}
		for _, table := range v.p.Tables() {
			f, err := fingerprintTable(ctx, r.db.Read, table)
			if err != nil {
				return nil, fmt.Errorf("fingerprint of %s (view %s): %w", table, v.p.Name(), err)
			}
			f.View = v.p.Name()
			out = append(out, f)
		}
	}
	return out, nil
}

// fingerprintTable digests one table's rows ordered by all its columns.
// Each value is written with its length first, so that no two different
// rows write the same bytes.
func fingerprintTable(ctx context.Context, db *sql.DB, table string) (TableFingerprint, error) {
	f := TableFingerprint{Table: table}
	probe, err := db.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return f, err
	}
	columns, err := probe.Columns()
	probe.Close()
	if err != nil {
		return f, err
	}
	order := make([]string, len(columns))
	for i := range columns {
		order[i] = strconv.Itoa(i + 1)
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table+" ORDER BY "+strings.Join(order, ", "))
	if err != nil {
		return f, err
	}
	defer rows.Close()
	h := sha256.New()
	values := make([]any, len(columns))
	dest := make([]any, len(columns))
	for i := range values {
		dest[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return f, err
		}
		for _, v := range values {
			s := canonical(v)
			fmt.Fprintf(h, "%d:%s", len(s), s)
		}
		h.Write([]byte{'\n'})
		f.Rows++
	}
	if err := rows.Err(); err != nil {
		return f, err
	}
	f.Digest = hex.EncodeToString(h.Sum(nil))
	return f, nil
}

// canonical writes a column's value the same way whichever driver type
// carried it.
func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "x" + hex.EncodeToString(x)
	case string:
		return "x" + hex.EncodeToString([]byte(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}
