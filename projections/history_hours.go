package projections

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// The history view's hourly roll-ups (view_history_request_hours and
// view_history_run_hours, migration 00060) count requests by the hour they
// were received, their user and their status, and runs by the hour they
// were requested, their command, their status and their duration bucket.
// The view writes them as it writes its rows: a row touched by a batch is
// counted out under the key it had and counted in under the one it has.
// So the dashboard sums a few rows per hour, however many requests there
// are, and a rebuild writes the same counts as the incremental view.

// hourMicros is an hour in the view's unix microseconds.
const hourMicros = int64(time.Hour / time.Microsecond)

// hourOf is the start of the UTC hour of a time in unix microseconds.
func hourOf(micros int64) int64 { return micros - micros%hourMicros }

// DurationBuckets is the number of duration buckets (0 to 239).
const DurationBuckets = 240

// DurationBucket is the roll-up's bucket of a duration in milliseconds:
// below 16 ms the milliseconds themselves, then eight buckets per
// doubling, each 12.5% of its octave wide, up to about 46 days. Integer
// arithmetic only, so the migration's SQL computes the same buckets.
func DurationBucket(ms int64) int64 {
	if ms < 16 {
		return max(ms, 0)
	}
	e := int64(bits.Len64(uint64(ms))) - 1
	if e > 31 {
		return DurationBuckets - 1
	}
	return 16 + (e-4)*8 + (ms>>(e-3))&7
}

// DurationBucketRange is the range [lower, upper) of milliseconds in a
// bucket.
func DurationBucketRange(b int64) (lower, upper int64) {
	if b < 16 {
		return b, b + 1
	}
	e, m := 4+(b-16)/8, (b-16)%8
	return (8 + m) << (e - 3), (9 + m) << (e - 3)
}

type requestHour struct {
	Hour             int64
	Username, Status string
}

type runHour struct {
	Hour            int64
	Command, Status string
	Bucket          int64
}

// hourKeys are the roll-up keys of rows; a row without one (not received
// or requested yet) counts nowhere.
type hourKeys struct {
	requests map[string]*requestHour
	runs     map[string]*runHour
}

func newHourKeys() hourKeys {
	return hourKeys{requests: map[string]*requestHour{}, runs: map[string]*runHour{}}
}

func requestHourKey(r *RequestRow) *requestHour {
	if !r.ReceivedAt.Valid {
		return nil
	}
	return &requestHour{Hour: hourOf(r.ReceivedAt.Int64), Username: r.Username, Status: r.Status}
}

func runHourKey(r *RunRow) *runHour {
	if !r.RequestedAt.Valid {
		return nil
	}
	bucket := int64(-1)
	if r.DurationMS.Valid {
		bucket = DurationBucket(r.DurationMS.Int64)
	}
	return &runHour{Hour: hourOf(r.RequestedAt.Int64), Command: r.Command, Status: r.Status, Bucket: bucket}
}

// writeHours adds the batch's changes to the roll-ups: one additive upsert
// per table, then the counts that fell to zero are deleted, so the tables
// hold what a rebuild would write.
func (hb *historyBatch) writeHours(ctx context.Context, tx *Tx) error {
	requests := map[requestHour]int64{}
	for _, id := range hb.requestOrder {
		if old := hb.stored.requests[id]; old != nil {
			requests[*old]--
		}
		if now := requestHourKey(hb.requests[id]); now != nil {
			requests[*now]++
		}
	}
	runs := map[runHour]int64{}
	for _, id := range hb.runOrder {
		if old := hb.stored.runs[id]; old != nil {
			runs[*old]--
		}
		if now := runHourKey(hb.runs[id]); now != nil {
			runs[*now]++
		}
	}
	var requestRows, runRows [][]any
	requestHours, runHours := map[int64]bool{}, map[int64]bool{}
	for k, n := range requests {
		if n != 0 {
			requestRows = append(requestRows, []any{k.Hour, k.Username, k.Status, n})
		}
		if n < 0 {
			requestHours[k.Hour] = true
		}
	}
	for k, n := range runs {
		if n != 0 {
			runRows = append(runRows, []any{k.Hour, k.Command, k.Status, k.Bucket, n})
		}
		if n < 0 {
			runHours[k.Hour] = true
		}
	}
	if err := tx.addCounts(ctx, "view_history_request_hours", []string{"hour", "username", "status", "requests"}, requestRows, requestHours); err != nil {
		return err
	}
	return tx.addCounts(ctx, "view_history_run_hours", []string{"hour", "command", "status", "duration_bucket", "runs"}, runRows, runHours)
}

