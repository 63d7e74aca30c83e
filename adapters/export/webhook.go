package export

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// The webhook's headers. The signature is HMAC-SHA256 over
// "<timestamp>.<body>" with the destination's key, hex, after "v1=": a
// receiver recomputes it, compares in constant time, and refuses a
// timestamp far from its clock, so a captured request cannot be replayed
// later (VerifySignature does all three).
const (
	HeaderTimestamp = "X-Logbook-Timestamp"
	HeaderSignature = "X-Logbook-Signature"
	// HeaderPositions names the batch's first and last positions, "F-L".
	HeaderPositions = "X-Logbook-Positions"
)

// webhookSink posts each batch as JSON lines (application/x-ndjson).
type webhookSink struct {
	cfg    Config
	key    []byte
	now    func() time.Time
	client *http.Client
	// where names the address in errors without credentials or query, which
	// may hold a token.
	where string
}

func newWebhookSink(cfg Config, key []byte, now func() time.Time) *webhookSink {
	where := "the webhook"
	if u, err := url.Parse(cfg.URL); err == nil {
		where = u.Scheme + "://" + u.Host + u.Path
	}
	// A redirect is not followed: the batch goes where it was configured
	// to, and a 3xx is a failure that names the status.
	client := &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &webhookSink{cfg: cfg, key: key, now: now, client: client, where: where}
}

// Sign is the signature header's value of body sent at timestamp (unix
// seconds).
func Sign(key []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a received batch: the signature is the key's
// over timestamp and body, and the timestamp is within tolerance of now.
func VerifySignature(key []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not unix seconds", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s away from now, over the %s allowed", HeaderTimestamp, d.Round(time.Second), tolerance)
	}
	if !hmac.Equal([]byte(Sign(key, timestamp, body)), []byte(signature)) {
		return fmt.Errorf("%s does not match the body", HeaderSignature)
	}
	return nil
}

// Send implements Sink: one POST, delivered on a 2xx.
func (s *webhookSink) Send(ctx context.Context, records []Record) error {
	var body bytes.Buffer
	for _, r := range records {
		body.Write(r.MarshalLine())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("export %s: %s: %v", s.cfg.Name, s.where, errors.Unwrap(err))
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "logbook-export")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(s.key, ts, body.Bytes()))
	req.Header.Set(HeaderPositions, fmt.Sprintf("%d-%d", records[0].Position, records[len(records)-1].Position))
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole address: name it without secrets.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("export %s: post to %s: %v", s.cfg.Name, s.where, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("export %s: %s answered %s", s.cfg.Name, s.where, resp.Status)
	}
	return nil
}

// Close implements Sink.
func (s *webhookSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// loadHMACKey reads the webhook's key: from SECRET_FILE (readable by its
// owner only), or from the vault as the current base-layer version of the
// SECRET bundle's key. Errors name where it looked, never the key.
func loadHMACKey(ctx context.Context, cfg Config, store eventstore.Store, vault bundleconfig.Vault) ([]byte, error) {
	var key string
	if cfg.SecretFile != "" {
		info, err := os.Stat(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("export %s: the HMAC key file: %w", cfg.Name, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("export %s: the HMAC key file %s is mode %04o; make it readable by its owner only (chmod 600)", cfg.Name, cfg.SecretFile, info.Mode().Perm())
		}
		data, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("export %s: the HMAC key file: %w", cfg.Name, err)
		}
		key = strings.TrimRight(string(data), "\r\n")
	} else {
		if vault == nil {
			return nil, fmt.Errorf("export %s: the HMAC key is the secret %s/%s, but %w", cfg.Name, cfg.SecretBundle, cfg.SecretKey, bundleconfig.ErrNoVault)
		}
		var state bundleconfig.State
		stream := bundleconfig.Stream(cfg.SecretBundle)
		for from := int64(0); ; {
			events, err := store.ReadStream(ctx, stream, from, 1000)
			if err != nil {
				return nil, fmt.Errorf("export %s: read %s: %w", cfg.Name, stream, err)
			}
			for _, e := range events {
				p, err := domain.Decode(e)
				if err != nil {
					return nil, err
				}
				state = bundleconfig.Evolve(state, p)
				from = e.Version + 1
			}
			if len(events) < 1000 {
				break
			}
		}
		entry, ok := state.Lookup(bundleconfig.BaseLayer, cfg.SecretKey)
		if !ok || !entry.Secret {
			return nil, fmt.Errorf("export %s: the HMAC key %s/%s is not a secret of the base layer: set it with `logbook secret set %s %s`", cfg.Name, cfg.SecretBundle, cfg.SecretKey, cfg.SecretBundle, cfg.SecretKey)
		}
		v, err := vault.Reveal(ctx, bundleconfig.SecretRef{Bundle: cfg.SecretBundle, Layer: bundleconfig.BaseLayer.String(), Key: cfg.SecretKey, Version: entry.Version})
		if err != nil {
			return nil, fmt.Errorf("export %s: the HMAC key %s/%s: %w", cfg.Name, cfg.SecretBundle, cfg.SecretKey, err)
		}
		key = v
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("export %s: the HMAC key is %d bytes; use at least 16 random bytes (head -c 32 /dev/urandom | base64)", cfg.Name, len(key))
	}
	return []byte(key), nil
}
