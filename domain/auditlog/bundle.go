package auditlog

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/domain/run"
)

// BundleFormat names the evidence bundle format this build writes.
const BundleFormat = "logbook-evidence/v1"

// Bundle is the evidence for one request: every event of the request and
// of its runs, as stored, each with its inclusion proof against one signed
// and cosigned checkpoint. It is self-contained: VerifyBundle needs only
// it and the verifier keys.
type Bundle struct {
	Format    string `json:"format"`
	RequestID string `json:"request_id"`
	// Checkpoint is the signed note, with the witnesses' cosignatures.
	Checkpoint string        `json:"checkpoint"`
	Events     []BundleEvent `json:"events"`
}

// BundleEvent is one event's stored bytes and its inclusion proof.
type BundleEvent struct {
	Position     int64    `json:"position"`
	Stream       string   `json:"stream"`
	Version      int64    `json:"version"`
	ID           string   `json:"id"`
	Type         string   `json:"type"`
	Data         string   `json:"data"`     // the stored JSON, byte for byte
	Metadata     string   `json:"metadata"` // the stored JSON, byte for byte
	RecordedAtUS int64    `json:"recorded_at_us"`
	PrevHash     string   `json:"prev_hash"` // hex
	Hash         string   `json:"hash"`      // hex
	Proof        []string `json:"inclusion_proof"`
}

