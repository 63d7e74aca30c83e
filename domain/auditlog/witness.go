package auditlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AddCheckpoint is a C2SP tlog-witness add-checkpoint request: the size
// of the checkpoint the log believes the witness holds, a consistency
// proof from it, and the new checkpoint.
type AddCheckpoint struct {
	OldSize    int64
	Proof      tlog.TreeProof
	Checkpoint []byte // the signed note
}

// maxProofLines bounds a request's proof: a consistency proof of a tree
// of 2^63 leaves has at most 2×63 hashes; C2SP caps it at 63.
const maxProofLines = 63

// MaxAddCheckpointBytes bounds a request body.
const MaxAddCheckpointBytes = 64 << 10

// FormatAddCheckpoint writes a request body.
func FormatAddCheckpoint(r AddCheckpoint) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddCheckpoint reads a request body: "old N", the proof's hashes one
// base64 line each, a blank line, the checkpoint.
func ParseAddCheckpoint(body []byte) (AddCheckpoint, error) {
	var r AddCheckpoint
	if len(body) > MaxAddCheckpointBytes {
		return r, fmt.Errorf("the request is %d bytes, over the %d-byte limit", len(body), MaxAddCheckpointBytes)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return r, fmt.Errorf("line 1: the request has no newline; it starts with \"old N\"")
	}
	sizeText, ok := strings.CutPrefix(string(line), "old ")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || size < 0 || (len(sizeText) > 1 && sizeText[0] == '0') {
		return r, fmt.Errorf("line 1: %q is not \"old N\" with N a tree size", line)
	}
	r.OldSize = size
	for n := 2; ; n++ {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return r, fmt.Errorf("line %d: the request ends before the blank line that precedes the checkpoint", n)
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == maxProofLines {
			return r, fmt.Errorf("line %d: the consistency proof has more than %d hashes", n, maxProofLines)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(raw) != tlog.HashSize {
			return r, fmt.Errorf("line %d: %q is not a base64 SHA-256 hash of the consistency proof", n, line)
		}
		r.Proof = append(r.Proof, tlog.Hash(raw))
	}
	if len(rest) == 0 {
		return r, fmt.Errorf("the request has no checkpoint after the blank line")
	}
	r.Checkpoint = rest
	return r, nil
}

// WitnessedLog is a log a witness cosigns for: its origin and key.
type WitnessedLog struct {
	Origin   string
	Verifier note.Verifier
}

// WitnessState is what a witness keeps per log origin and key: the last
// checkpoint it cosigned.
type WitnessState struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
}

// WitnessRefusal is a request the witness will not cosign, with the HTTP
// status C2SP tlog-witness gives it.
type WitnessRefusal struct {
	Status    int
	Reason    string
	KnownSize int64 // for 409: the size the witness holds
}

func (e *WitnessRefusal) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

func refuse(status int, format string, args ...any) *WitnessRefusal {
	return &WitnessRefusal{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// CheckpointOrigin is the first line of a signed checkpoint, unverified:
// it says which log's key to check the rest with.
func CheckpointOrigin(signed []byte) string {
	origin, _, _ := bytes.Cut(signed, []byte("\n"))
	return string(origin)
}

// emptyTreeRoot is RFC 6962's hash of the empty tree, SHA-256("").
var emptyTreeRoot = tlog.Hash(sha256.Sum256(nil))

// DecideCosign is the witness's rule: given the log (nil when the origin
// is unknown) and the state it holds for it (nil when none), it accepts a
// request only when the log signed the checkpoint and it extends, by a
// valid consistency proof, the checkpoint the witness last cosigned. It
// returns the checkpoint and the state to keep once it is cosigned, or a
// refusal; a fork or a rollback is refused.
func DecideCosign(l *WitnessedLog, known *WitnessState, r AddCheckpoint) (Checkpoint, WitnessState, *WitnessRefusal) {
	if l == nil {
		return Checkpoint{}, WitnessState{}, refuse(http.StatusNotFound, "this witness does not know the log %q", CheckpointOrigin(r.Checkpoint))
	}
	o, err := OpenCheckpoint(r.Checkpoint, Policy{Log: l.Verifier})
	if err != nil {
		return Checkpoint{}, WitnessState{}, refuse(http.StatusForbidden, "%v", err)
	}
	c := o.Checkpoint
	if c.Origin != l.Origin {
		return Checkpoint{}, WitnessState{}, refuse(http.StatusForbidden, "the checkpoint's origin %q is not the log's %q", c.Origin, l.Origin)
	}
	if r.OldSize > c.Size {
		return Checkpoint{}, WitnessState{}, refuse(http.StatusBadRequest, "old size %d is larger than the checkpoint's size %d", r.OldSize, c.Size)
	}
	var have WitnessState
	if known != nil {
		have = *known
	}
	if r.OldSize != have.Size {
		ref := refuse(http.StatusConflict, "old size %d is not the size of the checkpoint this witness last cosigned for %s, %d", r.OldSize, c.Origin, have.Size)
		ref.KnownSize = have.Size
		return Checkpoint{}, WitnessState{}, ref
	}
	switch {
	case c.Size == r.OldSize:
		if len(r.Proof) != 0 {
			return Checkpoint{}, WitnessState{}, refuse(http.StatusUnprocessableEntity, "the checkpoint's size is the old size, so the consistency proof must be empty; it has %d hashes", len(r.Proof))
		}
		want := have.Root
		if c.Size == 0 {
			want = emptyTreeRoot
		}
		if c.Root != want {
			ref := refuse(http.StatusConflict, "the checkpoint of size %d has another root than the one this witness cosigned at that size: the log forked", c.Size)
			ref.KnownSize = have.Size
			return Checkpoint{}, WitnessState{}, ref
		}
	case r.OldSize == 0:
		if len(r.Proof) != 0 {
			return Checkpoint{}, WitnessState{}, refuse(http.StatusUnprocessableEntity, "from size 0 the consistency proof must be empty; it has %d hashes", len(r.Proof))
		}
	default:
		if err := tlog.CheckTree(r.Proof, c.Size, c.Root, r.OldSize, have.Root); err != nil {
			return Checkpoint{}, WitnessState{}, refuse(http.StatusUnprocessableEntity,
				"the consistency proof (%d hashes) does not show the checkpoint of size %d extends the one of size %d this witness cosigned: %v", len(r.Proof), c.Size, r.OldSize, err)
		}
	}
	return c, WitnessState{Size: c.Size, Root: c.Root}, nil
}
