package auditlog_test

import (
	"testing"

	"github.com/logbookhq/logbook/domain/auditlog"
)

// BenchmarkVerifyBundle times the offline check of a request's bundle:
// 13 events with their proofs, a checkpoint with one cosignature.
func BenchmarkVerifyBundle(b *testing.B) {
	l, mine := requestLog(b)
	for range 100000 - len(l.events) {
		l.add(b, "request-later", "Step", map[string]int{})
	}
	k := newKeys(b, "logbook.test/bench", 1)
	size := int64(len(l.events))
	raw := bundleOf(b, l, mine, k.checkpoint(b, l, size, 1), size)
	policy := k.policy(b, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := auditlog.VerifyBundle(raw, policy); err != nil {
			b.Fatal(err)
		}
	}
}
