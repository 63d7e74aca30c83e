package auditlog_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// testLog is a hash-chained log held in memory with its tree.
type testLog struct {
	events   []domain.RecordedEvent
	hashes   []tlog.Hash // every stored hash, by index
	frontier *auditlog.Frontier
	versions map[string]int64 // the next version per stream
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, ix := range indexes {
		out[i] = l.hashes[ix]
	}
	return out, nil
}

// add appends an event of stream with data, chained.
func (l *testLog) add(t testing.TB, stream, typ string, data any) domain.RecordedEvent {
	t.Helper()
	if l.frontier == nil {
		l.frontier = auditlog.NewFrontier()
	}
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.versions == nil {
		l.versions = map[string]int64{}
	}
	version := l.versions[stream]
	l.versions[stream] = version + 1
	prev := eventstore.GenesisHash
	if len(l.events) > 0 {
		prev = l.events[len(l.events)-1].Hash
	}
	e := domain.RecordedEvent{
		ID: uuid.Must(uuid.NewV7()), Stream: stream, Version: version, Position: int64(len(l.events) + 1), Type: typ,
		Data: raw, RawMetadata: []byte(`{"actor":"tester"}`), RecordedAt: time.Date(2026, 12, 6, 7, 0, len(l.events), 0, time.UTC), PrevHash: prev,
	}
	e.Hash = eventstore.ChainHash(prev, e)
	l.events = append(l.events, e)
	hashes, err := l.frontier.Append(auditlog.LeafData(e))
	if err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, hashes...)
	return e
}

func (l *testLog) root(t testing.TB, size int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(size, l)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// keys are a log's signing key and witnesses' keys for tests.
type keys struct {
	log       note.Signer
	logVKey   string
	witnesses []note.Signer
	wVKeys    []string
}

func newKeys(t testing.TB, origin string, witnesses int) keys {
	t.Helper()
	var k keys
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	if k.log, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	k.logVKey = vkey
	for i := range witnesses {
		skey, vkey, err := note.GenerateKey(rand.Reader, fmt.Sprintf("witness-%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		s, err := fnote.NewSignerForCosignatureV1(skey)
		if err != nil {
			t.Fatal(err)
		}
		cv, err := fnote.VKeyToCosignatureV1(vkey)
		if err != nil {
			t.Fatal(err)
		}
		k.witnesses = append(k.witnesses, s)
		k.wVKeys = append(k.wVKeys, cv)
	}
	return k
}

// checkpoint signs the log's tree at size and has the first cosigners
// witnesses cosign it.
func (k keys) checkpoint(t testing.TB, l *testLog, size int64, cosigners int) []byte {
	t.Helper()
	signed, err := auditlog.SignCheckpoint(k.log, size, l.root(t, size))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range k.witnesses[:cosigners] {
		text := signed[:bytes.LastIndex(signed, []byte("\n\n"))+1]
		cosigned, err := note.Sign(&note.Note{Text: string(text)}, w)
		if err != nil {
			t.Fatal(err)
		}
		signed = append(signed, joinLines(auditlog.SignatureLines(cosigned))...)
	}
	return signed
}

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += l
	}
	return out
}

func (k keys) policy(t testing.TB, required int) auditlog.Policy {
	t.Helper()
	p, err := auditlog.NewPolicy(k.logVKey, k.wVKeys, required)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
