package auditlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a tree head: the log's origin, its size and root hash.
type Checkpoint struct {
	Origin string    `json:"origin"`
	Size   int64     `json:"size"`
	Root   tlog.Hash `json:"root"`
}

// Body is the checkpoint's C2SP text: origin, size and base64 root, one
// per line.
func (c Checkpoint) Body() []byte {
	return log.Checkpoint{Origin: c.Origin, Size: uint64(c.Size), Hash: c.Root[:]}.Marshal()
}

// SignCheckpoint signs the checkpoint as a C2SP signed note. The origin is
// the signer's key name, as C2SP recommends, so a verifier string names
// the log it verifies.
func SignCheckpoint(signer note.Signer, size int64, root tlog.Hash) ([]byte, error) {
	c := Checkpoint{Origin: signer.Name(), Size: size, Root: root}
	return note.Sign(&note.Note{Text: string(c.Body())}, signer)
}

// Policy says which signatures a checkpoint needs: the log's, and at
// least Required of the Witnesses' cosignatures.
type Policy struct {
	Log       note.Verifier
	Witnesses []note.Verifier
	Required  int
}

// NewPolicy builds a policy from verifier strings: the log's (a standard
// Ed25519 note key) and the witnesses' (cosignature/v1 keys; a standard
// Ed25519 key is taken as the same key's cosignature/v1 form).
func NewPolicy(logKey string, witnessKeys []string, required int) (Policy, error) {
	logVerifier, err := note.NewVerifier(strings.TrimSpace(logKey))
	if err != nil {
		return Policy{}, fmt.Errorf("log key %q is not a note verifier key (name+hash+key, as logbook audit key prints): %w", logKey, err)
	}
	p := Policy{Log: logVerifier, Required: required}
	names := map[string]bool{}
	for _, k := range witnessKeys {
		v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(k))
		if err != nil {
			return Policy{}, fmt.Errorf("witness key %q is not a cosignature verifier key (name+hash+key, as logbook witness key prints): %w", k, err)
		}
		if names[v.Name()] {
			return Policy{}, fmt.Errorf("witness %s is named twice", v.Name())
		}
		names[v.Name()] = true
		p.Witnesses = append(p.Witnesses, v)
	}
	if required < 0 || required > len(p.Witnesses) {
		return Policy{}, fmt.Errorf("the policy asks for %d witness cosignatures, but %d witness keys are given", required, len(p.Witnesses))
	}
	return p, nil
}

// Opened is a checkpoint whose signatures the policy accepted.
type Opened struct {
	Checkpoint
	// Cosigners names the witnesses whose cosignatures verified.
	Cosigners []string
}

// ErrSignature is the kind of every failure of a checkpoint's signatures.
var ErrSignature = errors.New("checkpoint signature")

// OpenCheckpoint checks a signed (and cosigned) checkpoint against the
// policy and parses it. A signature by a key the policy knows that does
// not verify fails it, as does a missing log signature or too few
// cosignatures; signatures by unknown keys are ignored.
func OpenCheckpoint(signed []byte, p Policy) (Opened, error) {
	verifiers := append([]note.Verifier{p.Log}, p.Witnesses...)
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &invalid):
			return Opened{}, fmt.Errorf("%w: the signature by %s (key %08x) does not verify: the checkpoint text or that signature was changed", ErrSignature, invalid.Name, invalid.Hash)
		case errors.As(err, &unverified):
			return Opened{}, fmt.Errorf("%w: no signature on the checkpoint is by the log key %s (%08x): a wrong key, or another log's checkpoint", ErrSignature, p.Log.Name(), p.Log.KeyHash())
		}
		return Opened{}, fmt.Errorf("%w: the checkpoint is not a signed note (text, a blank line, then signature lines): %v", ErrSignature, err)
	}
	for _, s := range append(append([]note.Signature(nil), n.Sigs...), n.UnverifiedSigs...) {
		// note decodes base64 leniently (padding bits); only the canonical
		// spelling is accepted, so no byte of a checkpoint is free to change.
		if raw, err := base64.StdEncoding.DecodeString(s.Base64); err != nil || base64.StdEncoding.EncodeToString(raw) != s.Base64 {
			return Opened{}, fmt.Errorf("%w: the signature by %s is not in canonical base64: it was changed", ErrSignature, s.Name)
		}
	}
	var o Opened
	logSigned := false
	for _, s := range n.Sigs {
		if s.Name == p.Log.Name() && s.Hash == p.Log.KeyHash() {
			logSigned = true
			continue
		}
		if !slices.Contains(o.Cosigners, s.Name) {
			o.Cosigners = append(o.Cosigners, s.Name)
		}
	}
	if !logSigned {
		return Opened{}, fmt.Errorf("%w: the checkpoint has witness cosignatures but no signature by the log key %s (%08x)", ErrSignature, p.Log.Name(), p.Log.KeyHash())
	}
	c, err := ParseCheckpointBody([]byte(n.Text))
	if err != nil {
		return Opened{}, err
	}
	if c.Origin != p.Log.Name() {
		return Opened{}, fmt.Errorf("%w: the checkpoint's origin %q is not the log key's name %q", ErrSignature, c.Origin, p.Log.Name())
	}
	o.Checkpoint = c
	if len(o.Cosigners) < p.Required {
		return o, fmt.Errorf("%w: %d of the %d witnesses given cosigned the checkpoint of size %d (%s), and the policy requires %d",
			ErrSignature, len(o.Cosigners), len(p.Witnesses), c.Size, strings.Join(o.Cosigners, ", "), p.Required)
	}
	return o, nil
}

// ParseCheckpointBody parses a checkpoint's text (no signatures).
func ParseCheckpointBody(text []byte) (Checkpoint, error) {
	var c log.Checkpoint
	rest, err := c.Unmarshal(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint text: %w", err)
	}
	if len(c.Hash) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint text: the root hash is %d bytes, not %d", len(c.Hash), tlog.HashSize)
	}
	if c.Size > 1<<62 {
		return Checkpoint{}, fmt.Errorf("checkpoint text: size %d is out of range", c.Size)
	}
	if len(rest) > 0 && !bytes.HasSuffix(rest, []byte("\n")) {
		return Checkpoint{}, errors.New("checkpoint text: an extension line does not end in a newline")
	}
	out := Checkpoint{Origin: c.Origin, Size: int64(c.Size)}
	copy(out.Root[:], c.Hash)
	return out, nil
}

// SignatureLines returns a signed note's signature lines, each ending in a
// newline, for storing a cosignature or answering a witness request.
func SignatureLines(signed []byte) []string {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out []string
	for _, line := range strings.SplitAfter(string(signed[i+2:]), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// KeyID names a verifier as name+keyhash, the key a witness's state and a
// stored cosignature are kept under.
func KeyID(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
