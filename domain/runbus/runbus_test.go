package runbus

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Given a run request message made in this process, when it is decoded,
// then the request it carries comes back without its payload being read;
// once its context no longer carries it (a copy, another process), the
// payload is decoded; a carried request is checked as a decoded one is.
func TestARunRequestIsDecodedOnceInAProcess(t *testing.T) {
	req := RunRequest{RunID: "0192c3f0-0000-7000-8000-000000000001", EventID: "e1", Env: map[string]string{"A": "1"}}
	msg, err := NewRunRequestMessage(req)
	if err != nil {
		t.Fatal(err)
	}
	payload := msg.Payload
	msg.Payload = []byte("not read") // proves the payload is not decoded
	msg.SetContext(context.WithValue(msg.Context(), struct{ k string }{"handler"}, 1))
	got, err := DecodeRunRequest(msg)
	if err != nil || got.RunID != req.RunID || got.Env["A"] != "1" {
		t.Fatalf("carried request = %+v, %v", got, err)
	}

	copied := msg.Copy() // watermill copies without the context
	if _, err := DecodeRunRequest(copied); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("a copy decoded %v, want its (bad) payload read", err)
	}
	copied.Payload = payload
	if got, err := DecodeRunRequest(copied); err != nil || got.RunID != req.RunID {
		t.Fatalf("decoded from the payload = %+v, %v", got, err)
	}

	bad := message.NewMessage("m", payload)
	Carry(bad, RunRequest{RunID: "not/a/run"})
	if _, err := DecodeRunRequest(bad); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("a carried request with a bad run id = %v, want a bad message", err)
	}
}
