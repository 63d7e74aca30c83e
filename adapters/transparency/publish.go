package transparency

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
)

// FileDestination writes the newest checkpoint, with its cosignatures, to
// a file, replaced atomically.
type FileDestination struct{ Path string }

// Name implements merkletree.Destination.
func (d FileDestination) Name() string { return "file " + d.Path }

// Cosigns implements merkletree.Destination.
func (FileDestination) Cosigns() bool { return false }

// Publish implements merkletree.Destination.
func (d FileDestination) Publish(_ context.Context, c auditlog.StoredCheckpoint, _ func(int64) (tlog.TreeProof, error)) (map[string]string, error) {
	return nil, WriteFileAtomic(d.Path, c.Cosigned(), 0o644)
}

// HTTPDestination POSTs the checkpoint, with its cosignatures, to a URL
// (as text/plain); any 2xx is success.
type HTTPDestination struct {
	URL    string
	Client *http.Client
}

// Name implements merkletree.Destination.
func (d HTTPDestination) Name() string { return "http " + d.URL }

// Cosigns implements merkletree.Destination.
func (HTTPDestination) Cosigns() bool { return false }

// Publish implements merkletree.Destination.
func (d HTTPDestination) Publish(ctx context.Context, c auditlog.StoredCheckpoint, _ func(int64) (tlog.TreeProof, error)) (map[string]string, error) {
	status, body, err := post(ctx, d.Client, d.URL, "text/plain; charset=utf-8", c.Cosigned())
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("%s answered %d: %s", d.URL, status, firstLine(body))
	}
	return nil, nil
}

// WitnessDestination sends each checkpoint to a C2SP tlog-witness with a
// consistency proof from the size the witness last cosigned, and returns
// its verified cosignature.
type WitnessDestination struct {
	// URL is the witness's submission prefix; add-checkpoint is under it.
	URL      string
	Verifier note.Verifier // the witness's cosignature/v1 key
	Client   *http.Client
	known    int64 // the size the witness said it holds, or 0
}

// NewWitnessDestination parses a witness's verifier string.
func NewWitnessDestination(url, key string, client *http.Client) (*WitnessDestination, error) {
	v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("witness key %q for %s is not a cosignature verifier key: %w", key, url, err)
	}
	return &WitnessDestination{URL: strings.TrimSuffix(url, "/") + "/add-checkpoint", Verifier: v, Client: client}, nil
}

// Name implements merkletree.Destination.
func (d *WitnessDestination) Name() string { return "witness " + d.Verifier.Name() }

// Cosigns implements merkletree.Destination.
func (*WitnessDestination) Cosigns() bool { return true }

// Publish implements merkletree.Destination. A 409 names the size the
// witness holds; the request is made once more from there.
func (d *WitnessDestination) Publish(ctx context.Context, c auditlog.StoredCheckpoint, prove func(int64) (tlog.TreeProof, error)) (map[string]string, error) {
	for attempt := 0; ; attempt++ {
		old := d.known
		if old > c.Size {
			return nil, fmt.Errorf("witness %s holds a checkpoint of size %d, larger than this log's newest (%d): it cosigned a checkpoint of this log this server does not have (a rollback or a fork)", d.Verifier.Name(), old, c.Size)
		}
		var proof tlog.TreeProof
		if old > 0 && old < c.Size {
			var err error
			if proof, err = prove(old); err != nil {
				return nil, fmt.Errorf("prove size %d consistent with %d for witness %s: %w", old, c.Size, d.Verifier.Name(), err)
			}
		}
		body := auditlog.FormatAddCheckpoint(auditlog.AddCheckpoint{OldSize: old, Proof: proof, Checkpoint: c.Note})
		status, answer, err := post(ctx, d.Client, d.URL, "text/plain; charset=utf-8", body)
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			line, err := d.cosignature(c, answer)
			if err != nil {
				return nil, err
			}
			d.known = c.Size
			return map[string]string{auditlog.KeyID(d.Verifier): line}, nil
		case http.StatusConflict:
			size, err := strconv.ParseInt(strings.TrimSpace(string(answer)), 10, 64)
			if err != nil || size < 0 {
				return nil, fmt.Errorf("witness %s answered 409 without a size: %q", d.Verifier.Name(), firstLine(answer))
			}
			if size == old || attempt > 0 {
				return nil, fmt.Errorf("witness %s refused the checkpoint of size %d: it holds another of size %d (a fork)", d.Verifier.Name(), c.Size, size)
			}
			d.known = size
		default:
			return nil, fmt.Errorf("witness %s answered %d: %s", d.Verifier.Name(), status, firstLine(answer))
		}
	}
}

// cosignature checks the witness's answer is its valid cosignature of c.
func (d *WitnessDestination) cosignature(c auditlog.StoredCheckpoint, answer []byte) (string, error) {
	for _, line := range strings.SplitAfter(string(answer), "\n") {
		if line == "" {
			continue
		}
		n, err := note.Open(append(append([]byte(nil), c.Note...), line...), note.VerifierList(d.Verifier))
		if err != nil {
			continue
		}
		for _, s := range n.Sigs {
			if s.Name == d.Verifier.Name() && s.Hash == d.Verifier.KeyHash() {
				if !strings.HasSuffix(line, "\n") {
					line += "\n"
				}
				return line, nil
			}
		}
	}
	return "", fmt.Errorf("witness %s answered 200 without a valid cosignature by its key", d.Verifier.Name())
}

func post(ctx context.Context, client *http.Client, url, contentType string, body []byte) (int, []byte, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, answer, err
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}