// addCounts adds each row's last column to the stored count of its key
// (the other columns), and deletes the zero counts of the given hours.
// Rows are sorted, so the statements and their effect do not depend on
// map order.
func (t *Tx) addCounts(ctx context.Context, table string, cols []string, rows [][]any, emptied map[int64]bool) error {
	slices.SortFunc(rows, func(a, b []any) int { return strings.Compare(fmt.Sprint(a...), fmt.Sprint(b...)) })
	count := cols[len(cols)-1]
	suffix := " ON CONFLICT (" + strings.Join(cols[:len(cols)-1], ", ") + ") DO UPDATE SET " + count + " = " + table + "." + count + " + excluded." + count
	if err := t.insertRows(ctx, table, cols, rows, suffix); err != nil {
		return err
	}
	hours := make([]int64, 0, len(emptied))
	for h := range emptied {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	return inChunks(t.db, hours, func(args []any, in string) error {
		return t.Exec(ctx, "DELETE FROM "+table+" WHERE hour IN ("+in+") AND "+count+" = 0", args...)
	})
}

// HourCount is one roll-up row as the dashboard reads it.
type HourCount struct {
	Hour  time.Time
	Key   string // the username, status or command the count is of
	Count int64
}

// RequestsByHour sums the requests received in [from, to) by hour and
// status; username, when not empty, keeps only that user's.
func (h *HistoryReader) RequestsByHour(ctx context.Context, from, to time.Time, username string) ([]HourCount, error) {
	q := "SELECT hour, status, sum(requests) FROM view_history_request_hours WHERE hour >= $1 AND hour < $2"
	args := []any{from.UnixMicro(), to.UnixMicro()}
	if username != "" {
		q += " AND username = $3"
		args = append(args, username)
	}
	return h.hourCounts(ctx, q+" GROUP BY hour, status ORDER BY hour, status", args...)
}

// RequestsByUser sums the requests received in [from, to) by user, most
// first, at most limit (requests of no known user are left out).
func (h *HistoryReader) RequestsByUser(ctx context.Context, from, to time.Time, limit int) ([]HourCount, error) {
	return h.hourCounts(ctx, "SELECT 0, username, sum(requests) AS n FROM view_history_request_hours WHERE hour >= $1 AND hour < $2 AND username <> ''"+
		" GROUP BY username ORDER BY n DESC, username LIMIT $3", from.UnixMicro(), to.UnixMicro(), limit)
}

// RunsByCommand sums the runs requested in [from, to) by command, most
// first, at most limit.
func (h *HistoryReader) RunsByCommand(ctx context.Context, from, to time.Time, limit int) ([]HourCount, error) {
	return h.hourCounts(ctx, "SELECT 0, command, sum(runs) AS n FROM view_history_run_hours WHERE hour >= $1 AND hour < $2"+
		" GROUP BY command ORDER BY n DESC, command LIMIT $3", from.UnixMicro(), to.UnixMicro(), limit)
}

func (h *HistoryReader) hourCounts(ctx context.Context, query string, args ...any) ([]HourCount, error) {
	rows, err := h.db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HourCount
	for rows.Next() {
		var (
			c    HourCount
			hour int64
		)
		if err := rows.Scan(&hour, &c.Key, &c.Count); err != nil {
			return nil, err
		}
		if hour != 0 {
			c.Hour = time.UnixMicro(hour).UTC()
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CommandDurations is the spread of one command's run durations.
type CommandDurations struct {
	Command string
	Runs    int64 // runs with a duration
	// P50 and P95 are read from the buckets: the middle of the bucket
	// holding that rank, so within about 6% of the exact value.
	P50, P95 time.Duration
}

// DurationsByCommand reads the duration percentiles of the runs requested
// in [from, to) that have ended, for the commands given (all when none).
func (h *HistoryReader) DurationsByCommand(ctx context.Context, from, to time.Time, commands []string) ([]CommandDurations, error) {
	q := "SELECT command, duration_bucket, sum(runs) FROM view_history_run_hours WHERE hour >= $1 AND hour < $2 AND duration_bucket >= 0"
	args := []any{from.UnixMicro(), to.UnixMicro()}
	if len(commands) > 0 && len(commands) <= 100 {
		marks := make([]string, len(commands))
		for i, c := range commands {
			args = append(args, c)
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		q += " AND command IN (" + strings.Join(marks, ", ") + ")"
	}
	rows, err := h.db.query(ctx, q+" GROUP BY command, duration_bucket ORDER BY command, duration_bucket", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type bucket struct{ b, n int64 }
	spread := map[string][]bucket{}
	for rows.Next() {
		var (
			command string
			b       bucket
		)
		if err := rows.Scan(&command, &b.b, &b.n); err != nil {
			return nil, err
		}
		if len(commands) == 0 || slices.Contains(commands, command) {
			spread[command] = append(spread[command], b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]CommandDurations, 0, len(spread))
	for command, buckets := range spread {
		d := CommandDurations{Command: command}
		for _, b := range buckets {
			d.Runs += b.n
		}
		rank := func(q float64) time.Duration {
			want := int64(q*float64(d.Runs-1)) + 1 // the nearest rank, 1-based
			seen := int64(0)
			for _, b := range buckets {
				if seen += b.n; seen >= want {
					return bucketMiddle(b.b)
				}
			}
			return 0
		}
		d.P50, d.P95 = rank(0.50), rank(0.95)
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b CommandDurations) int { return strings.Compare(a.Command, b.Command) })
	return out, nil
}

// bucketMiddle is a duration bucket's middle (its one millisecond below
// 16 ms, where buckets are exact).
func bucketMiddle(b int64) time.Duration {
	lower, upper := DurationBucketRange(b)
	if b < 16 {
		return time.Duration(lower) * time.Millisecond
	}
	return time.Duration((lower+upper)/2) * time.Millisecond
}

// CountActive counts the requests in each status of statuses (the view's
// status index takes each), with username keeping one user's.
func (h *HistoryReader) CountActive(ctx context.Context, statuses []string, username string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, status := range statuses {
		q, args := "SELECT count(*) FROM view_history_requests WHERE status = $1", []any{status}
		if username != "" {
			q, args = q+" AND username = $2", append(args, username)
		}
		var n int64
		if err := h.db.Read.QueryRowContext(ctx, h.db.rebind(q), args...).Scan(&n); err != nil {
			return nil, err
		}
		out[status] = n
	}
	return out, nil
}
