package auditlog_test

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/dispatch"
)

// requestLog is a log holding, among others' events, request r1 with two
// runs; it returns the log and r1's events.
func requestLog(t testing.TB) (*testLog, []domain.RecordedEvent) {
	l := &testLog{}
	var mine []domain.RecordedEvent
	keep := func(e domain.RecordedEvent) { mine = append(mine, e) }
	l.add(t, "request-other", "RequestReceived", map[string]string{"text": "!echo other"})
	keep(l.add(t, "request-r1", "RequestReceived", map[string]string{"text": "!echo hi | wc"}))
	keep(l.add(t, "request-r1", "IdentityResolved", map[string]string{"user": "alice"}))
	keep(l.add(t, "request-r1", "PipelineParsed", map[string]any{"stages": 2}))
	keep(l.add(t, "request-r1", "PermissionChecked", map[string]any{"rule": "allow", "allowed": true}))
	keep(l.add(t, "request-r1", "StageStarted", dispatch.StageStarted{Stage: 0, RunID: "run1"}))
	keep(l.add(t, "run-run1", "RunRequested", map[string]any{"image": "sha256:abc", "argv": []string{"echo", "hi"}}))
	l.add(t, "request-other", "RequestDenied", map[string]string{"reason": "no"})
	keep(l.add(t, "run-run1", "OutputChunk", map[string]any{"data": "hi\n", "seq": 0}))
	keep(l.add(t, "run-run1", "RunSucceeded", map[string]any{"exit": 0}))
	keep(l.add(t, "request-r1", "StageStarted", dispatch.StageStarted{Stage: 1, RunID: "run2"}))
	keep(l.add(t, "run-run2", "RunRequested", map[string]any{"argv": []string{"wc"}}))
	keep(l.add(t, "run-run2", "RunSucceeded", map[string]any{"exit": 0}))
	keep(l.add(t, "request-r1", "ReplyPosted", map[string]string{"text": "1 1 3"}))
	for range 20 {
		l.add(t, "request-later", "Step", map[string]int{})
	}
	return l, mine
}

func bundleOf(t testing.TB, l *testLog, events []domain.RecordedEvent, checkpoint []byte, size int64) []byte {
	t.Helper()
	b := auditlog.Bundle{Format: auditlog.BundleFormat, RequestID: "r1", Checkpoint: string(checkpoint)}
	for _, e := range events {
		proof, err := tlog.ProveRecord(size, e.Position-1, l)
		if err != nil {
			t.Fatal(err)
		}
		b.Events = append(b.Events, auditlog.NewBundleEvent(e, proof))
	}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestABundleVerifiesWithOnlyTheKeys(t *testing.T) {
	l, mine := requestLog(t)
	k := newKeys(t, "logbook.test/bundles", 3)
	size := int64(len(l.events))
	raw := bundleOf(t, l, mine, k.checkpoint(t, l, size, 2), size)
	report, err := auditlog.VerifyBundle(raw, k.policy(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if report.Events != len(mine) || len(report.Streams) != 3 || len(report.Cosigners) != 2 || report.Checkpoint.Size != size {
		t.Fatalf("report %+v", report)
	}
	if _, err := auditlog.VerifyBundle(raw, k.policy(t, 3)); err == nil || !strings.Contains(err.Error(), "2 of the 3 witnesses") {
		t.Fatalf("a policy of 3 of 3 witnesses: %v, want it refused naming 2 of 3", err)
	}
}

func TestABundleFailsWithAWrongKey(t *testing.T) {
	l, mine := requestLog(t)
	k := newKeys(t, "logbook.test/bundles", 1)
	size := int64(len(l.events))
	raw := bundleOf(t, l, mine, k.checkpoint(t, l, size, 1), size)
	other := newKeys(t, "logbook.test/bundles", 1)
	if _, err := auditlog.VerifyBundle(raw, other.policy(t, 0)); err == nil || !strings.Contains(err.Error(), "log key") {
		t.Fatalf("another log key: %v, want a refusal naming the log key", err)
	}
	wrongWitness := k
	wrongWitness.wVKeys = other.wVKeys
	if _, err := auditlog.VerifyBundle(raw, wrongWitness.policy(t, 1)); err == nil || !strings.Contains(err.Error(), "0 of the 1 witnesses") {
		t.Fatalf("another witness key: %v, want the policy unmet", err)
	}
}

func TestChangingAnyByteOfABundleFailsVerification(t *testing.T) {
	l, mine := requestLog(t)
	k := newKeys(t, "logbook.test/bundles", 1)
	size := int64(len(l.events))
	// The request's first four events (no run yet) keep the file, and the
	// test, small: every kind of field is in it.
	raw := bundleOf(t, l, mine[:4], k.checkpoint(t, l, size, 1), size)
	policy := k.policy(t, 1)
	for i := range raw {
		// A letter changes case (what lenient hex, UUID and base64
		// decoders forgive); anything else changes its lowest bit.
		flip := byte(0x01)
		if c := raw[i] | 0x20; c >= 'a' && c <= 'z' {
			flip = 0x20
		}
		changed := bytes.Clone(raw)
		changed[i] ^= flip
		if _, err := auditlog.VerifyBundle(changed, policy); err == nil {
			t.Fatalf("byte %d (%q) xor %#x still verifies", i, raw[i], flip)
		}
	}
	if _, err := auditlog.VerifyBundle(append(bytes.Clone(raw), ' '), policy); err == nil {
		t.Fatal("a trailing space still verifies")
	}
}

func TestAChangedBundleSaysWhatChanged(t *testing.T) {
	l, mine := requestLog(t)
	k := newKeys(t, "logbook.test/bundles", 1)
	size := int64(len(l.events))
	raw := string(bundleOf(t, l, mine, k.checkpoint(t, l, size, 1), size))
	policy := k.policy(t, 1)
	cases := []struct {
		name, from, to, says string
	}{
		{"an output chunk's data", `hi\\n`, `ho\\n`, "event 7 (position 9, run-run1 version 1, OutputChunk): its bytes do not hash"},
		{"the argv", `\"echo\",`, `\"rm\",`, "event 6 (position 7, run-run1 version 0, RunRequested): its bytes do not hash"},
		{"the decisive rule", `\"rule\":\"allow\"`, `\"rule\":\"deny!\"`, "PermissionChecked): its bytes do not hash"},
		{"a position", `"position": 9,`, `"position": 10,`, "event 7 (position 10"},
		{"the checkpoint's root", "\\n" + strings.Split(strings.Split(raw, `\n`)[2], `\n`)[0], "\\nAAAA", "checkpoint:"},
		{"the request id", `"request_id": "r1"`, `"request_id": "r9"`, "neither request r9's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(raw, c.from) {
				t.Fatalf("the bundle has no %q", c.from)
			}
			changed := strings.Replace(raw, c.from, c.to, 1)
			_, err := auditlog.VerifyBundle([]byte(changed), policy)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want an error saying %q", err, c.says)
			}
		})
	}
	// Leaving an event out of a stream is named too.
	var without []domain.RecordedEvent
	for _, e := range mine {
		if e.Type != "OutputChunk" {
			without = append(without, e)
		}
	}
	_, err := auditlog.VerifyBundle(bundleOf(t, l, without, k.checkpoint(t, l, size, 1), size), policy)
	if err == nil || !strings.Contains(err.Error(), "an event of the stream is missing") {
		t.Fatalf("a bundle without the output chunk: %v", err)
	}
}

