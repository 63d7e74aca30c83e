package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/logbookhq/logbook/domain"
)

// GenesisHash is the prev_hash of the first event in a store.
var GenesisHash = make([]byte, sha256.Size)

// ChainHash computes an event's hash from its predecessor's hash and the
// exact stored bytes of every field that says what happened and where:
// SHA-256(prev_hash ‖ position ‖ stream ‖ version ‖ id ‖ type ‖ data ‖
// metadata ‖ recorded_at). Variable-length fields are length-prefixed so that
// moving bytes from one field to the next changes the hash.
func ChainHash(prevHash []byte, e domain.RecordedEvent) []byte {
	sum := sha256.Sum256(ChainInput(prevHash, e))
	return sum[:]
}

// ChainInput is the byte string ChainHash hashes: the event's stored bytes
// with its predecessor's hash, each variable-length field prefixed with its
// length. The Merkle tree's leaf for the event is this same string, so the
// chain and the tree cover exactly the same bytes.
func ChainInput(prevHash []byte, e domain.RecordedEvent) []byte {
	b := make([]byte, 0, 8*8+len(prevHash)+len(e.Stream)+16+len(e.Type)+len(e.Data)+len(e.RawMetadata))
	writeBytes := func(v []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
		b = append(b, v...)
	}
	writeInt := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	writeBytes(prevHash)
	writeInt(e.Position)
	writeBytes([]byte(e.Stream))
	writeInt(e.Version)
	b = append(b, e.ID[:]...)
	writeBytes([]byte(e.Type))
	writeBytes(e.Data)
	writeBytes(e.RawMetadata)
	writeInt(e.RecordedAt.UnixMicro())
	return b
}

// VerifyReport is the outcome of walking the hash chain.
type VerifyReport struct {
	Checked  int64  `json:"checked"`
	Head     int64  `json:"head"`
	HeadHash string `json:"head_hash,omitempty"`
	OK       bool   `json:"ok"`
	// FirstBad is the first position where the chain breaks; 0 when OK.
	FirstBad int64  `json:"first_bad_position,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Verify walks the whole log in order and checks that positions have no gaps,
// that every event links to its predecessor's hash, and that every hash still
// matches the stored bytes. progress, when not nil, is called after each batch
// with the number of events checked so far.
func Verify(ctx context.Context, s Store, progress func(checked int64)) (VerifyReport, error) {
	return VerifyEach(ctx, s, progress, nil)
}

// VerifyEach is Verify that also hands each event whose link checks out,
// in order, to visit (when not nil), so a check of something else built
// from the log (the Merkle tree) needs no second walk.
func VerifyEach(ctx context.Context, s Store, progress func(checked int64), visit func(domain.RecordedEvent) error) (VerifyReport, error) {
	const batch = 5000
	var (
		report   VerifyReport
		prevHash = GenesisHash
		expected = int64(1)
	)
	for {
		events, err := s.ReadAll(ctx, expected, batch)
		if err != nil {
			return report, err
		}
		for _, e := range events {
			if problem := checkLink(e, expected, prevHash); problem != "" {
				report.FirstBad, report.Problem = min(e.Position, expected), problem
				return report, nil
			}
			if visit != nil {
				if err := visit(e); err != nil {
					return report, err
				}
			}
			report.Checked++
			report.Head = e.Position
			prevHash = e.Hash
			expected = e.Position + 1
		}
		if progress != nil {
			progress(report.Checked)
		}
		if len(events) < batch {
			break
		}
	}
	report.OK = true
	if report.Head > 0 {
		report.HeadHash = hex.EncodeToString(prevHash)
	}
	return report, nil
}

func checkLink(e domain.RecordedEvent, expectedPosition int64, prevHash []byte) string {
	switch {
	case e.Position > expectedPosition:
		return fmt.Sprintf("position %d is missing: the next stored event is at %d, so events were deleted", expectedPosition, e.Position)
	case e.Position < expectedPosition:
		return fmt.Sprintf("position %d appears again after %d: events were reordered or inserted", e.Position, expectedPosition-1)
	case !bytes.Equal(ChainHash(e.PrevHash, e), e.Hash):
		return fmt.Sprintf("position %d: the stored hash does not match the event's content, so the event (%s in %s) was altered or moved here from another position", e.Position, e.Type, e.Stream)
	case !bytes.Equal(e.PrevHash, prevHash):
		if expectedPosition == 1 {
			return "position 1: prev_hash is not the genesis hash, so events before it were deleted"
		}
		return fmt.Sprintf("position %d: prev_hash does not match the hash of position %d, so an event was deleted, inserted or reordered here", e.Position, expectedPosition-1)
	}
	return ""
}
