package projections

import "context"

// SetMinEventsBetweenAnalyses lowers how many events a runner applies
// before it refreshes SQLite's statistics, so a test log is big enough.
func SetMinEventsBetweenAnalyses(n int64) (restore func()) {
	old := minEventsBetweenAnalyses
	minEventsBetweenAnalyses = n
	return func() { minEventsBetweenAnalyses = old }
}

// QueueLen is how many keys the Activity's expiry queue holds.
func (a *Activity) QueueLen() int { return len(a.order) }

// NarrowSubstrings is what the trigram index matches for subs on SQLite,
// and what the rows are then checked against.
func (s *SearchReader) NarrowSubstrings(ctx context.Context, subs []SearchToken) (match []string, check []SearchToken, err error) {
	return s.narrowSubstrings(ctx, subs)
}

// TrigramsAcrossPunctuation and AcrossPunctuation are Postgres's trigram
// index expression and the reading of a substring that must agree with it.
const TrigramsAcrossPunctuation = trigramsAcrossPunctuation

var AcrossPunctuation = acrossPunctuation