func TestTheFrontierGivesTheTreeHeadAtEverySize(t *testing.T) {
	l := &testLog{}
	f := auditlog.NewFrontier()
	for i := range 300 {
		e := l.add(t, "s-1", "Step", map[string]int{"i": i})
		if _, err := f.Append(auditlog.LeafData(e)); err != nil {
			t.Fatal(err)
		}
		got, err := f.Root()
		if err != nil || got != l.root(t, int64(i+1)) {
			t.Fatalf("size %d: frontier root %v, %v; tree %v", i+1, got, err, l.root(t, int64(i+1)))
		}
		if i%37 == 0 {
			loaded, err := auditlog.LoadFrontier(int64(i+1), l)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := loaded.Root(); r != got {
				t.Fatalf("size %d: a loaded frontier's root %v, want %v", i+1, r, got)
			}
			f = loaded // go on from the loaded one
		}
	}
}

// Proof checking: no input makes it accept a leaf at the wrong place, or
// panic; the seed corpus holds real proofs.
func FuzzCheckInclusion(f *testing.F) {
	l, mine := requestLog(f)
	size := int64(len(l.events))
	root := l.root(f, size)
	for _, e := range mine[:4] {
		proof, err := tlog.ProveRecord(size, e.Position-1, l)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Position, size, joinProof(proof))
	}
	f.Fuzz(func(t *testing.T, position, treeSize int64, rawProof []byte) {
		if len(rawProof)%tlog.HashSize != 0 || len(rawProof) > 64*tlog.HashSize {
			return
		}
		var proof tlog.RecordProof
		for i := 0; i < len(rawProof); i += tlog.HashSize {
			proof = append(proof, tlog.Hash(rawProof[i:i+tlog.HashSize]))
		}
		e := mine[0]
		e.Position = position
		err := auditlog.CheckInclusion(proof, auditlog.Checkpoint{Size: treeSize, Root: root}, e)
		if err == nil && (position != mine[0].Position || treeSize != size) {
			t.Fatalf("event at %d proven at position %d of a tree of %d", mine[0].Position, position, treeSize)
		}
	})
}

func joinProof(p tlog.RecordProof) []byte {
	var out []byte
	for _, h := range p {
		out = append(out, h[:]...)
	}
	return out
}

// Bundle parsing and checking: no input panics, and a valid bundle changed
// anywhere never verifies.
func FuzzVerifyBundle(f *testing.F) {
	l, mine := requestLog(f)
	k := newKeys(f, "logbook.test/fuzz", 1)
	size := int64(len(l.events))
	raw := bundleOf(f, l, mine, k.checkpoint(f, l, size, 1), size)
	policy := k.policy(f, 1)
	f.Add(raw)
	f.Add([]byte(`{"format":"logbook-evidence/v1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, input []byte) {
		_, err := auditlog.VerifyBundle(input, policy)
		if err == nil && !bytes.Equal(input, raw) {
			t.Fatalf("a bundle other than the one signed verifies:\n%s", input)
		}
	})
}