// NewBundleEvent carries a stored event and its proof into a bundle.
func NewBundleEvent(e domain.RecordedEvent, proof tlog.RecordProof) BundleEvent {
	out := BundleEvent{
		Position: e.Position, Stream: e.Stream, Version: e.Version, ID: e.ID.String(), Type: e.Type,
		Data: string(e.Data), Metadata: string(e.RawMetadata), RecordedAtUS: e.RecordedAt.UnixMicro(),
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash), Proof: make([]string, len(proof)),
	}
	for i, h := range proof {
		out.Proof[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// Marshal writes the bundle in its one canonical encoding; VerifyBundle
// refuses any other, so every byte of a bundle counts.
func (b Bundle) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// BundleReport is what a verified bundle shows.
type BundleReport struct {
	RequestID  string     `json:"request_id"`
	Checkpoint Checkpoint `json:"checkpoint"`
	Cosigners  []string   `json:"cosigners"`
	Events     int        `json:"events"`
	Streams    []string   `json:"streams"`
}

// VerifyBundle checks a bundle with nothing but the policy's keys: the
// checkpoint's signature and cosignatures; that every event's bytes hash
// to its hash and its leaf is in the checkpoint's tree at its position;
// that the events are the request's and its runs', each stream whole from
// its first event; and that the file is the canonical encoding of what
// was checked. The error names what was changed.
func VerifyBundle(raw []byte, p Policy) (BundleReport, error) {
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return BundleReport{}, fmt.Errorf("the bundle is not an evidence bundle's JSON: %v", err)
	}
	if b.Format != BundleFormat {
		return BundleReport{}, fmt.Errorf("format: %q is not %q", b.Format, BundleFormat)
	}
	o, err := OpenCheckpoint([]byte(b.Checkpoint), p)
	if err != nil {
		return BundleReport{}, fmt.Errorf("checkpoint: %w", err)
	}
	if len(b.Events) == 0 {
		return BundleReport{}, fmt.Errorf("events: the bundle holds no event")
	}
	report := BundleReport{RequestID: b.RequestID, Checkpoint: o.Checkpoint, Cosigners: o.Cosigners, Events: len(b.Events)}
	next := map[string]int64{} // stream -> the version expected next
	var runs []string
	lastPosition := int64(0)
	for i, be := range b.Events {
		e, err := be.recorded()
		where := fmt.Sprintf("event %d (position %d, %s version %d, %s)", i+1, be.Position, be.Stream, be.Version, be.Type)
		if err != nil {
			return report, fmt.Errorf("%s: %v", where, err)
		}
		if !bytes.Equal(eventstore.ChainHash(e.PrevHash, e), e.Hash) {
			return report, fmt.Errorf("%s: its bytes do not hash to its hash %s: its stream, version, id, type, data, metadata, time or prev_hash was changed, or its hash was", where, be.Hash)
		}
		if e.Position <= lastPosition {
			return report, fmt.Errorf("%s: positions are not increasing (the previous event is at %d): events were reordered or repeated", where, lastPosition)
		}
		lastPosition = e.Position
		if e.Position > o.Size {
			return report, fmt.Errorf("%s: the position is beyond the checkpoint's tree of %d events", where, o.Size)
		}
		proof := make(tlog.RecordProof, len(be.Proof))
		for j, s := range be.Proof {
			h, err := base64.StdEncoding.Strict().DecodeString(s)
			if err != nil || len(h) != tlog.HashSize {
				return report, fmt.Errorf("%s: inclusion proof hash %d is not a base64 SHA-256 hash", where, j+1)
			}
			proof[j] = tlog.Hash(h)
		}
		if err := CheckInclusion(proof, o.Checkpoint, e); err != nil {
			return report, fmt.Errorf("%s: %v: its position or inclusion proof was changed", where, err)
		}
		if want := next[e.Stream]; e.Version != want {
			return report, fmt.Errorf("%s: the bundle's previous event of %s has version %d, so an event of the stream is missing or repeated", where, e.Stream, want-1)
		}
		next[e.Stream] = e.Version + 1
		switch {
		case e.Stream == dispatch.Stream(b.RequestID):
			if runID := StageRun(e); runID != "" {
				runs = append(runs, run.Stream(runID))
			}
		case slices.Contains(runs, e.Stream):
		default:
			return report, fmt.Errorf("%s: the stream is neither request %s's nor one of its runs' (started by the request's events before it)", where, b.RequestID)
		}
	}
	if _, ok := next[dispatch.Stream(b.RequestID)]; !ok {
		return report, fmt.Errorf("request_id: the bundle holds no event of request %s", b.RequestID)
	}
	for _, r := range runs {
		if _, ok := next[r]; !ok {
			return report, fmt.Errorf("events: the request started %s, but the bundle holds none of its events", r)
		}
	}
	canonical, err := b.Marshal()
	if err != nil {
		return report, err
	}
	if !bytes.Equal(canonical, raw) {
		at := 0
		for at < len(raw) && at < len(canonical) && raw[at] == canonical[at] {
			at++
		}
		return report, fmt.Errorf("byte %d: the bundle is not in its canonical encoding there (whitespace, escaping or trailing bytes were changed)", at)
	}
	for s := range next {
		report.Streams = append(report.Streams, s)
	}
	slices.Sort(report.Streams)
	return report, nil
}

// CheckInclusion checks an event's inclusion proof against a checkpoint.
func CheckInclusion(proof tlog.RecordProof, c Checkpoint, e domain.RecordedEvent) error {
	leaf := LeafIndex(e.Position)
	if leaf < 0 || leaf >= c.Size {
		return fmt.Errorf("position %d is not in a tree of %d events", e.Position, c.Size)
	}
	if err := tlog.CheckRecord(proof, c.Size, c.Root, leaf, tlog.RecordHash(LeafData(e))); err != nil {
		return fmt.Errorf("the inclusion proof does not lead from the event to the checkpoint's root (%v)", err)
	}
	return nil
}

func (be BundleEvent) recorded() (domain.RecordedEvent, error) {
	// Each is in its one canonical spelling (lower case), so no byte of
	// the bundle can change without changing what is checked.
	id, err := uuid.Parse(be.ID)
	if err != nil || id.String() != be.ID {
		return domain.RecordedEvent{}, fmt.Errorf("id %q is not a UUID in lower-case hex", be.ID)
	}
	prev, err := hex.DecodeString(be.PrevHash)
	if err != nil || hex.EncodeToString(prev) != be.PrevHash {
		return domain.RecordedEvent{}, fmt.Errorf("prev_hash is not lower-case hex")
	}
	hash, err := hex.DecodeString(be.Hash)
	if err != nil || hex.EncodeToString(hash) != be.Hash {
		return domain.RecordedEvent{}, fmt.Errorf("hash is not lower-case hex")
	}
	return domain.RecordedEvent{
		ID: id, Stream: be.Stream, Version: be.Version, Position: be.Position, Type: be.Type,
		Data: []byte(be.Data), RawMetadata: []byte(be.Metadata), RecordedAt: time.UnixMicro(be.RecordedAtUS).UTC(),
		PrevHash: prev, Hash: hash,
	}, nil
}

// StageRun is the run a StageStarted event of a request starts, read
// from the stored JSON.
func StageRun(e domain.RecordedEvent) string {
	if e.Type != (dispatch.StageStarted{}).EventType() {
		return ""
	}
	var s dispatch.StageStarted
	if json.Unmarshal(e.Data, &s) != nil {
		return ""
	}
	return s.RunID
}
