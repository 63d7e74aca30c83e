package agentproto_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/logbookhq/logbook/adapters/docker/agentproto"
)

func TestFramesRoundTripExactly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := agentproto.NewWriter(&buf)
	big := bytes.Repeat([]byte{0xff, 0}, agentproto.MaxFrame) // two frames' worth
	_ = w.Write(agentproto.Stdout, []byte("a\x00\xfe"))
	_ = w.Write(agentproto.Stdin, nil)
	_ = w.Write(agentproto.Stderr, big)
	r := agentproto.NewReader(&buf)
	want := []struct {
		typ  byte
		body []byte
	}{{agentproto.Stdout, []byte("a\x00\xfe")}, {agentproto.Stdin, []byte{}}, {agentproto.Stderr, big[:agentproto.MaxFrame]}, {agentproto.Stderr, big[agentproto.MaxFrame:]}}
	for i, w := range want {
		typ, body, err := r.Next()
		if err != nil || typ != w.typ || !bytes.Equal(body, w.body) {
			t.Fatalf("frame %d: %q %d bytes %v, want %q %d bytes", i, typ, len(body), err, w.typ, len(w.body))
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("O\x00\x00\x00\x02hiX\x00\x00\x00\x02{}"))
	f.Add([]byte("O\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := agentproto.NewReader(bytes.NewReader(in))
		total := 0
		for {
			_, body, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, agentproto.ErrFrame) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			total += 5 + len(body)
			if total > len(in) {
				t.Fatalf("read %d bytes from %d of input", total, len(in))
			}
		}
	})
}
