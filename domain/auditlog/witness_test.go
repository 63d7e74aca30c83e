package auditlog_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
)

// witnessScenario is a given-when-then test of the witness's rule: given
// the checkpoint it last cosigned, when a request arrives, then it
// cosigns (and keeps the new state) or refuses with a status.
type witnessScenario struct {
	t     *testing.T
	keys  keys
	log   *testLog
	wlog  auditlog.WitnessedLog
	known *auditlog.WitnessState
}

func givenWitness(t *testing.T, events int) *witnessScenario {
	k := newKeys(t, "logbook.test/witnessed", 0)
	v, err := note.NewVerifier(k.logVKey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{}
	for i := range events {
		l.add(t, "request-w", "Step", map[string]int{"i": i})
	}
	return &witnessScenario{t: t, keys: k, log: l, wlog: auditlog.WitnessedLog{Origin: v.Name(), Verifier: v}}
}

// cosigned says the witness holds the checkpoint of size.
func (s *witnessScenario) cosigned(size int64) *witnessScenario {
	s.known = &auditlog.WitnessState{Size: size, Root: s.log.root(s.t, size)}
	return s
}

func (s *witnessScenario) request(old, size int64) auditlog.AddCheckpoint {
	var proof tlog.TreeProof
	if old > 0 && old < size {
		var err error
		if proof, err = tlog.ProveTree(size, old, s.log); err != nil {
			s.t.Fatal(err)
		}
	}
	return auditlog.AddCheckpoint{OldSize: old, Proof: proof, Checkpoint: s.keys.checkpoint(s.t, s.log, size, 0)}
}

func (s *witnessScenario) thenCosigns(r auditlog.AddCheckpoint) {
	s.t.Helper()
	c, next, refusal := auditlog.DecideCosign(&s.wlog, s.known, r)
	if refusal != nil {
		s.t.Fatalf("refused: %v", refusal)
	}
	if next.Size != c.Size || next.Root != c.Root || c.Root != s.log.root(s.t, c.Size) {
		s.t.Fatalf("cosigned %+v, keeps %+v", c, next)
	}
}

func (s *witnessScenario) thenRefuses(r auditlog.AddCheckpoint, status int, reason string) *auditlog.WitnessRefusal {
	s.t.Helper()
	_, _, refusal := auditlog.DecideCosign(&s.wlog, s.known, r)
	if refusal == nil || refusal.Status != status || !strings.Contains(refusal.Reason, reason) {
		s.t.Fatalf("got %v, want %d %s saying %q", refusal, status, http.StatusText(status), reason)
	}
	return refusal
}

func TestWitnessCosignsTheFirstCheckpointOfALog(t *testing.T) {
	s := givenWitness(t, 10)
	s.thenCosigns(s.request(0, 10))
}

func TestWitnessCosignsACheckpointProvenConsistentWithTheLastOne(t *testing.T) {
	s := givenWitness(t, 37).cosigned(12)
	s.thenCosigns(s.request(12, 37))
	s.thenCosigns(s.request(12, 12)) // the same checkpoint again
}

func TestWitnessRefusesAForkedCheckpoint(t *testing.T) {
	s := givenWitness(t, 20).cosigned(12)
	// The log is rewritten from position 8 on, hashes recomputed.
	forked := &testLog{}
	for i := range 20 {
		note := map[string]int{"i": i}
		if i >= 7 {
			note["forged"] = 1
		}
		forked.add(t, "request-w", "Step", note)
	}
	proof, err := tlog.ProveTree(20, 12, forked)
	if err != nil {
		t.Fatal(err)
	}
	r := auditlog.AddCheckpoint{OldSize: 12, Proof: proof, Checkpoint: s.keys.checkpoint(t, forked, 20, 0)}
	s.thenRefuses(r, http.StatusUnprocessableEntity, "does not show the checkpoint of size 20 extends the one of size 12")
	// The forked tree's checkpoint of the very size the witness holds.
	same := auditlog.AddCheckpoint{OldSize: 12, Checkpoint: s.keys.checkpoint(t, forked, 12, 0)}
	if ref := s.thenRefuses(same, http.StatusConflict, "the log forked"); ref.KnownSize != 12 {
		t.Fatalf("known size %d, want 12", ref.KnownSize)
	}
}

func TestWitnessRefusesAStaleOldSizeNamingTheSizeItHolds(t *testing.T) {
	s := givenWitness(t, 30).cosigned(20)
	if ref := s.thenRefuses(s.request(10, 30), http.StatusConflict, "last cosigned"); ref.KnownSize != 20 {
		t.Fatalf("known size %d, want 20", ref.KnownSize)
	}
	// A rollback: the log offers an older checkpoint than the one held.
	s.thenRefuses(s.request(20, 15), http.StatusBadRequest, "larger than the checkpoint's size")
	s.thenRefuses(s.request(15, 15), http.StatusConflict, "last cosigned")
}

func TestWitnessRefusesProofsOfTheWrongSize(t *testing.T) {
	s := givenWitness(t, 40).cosigned(13)
	good := s.request(13, 40)
	short := good
	short.Proof = good.Proof[:len(good.Proof)-1]
	s.thenRefuses(short, http.StatusUnprocessableEntity, "consistency proof")
	long := good
	long.Proof = append(append(tlog.TreeProof{}, good.Proof...), good.Proof[0])
	s.thenRefuses(long, http.StatusUnprocessableEntity, "consistency proof")
	fromOther, err := tlog.ProveTree(40, 12, s.log) // a proof from another old size
	if err != nil {
		t.Fatal(err)
	}
	wrong := good
	wrong.Proof = fromOther
	s.thenRefuses(wrong, http.StatusUnprocessableEntity, "consistency proof")
	same := s.request(13, 13)
	same.Proof = good.Proof[:1]
	s.thenRefuses(same, http.StatusUnprocessableEntity, "must be empty")
}

func TestWitnessRefusesAnUnknownLogAndAWrongKey(t *testing.T) {
	s := givenWitness(t, 5)
	if _, _, refusal := auditlog.DecideCosign(nil, nil, s.request(0, 5)); refusal == nil || refusal.Status != http.StatusNotFound {
		t.Fatalf("an unknown origin: %v, want 404", refusal)
	}
	impostor := newKeys(t, "logbook.test/witnessed", 0) // same origin, another key
	r := auditlog.AddCheckpoint{OldSize: 0, Checkpoint: impostor.checkpoint(t, s.log, 5, 0)}
	s.thenRefuses(r, http.StatusForbidden, "no signature on the checkpoint is by the log key")
}

func TestAddCheckpointRequestsRoundTrip(t *testing.T) {
	s := givenWitness(t, 50)
	r := s.request(17, 50)
	back, err := auditlog.ParseAddCheckpoint(auditlog.FormatAddCheckpoint(r))
	if err != nil {
		t.Fatal(err)
	}
	if back.OldSize != 17 || len(back.Proof) != len(r.Proof) || string(back.Checkpoint) != string(r.Checkpoint) {
		t.Fatalf("parsed back %+v", back)
	}
	for _, bad := range []struct{ body, says string }{
		{"old x\n\ncp", "line 1"},
		{"old 01\n\ncp", "line 1"},
		{"old 3\nnot base64\n\ncp", "line 2"},
		{"old 3\n", "line 2"},
		{"old 3\n\n", "no checkpoint"},
	} {
		if _, err := auditlog.ParseAddCheckpoint([]byte(bad.body)); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%q: %v, want an error saying %q", bad.body, err, bad.says)
		}
	}
}

