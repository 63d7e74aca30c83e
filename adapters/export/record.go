package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// Record is one event as a destination receives it: the stored event,
// which is already what the log may hold (secret values never enter it;
// run output is redacted before it is recorded), with its position and
// chain hashes. Hash = eventstore.ChainHash(PrevHash, event), so with
// Data and Metadata as stored a receiver can recompute it (Verify).
type Record struct {
	Position   int64  `json:"position"`
	Hash       string `json:"hash"`
	PrevHash   string `json:"prev_hash"`
	ID         string `json:"id"`
	Stream     string `json:"stream"`
	Version    int64  `json:"version"`
	Type       string `json:"type"`
	RecordedAt string `json:"recorded_at"`
	// Data and Metadata are the event's JSON. A record's line must be one
	// line, so they are compacted; when that changed the stored text,
	// DataExact or MetadataExact holds the stored bytes (base64), which
	// the hash covers.
	Data          json.RawMessage `json:"data,omitempty"`
	Metadata      json.RawMessage `json:"metadata"`
	DataExact     string          `json:"data_exact,omitempty"`
	MetadataExact string          `json:"metadata_exact,omitempty"`
	// DataOmitted is set instead of Data on a destination whose messages
	// cannot hold the event (syslog's MAX_MESSAGE): DataSHA256 and
	// DataBytes say what was left out, and the hash still links.
	DataOmitted bool   `json:"data_omitted,omitempty"`
	DataSHA256  string `json:"data_sha256,omitempty"`
	DataBytes   int    `json:"data_bytes,omitempty"`
}

// recordedAtLayout keeps the microseconds the hash covers.
const recordedAtLayout = "2006-01-02T15:04:05.000000Z"

// NewRecord is e as a record.
func NewRecord(e domain.RecordedEvent) Record {
	r := Record{
		Position: e.Position, Hash: hex.EncodeToString(e.Hash), PrevHash: hex.EncodeToString(e.PrevHash),
		ID: e.ID.String(), Stream: e.Stream, Version: e.Version, Type: e.Type,
		RecordedAt: e.RecordedAt.UTC().Format(recordedAtLayout),
	}
	r.Data, r.DataExact = compacted(e.Data)
	r.Metadata, r.MetadataExact = compacted(e.RawMetadata)
	return r
}

// compacted is raw as one line of JSON, and raw in base64 when that is
// not raw itself.
func compacted(raw []byte) (json.RawMessage, string) {
	if len(raw) == 0 {
		return json.RawMessage("null"), base64.StdEncoding.EncodeToString(raw)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		// The store validated it as JSON; should it not be, it still travels.
		s, _ := json.Marshal(string(raw))
		return s, base64.StdEncoding.EncodeToString(raw)
	}
	if bytes.Equal(b.Bytes(), raw) {
		return raw, ""
	}
	return b.Bytes(), base64.StdEncoding.EncodeToString(raw)
}

// withoutData is r with its data left out, named by digest.
func (r Record) withoutData() Record {
	data := r.storedData()
	sum := sha256.Sum256(data)
	r.Data, r.DataExact = nil, ""
	r.DataOmitted, r.DataSHA256, r.DataBytes = true, hex.EncodeToString(sum[:]), len(data)
	return r
}

func (r Record) storedData() []byte {
	if r.DataExact != "" {
		b, _ := base64.StdEncoding.DecodeString(r.DataExact)
		return b
	}
	return r.Data
}

// MarshalLine is the record as one line of JSON, ending in \n. HTML
// characters are not escaped, so the data's text is as stored.
func (r Record) MarshalLine() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(r) // strings and valid JSON only: cannot fail
	return b.Bytes()
}

// Event is the stored event the record carries, for Verify.
func (r Record) Event() (domain.RecordedEvent, error) {
	e := domain.RecordedEvent{Position: r.Position, Stream: r.Stream, Version: r.Version, Type: r.Type}
	var err error
	if e.ID, err = uuid.Parse(r.ID); err != nil {
		return e, fmt.Errorf("position %d: id: %w", r.Position, err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, r.RecordedAt); err != nil {
		return e, fmt.Errorf("position %d: recorded_at: %w", r.Position, err)
	}
	if e.Hash, err = hex.DecodeString(r.Hash); err != nil {
		return e, fmt.Errorf("position %d: hash: %w", r.Position, err)
	}
	if e.PrevHash, err = hex.DecodeString(r.PrevHash); err != nil {
		return e, fmt.Errorf("position %d: prev_hash: %w", r.Position, err)
	}
	exact := func(text json.RawMessage, b64 string) ([]byte, error) {
		if b64 == "" {
			return text, nil
		}
		return base64.StdEncoding.DecodeString(b64)
	}
	if e.Data, err = exact(r.Data, r.DataExact); err != nil {
		return e, fmt.Errorf("position %d: data_exact: %w", r.Position, err)
	}
	if e.RawMetadata, err = exact(r.Metadata, r.MetadataExact); err != nil {
		return e, fmt.Errorf("position %d: metadata_exact: %w", r.Position, err)
	}
	return e, nil
}

// Verify recomputes the record's hash from its prev_hash and content. A
// record whose data was omitted cannot be checked this way; only its link
// (CheckContinuous) can.
func (r Record) Verify() error {
	if r.DataOmitted {
		return errors.New("the record's data was omitted: only its links can be checked")
	}
	e, err := r.Event()
	if err != nil {
		return err
	}
	if got := eventstore.ChainHash(e.PrevHash, e); !bytes.Equal(got, e.Hash) {
		return fmt.Errorf("position %d: the hash does not match the record's content", r.Position)
	}
	return nil
}

// CheckContinuous checks records as a receiver holds them, in any order
// and with repeats (at least once): deduplicated by position, they must
// run from first to the highest position without a gap, each prev_hash
// must be its predecessor's hash (the first's is taken on trust unless
// first is 1, whose prev_hash is 32 zero bytes), every copy of a position
// must be the same record, and every record whose data travelled must
// hash to its own hash. It returns the records in position order.
func CheckContinuous(records []Record, first int64) ([]Record, error) {
	byPosition := map[int64]Record{}
	last := first - 1
	for _, r := range records {
		if prev, seen := byPosition[r.Position]; seen {
			if prev.Hash != r.Hash {
				return nil, fmt.Errorf("position %d was received twice with different hashes", r.Position)
			}
			continue
		}
		if err := r.Verify(); err != nil && !r.DataOmitted {
			return nil, err
		}
		byPosition[r.Position] = r
		last = max(last, r.Position)
	}
	out := make([]Record, 0, len(byPosition))
	prevHash := ""
	if first == 1 {
		prevHash = hex.EncodeToString(eventstore.GenesisHash)
	}
	for p := first; p <= last; p++ {
		r, ok := byPosition[p]
		if !ok {
			return nil, fmt.Errorf("position %d is missing (have %d records from %d to %d)", p, len(byPosition), first, last)
		}
		if prevHash != "" && r.PrevHash != prevHash {
			return nil, fmt.Errorf("position %d: prev_hash %s is not the hash of position %d (%s)", p, r.PrevHash, p-1, prevHash)
		}
		prevHash = r.Hash
		out = append(out, r)
	}
	if len(out) != len(byPosition) {
		return nil, fmt.Errorf("records below position %d were received", first)
	}
	return out, nil
}