func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\nlogbook.test/x\n1\nAAAA\n\n— x abc\n"))
	f.Add([]byte("old 12\nKq2gJv1T6mZ6cvXzE7wm5mYJmV0mZl1aQm7G8xMdTzA=\n\ncp"))
	f.Add([]byte("old"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := auditlog.ParseAddCheckpoint(body)
		if err != nil {
			return
		}
		again, err := auditlog.ParseAddCheckpoint(auditlog.FormatAddCheckpoint(r))
		if err != nil || again.OldSize != r.OldSize || len(again.Proof) != len(r.Proof) || string(again.Checkpoint) != string(r.Checkpoint) {
			t.Fatalf("a parsed request does not round-trip: %+v then %+v, %v", r, again, err)
		}
	})
}

func FuzzParseCheckpointBody(f *testing.F) {
	f.Add([]byte("logbook.test/x\n12\nKq2gJv1T6mZ6cvXzE7wm5mYJmV0mZl1aQm7G8xMdTzA=\n"))
	f.Add([]byte("o\n1\nAAAA\next\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := auditlog.ParseCheckpointBody(text)
		if err != nil {
			return
		}
		again, err := auditlog.ParseCheckpointBody(c.Body())
		if err != nil || again != c {
			t.Fatalf("%q parsed as %+v, which does not round-trip: %+v, %v", text, c, again, err)
		}
	})
}
